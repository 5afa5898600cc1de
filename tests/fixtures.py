"""Items and COGs made in code for the tests, as odc-geo's ``testutils`` and torchgeo's
``tests/data`` make theirs: small files with known pixels, and the STAC items that describe
them, so that every expected value comes from the data a test made, not from the code under
test.

- :func:`make_item`: the one builder of STAC item dicts (optionally as ``pystac.Item``);
- :func:`write_cog`: one single-band COG with a known array; :func:`random_cog`: a random one;
- :func:`s2_scene`: a Sentinel-2 L2A-like item (10 m uint16 bands with ``raster:bands`` scale
  and offset, a 20 m ``swir16``, a 20 m SCL) and its arrays;
- :func:`s1_scene`: a Sentinel-1 RTC-like item (float32 linear gamma0 ``vv``/``vh``, nodata
  -32768, no scale, Planetary Computer's fields) and its arrays;
- :func:`s1_scenes`: four of those in two UTM zones and their chip index (the batching tests');
- :func:`metadata_item`: an item with only a reference grid (no file behind it);
- :func:`assert_refused`: the check of a bad-input table's row (the error and its words);
- :func:`run_cli`: the ``geolesson`` command run in this process (exit status, stderr).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pystac
import rasterio
from affine import Affine
from rasterio.transform import from_origin

#: the checkout, and the tests' committed inputs
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
#: upper-left corner of the Sentinel-2-like scenes (UTM zone 35N, metres)
X0, Y0 = 500000.0, 4000000.0
#: SCL classes counted as cloud by default (geolesson.indices.DEFAULT_CLOUD_CLASSES, written out)
CLOUD = (3, 8, 9, 10)
COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
#: Planetary Computer's RTC nodata
S1_NODATA = -32768.0
#: (EPSG, x0, y0): Osaka in UTM 53N, Tokyo in UTM 54N (upper-left corners, metres)
OSAKA = (32653, 540000.0, 3850000.0)
TOKYO = (32654, 380000.0, 3960000.0)


def make_item(item_id: str, assets: dict, *, collection: str | None = "sentinel-2-l2a",
              datetime: str = "2023-07-02T09:06:19Z", properties: dict | None = None,
              as_pystac: bool = False):
    """A STAC item dict with ``assets`` (key -> asset dict) and ``properties`` besides
    ``datetime``; a ``pystac.Item`` (loaded without migrating ``proj:epsg``) if ``as_pystac``."""
    d = {
        "type": "Feature", "stac_version": "1.0.0", "id": item_id, "geometry": None, "bbox": None,
        "properties": {"datetime": datetime, **(properties or {})}, "links": [], "assets": assets,
    }
    if collection is not None:
        d["collection"] = collection
    return pystac.Item.from_dict(d, migrate=False) if as_pystac else d


def write_cog(path, data: np.ndarray, *, res: float = 10.0, epsg: int = 32635, x0: float = X0,
              y0: float = Y0, nodata: float | None = 0, blocksize: int = 128) -> np.ndarray:
    """``data`` (H, W) as a one-band DEFLATE COG whose top-left corner is (x0, y0); returns ``data``."""
    profile = {"driver": "COG", "width": data.shape[1], "height": data.shape[0], "count": 1,
               "dtype": str(data.dtype), "crs": f"EPSG:{epsg}", "transform": from_origin(x0, y0, res, res),
               "nodata": nodata, "blocksize": blocksize, "compress": "DEFLATE",
               "predictor": 3 if data.dtype.kind == "f" else 2}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    return data


def random_cog(path, shape=(1000, 700), blocksize=256, dtype="uint16", count=1, seed=0, **extra) -> np.ndarray:
    """A COG of random values 1..9999 in UTM 35N, nodata 0: returns the array written ((count, H, W))."""
    rng = np.random.default_rng(seed)
    data = rng.integers(1, 10000, size=(count, *shape)).astype(dtype)
    profile = dict(driver="COG", width=shape[1], height=shape[0], count=count, dtype=dtype,
                   crs="EPSG:32635", transform=from_origin(X0, Y0, 10, 10), nodata=0,
                   blocksize=blocksize, compress="DEFLATE", **extra)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return data


def s2_asset(href, shape, res: float, *, scale: bool = True, dtype: str = "uint16") -> dict:
    """An asset dict in Earth Search's form: ``proj:shape``, ``proj:transform`` and
    ``raster:bands`` (nodata 0; scale 0.0001 and offset -0.1 where ``scale``)."""
    band = {"nodata": 0, "data_type": dtype, "spatial_resolution": res}
    if scale:
        band.update(scale=0.0001, offset=-0.1)
    return {"href": str(href), "type": COG_TYPE, "roles": ["data"], "proj:shape": list(shape),
            "proj:transform": [res, 0.0, X0, 0.0, -res, Y0], "raster:bands": [band]}


def s2_scene(tmp_path, shape10=(1000, 700), scl=None, seed=0, item_id="T_1", epsg_field=("proj:epsg", 32635),
             bands=("red", "green", "blue", "nir"), with_swir=True):
    """A Sentinel-2 L2A-like ``pystac.Item`` in ``tmp_path/item_id``: 10 m ``bands`` (random DN,
    a nodata corner), a 20 m ``swir16`` and SCL (random classes unless ``scl`` is given).
    Returns (item, arrays by asset key)."""
    rng = np.random.default_rng(seed)
    folder = tmp_path / item_id
    folder.mkdir()
    h, w = shape10
    shape20 = (math.ceil(h / 2), math.ceil(w / 2))
    arrays, assets = {}, {}
    for key in bands:
        a = rng.integers(1, 10000, size=shape10).astype("uint16")
        a[:3, :5] = 0  # some nodata
        arrays[key] = write_cog(folder / f"{key}.tif", a, res=10)
        assets[key] = s2_asset(folder / f"{key}.tif", shape10, 10.0)
    if with_swir:
        a = rng.integers(1, 10000, size=shape20).astype("uint16")
        arrays["swir16"] = write_cog(folder / "swir16.tif", a, res=20)
        assets["swir16"] = s2_asset(folder / "swir16.tif", shape20, 20.0)
    if scl is None:
        scl = rng.integers(0, 12, size=shape20).astype("uint8")
    arrays["scl"] = write_cog(folder / "scl.tif", scl.astype("uint8"), res=20)
    assets["scl"] = s2_asset(folder / "scl.tif", scl.shape, 20.0, scale=False, dtype="uint8")
    item = make_item(item_id, assets, properties=dict([epsg_field]) if epsg_field else {}, as_pystac=True)
    return item, arrays


def land_cover(shape, seed):
    """0 water, 1 vegetation, 2 urban: blocky classes, deterministic from the seed."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 3, size=(-(-shape[0] // 64), -(-shape[1] // 64)))
    return np.kron(coarse, np.ones((64, 64), dtype=int))[:shape[0], :shape[1]].astype("uint8")


def _gamma0(classes, mean_db, seed):
    rng = np.random.default_rng(seed)
    mean = 10 ** (np.asarray(mean_db)[classes] / 10)
    return (mean * rng.gamma(4.4, 1 / 4.4, size=classes.shape)).astype("float32")  # ENL 4.4


def s1_scene(folder, item_id, zone=OSAKA, shape=(768, 640), seed=0, edge_cols=40,
             datetime="2023-03-04T20:40:00Z"):
    """A Sentinel-1 RTC-like item dict in ``folder`` and its arrays (``{"vv", "vh", "classes"}``).

    ``edge_cols`` columns on the left are swath-edge nodata (-32768) in both bands."""
    epsg, x0, y0 = zone
    folder.mkdir(parents=True, exist_ok=True)
    classes = land_cover(shape, seed)
    arrays = {"classes": classes}
    assets = {}
    for key, mean_db, s in (("vh", (-27, -17, -14), 1), ("vv", (-22, -10, -4), 2)):
        a = _gamma0(classes, mean_db, seed * 10 + s)
        a[:, :edge_cols] = S1_NODATA
        arrays[key] = write_cog(folder / f"{key}.tif", a, epsg=epsg, x0=x0, y0=y0, nodata=S1_NODATA, blocksize=256)
        assets[key] = {"href": str(folder / f"{key}.tif"), "type": COG_TYPE, "roles": ["data"],
                       "raster:bands": [{"nodata": S1_NODATA, "data_type": "float32", "spatial_resolution": 10}]}
    start = datetime.replace("T", " ")
    item = make_item(item_id, assets, collection="sentinel-1-rtc", datetime=datetime, properties={
        "start_datetime": start, "end_datetime": start, "proj:epsg": epsg, "proj:shape": list(shape),
        "proj:transform": [10.0, 0.0, x0, 0.0, -10.0, y0, 0.0, 0.0, 1.0], "sar:polarizations": ["VV", "VH"]})
    return item, arrays


#: the scenes of :func:`s1_scenes`: size, chip size, zones
SHAPE = (768, 640)
CHIP = 128
ZONES = {"OSAKA": OSAKA, "TOKYO": TOKYO}


def s1_scenes(root):
    """Four :func:`s1_scene` items in ``root``, Osaka (EPSG:32653) and Tokyo (EPSG:32654) on two
    dates each: (items, arrays by item id, their chip index of ``CHIP`` px chips)."""
    from geolesson import chips

    items, arrays = [], {}
    for k, (city, date) in enumerate(itertools.product(ZONES, ("2023-03-04", "2023-03-16"))):
        item_id = f"S1A_{city}_{date.replace('-', '')}"
        item, a = s1_scene(root / item_id, item_id, ZONES[city], shape=SHAPE, seed=k % 2,
                           datetime=f"{date}T20:40:00Z")
        items.append(item)
        arrays[item_id] = a
    return items, arrays, chips.chip_index(items, CHIP)


def s1_chip_transform(row) -> Affine:
    """The affine transform of a chip of :func:`s1_scenes`, from its item's zone and its window
    (``item_id``, ``row_off``, ``col_off``), worked out here rather than by geolesson."""
    _, x0, y0 = ZONES[row["item_id"].split("_")[1]]
    return Affine(10, 0, x0 + row["col_off"] * 10, 0, -10, y0 - row["row_off"] * 10)


def write_s1_band(folder, key, data, zone=OSAKA):
    """Rewrite one band of an :func:`s1_scene` (e.g. with more nodata)."""
    epsg, x0, y0 = zone
    return write_cog(folder / f"{key}.tif", data, epsg=epsg, x0=x0, y0=y0, nodata=S1_NODATA, blocksize=256)


#: the grid of :func:`metadata_item`: 10 m in UTM 35N
METADATA_EPSG = 32635
METADATA_TRANSFORM = Affine(10.0, 0.0, 576000.0, 0.0, -10.0, 4010680.0)


def metadata_item(shape=(300, 430), item_id="S2A_TEST_20230801_0_L2A", transform=METADATA_TRANSFORM):
    """An item dict with only the metadata a grid is read from (a ``red`` asset; no file behind it)."""
    return make_item(item_id, {"red": {"href": "red.tif", "proj:shape": list(shape),
                                       "proj:transform": list(transform)[:6]}},
                     datetime="2023-08-01T09:00:00Z", properties={"proj:epsg": METADATA_EPSG})


def assert_refused(call, expected: type, words) -> BaseException:
    """``call()`` raises ``expected`` (a subclass of it) whose message holds each of ``words``
    (the parameter, the value, what is allowed): the check of every bad-input table's row.
    Returns the exception."""
    import pytest

    with pytest.raises(expected) as caught:
        call()
    message = str(caught.value)
    missing = [w for w in words if w not in message]
    assert not missing, f"the message lacks {missing}: {message}"
    return caught.value


def run_cli(*argv) -> tuple[int, str]:
    """``geolesson argv`` in this process: (exit status, what it wrote on stderr)."""
    import contextlib
    import io

    from geolesson.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code
    return code, err.getvalue()
