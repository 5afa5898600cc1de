"""geolesson.chips: chip grid, statistics, GeoParquet round trip, chip reads, errors.

The data are made here: small COGs (odd sizes) and a pystac.Item with proj:* and raster:bands.
"""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pystac
import pytest
import rasterio
from rasterio.transform import from_origin

from geolesson import chips
from geolesson.indices import reflectance
from tests import s1_fixtures as s1f

X0, Y0 = 500000.0, 4000000.0
CLOUD = (3, 8, 9, 10)


def _write(path, data, res, dtype, epsg=32635, blocksize=128):
    profile = {"driver": "COG", "width": data.shape[1], "height": data.shape[0], "count": 1, "dtype": dtype,
               "crs": f"EPSG:{epsg}", "transform": from_origin(X0, Y0, res, res), "nodata": 0,
               "blocksize": blocksize, "compress": "DEFLATE"}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype(dtype), 1)


def _asset(href, shape, res, scale=True, dtype="uint16"):
    band = {"nodata": 0, "data_type": dtype, "spatial_resolution": res}
    if scale:
        band.update(scale=0.0001, offset=-0.1)
    return pystac.Asset(href=str(href), media_type=pystac.MediaType.COG, roles=["data"], extra_fields={
        "proj:shape": list(shape), "proj:transform": [res, 0.0, X0, 0.0, -res, Y0],
        "raster:bands": [band]})


def make_item(tmp_path, shape10=(1000, 700), scl=None, seed=0, item_id="T_1", epsg_field=("proj:epsg", 32635),
              bands=("red", "green", "blue", "nir"), with_swir=True):
    """A torchgeo-style synthetic scene: 10 m bands, a 20 m swir16 and SCL; returns (item, arrays)."""
    rng = np.random.default_rng(seed)
    folder = tmp_path / item_id
    folder.mkdir()
    h, w = shape10
    shape20 = (math.ceil(h / 2), math.ceil(w / 2))
    arrays, assets = {}, {}
    for i, key in enumerate(bands):
        a = rng.integers(1, 10000, size=shape10).astype("uint16")
        a[:3, :5] = 0  # some nodata
        _write(folder / f"{key}.tif", a, 10, "uint16")
        arrays[key] = a
        assets[key] = _asset(folder / f"{key}.tif", shape10, 10.0)
    if with_swir:
        a = rng.integers(1, 10000, size=shape20).astype("uint16")
        _write(folder / "swir16.tif", a, 20, "uint16")
        arrays["swir16"] = a
        assets["swir16"] = _asset(folder / "swir16.tif", shape20, 20.0)
    if scl is None:
        scl = rng.integers(0, 12, size=shape20).astype("uint8")
    _write(folder / "scl.tif", scl, 20, "uint8")
    arrays["scl"] = scl
    assets["scl"] = _asset(folder / "scl.tif", scl.shape, 20.0, scale=False, dtype="uint8")
    item = pystac.Item(id=item_id, geometry=None, bbox=None, collection=None,
                       datetime=datetime(2023, 7, 2, 9, 6, 19, tzinfo=UTC),
                       properties={epsg_field[0]: epsg_field[1]} if epsg_field else {})
    item.collection_id = "sentinel-2-l2a"
    for key, asset in assets.items():
        item.add_asset(key, asset)
    return item, arrays


def brute_stats(scl, shape10, chip_size, partial):
    """Per-chip Python loop: SCL pixels touched by each chip footprint (20 m over 10 m)."""
    h, w = shape10
    nr = h // chip_size if partial == "drop" else -(-h // chip_size)
    nc = w // chip_size if partial == "drop" else -(-w // chip_size)
    out = {}
    for r in range(nr):
        for c in range(nc):
            r0, c0 = r * chip_size, c * chip_size
            r1, c1 = min(r0 + chip_size, h), min(c0 + chip_size, w)
            block = scl[r0 // 2:-(-r1 // 2), c0 // 2:-(-c1 // 2)]
            n = block.size
            nod = int((block == 0).sum())
            cld = int(np.isin(block, CLOUD).sum())
            out[(r, c)] = (nod / n, cld / (n - nod) if n > nod else 0.0, r1 - r0, c1 - c0)
    return out


def assert_matches_brute_force(idx, scl, shape10, chip_size, partial):
    expected = brute_stats(scl, shape10, chip_size, partial)
    assert len(idx) == len(expected)
    for r in idx.itertuples():
        nod, cld, hh, ww = expected[(r.row, r.col)]
        assert (r.height, r.width) == (hh, ww)
        assert r.nodata_fraction == pytest.approx(nod, abs=1e-12)
        assert r.cloud_fraction == pytest.approx(cld, abs=1e-12)


@pytest.fixture
def scene(tmp_path):
    return make_item(tmp_path)


# ---------------------------------------------------------------------------------------
# the index
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("partial", ["drop", "keep"])
@pytest.mark.parametrize("chip_size", [256, 100, 64])
def test_statistics_equal_brute_force(scene, partial, chip_size):
    item, arrays = scene
    idx = chips.chip_index(item, chip_size, partial=partial)
    assert_matches_brute_force(idx, arrays["scl"], (1000, 700), chip_size, partial)
    for r in idx.itertuples():
        assert r.chip_id == f"sentinel-2-l2a_T_1_{chip_size}px_{r.row}_{r.col}"
        assert (r.row_off, r.col_off) == (r.row * chip_size, r.col * chip_size)


def test_odd_sizes_keep_partial(tmp_path):
    # 10 m 1001 x 703 with SCL 501 x 352: the last SCL pixel is half outside the grid
    item, arrays = make_item(tmp_path, shape10=(1001, 703), with_swir=False)
    idx = chips.chip_index(item, 256, partial="keep")
    assert len(idx) == 4 * 3
    assert sorted(set(idx.height)) == [233, 256] and sorted(set(idx.width)) == [191, 256]
    assert_matches_brute_force(idx, arrays["scl"], (1001, 703), 256, "keep")
    assert len(chips.chip_index(item, 256, partial="drop")) == 3 * 2


@pytest.mark.parametrize("chip_size", [64, 200, 300])
def test_tall_scene_read_in_several_strips(tmp_path, chip_size, monkeypatch):
    # SCL 1051 x 151 read in strips of about 200 rows (whole rows of chips): the chips that
    # start, follow or end a strip are counted like the others
    monkeypatch.setattr(chips.statistics, "STRIP_ROWS", 200)
    item, arrays = make_item(tmp_path, shape10=(2101, 301), with_swir=False, bands=("red",))
    for partial in ("drop", "keep"):
        idx = chips.chip_index(item, chip_size, partial=partial)
        assert_matches_brute_force(idx, arrays["scl"], (2101, 301), chip_size, partial)


def test_class_runs_and_counts_for_any_integer_dtype():
    assert chips.statistics._runs([10, 3, 9, 8, 1, 3]) == [(1, 1), (3, 3), (8, 10)]
    scl = np.random.default_rng(3).integers(0, 12, size=(300, 260))
    expected = None
    for dtype in ("uint8", "uint16", "int16", "int64"):
        strips = [(0, scl[:200].astype(dtype)), (200, scl[200:].astype(dtype))]
        counts = chips.statistics.chip_counts(iter(strips), 100, 300, 260, 3, 3, [1, 3, 8, 9, 10])
        if expected is None:
            blocks = [[scl[r * 100:(r + 1) * 100, c * 100:(c + 1) * 100] for c in range(3)] for r in range(3)]
            expected = ([[b.size for b in row] for row in blocks], [[(b == 0).sum() for b in row] for row in blocks],
                        [[np.isin(b, [1, 3, 8, 9, 10]).sum() for b in row] for row in blocks])
        for got, want in zip(counts, expected):
            np.testing.assert_array_equal(got, want)


def test_nodata_edges_all_cloud_and_empty_chip(tmp_path):
    scl = np.full((500, 350), 9, dtype="uint8")  # all cloud (high probability)
    scl[:, :64] = 0  # a no-data swath edge: chips in column 0 are half empty
    scl[384:, :] = 0  # bottom chips (and the partial row) entirely without data
    item, _ = make_item(tmp_path, scl=scl, with_swir=False)
    idx = chips.chip_index(item, 256, partial="keep")
    assert_matches_brute_force(idx, scl, (1000, 700), 256, "keep")
    assert not idx[["nodata_fraction", "cloud_fraction"]].isna().any().any()
    empty = idx[idx.nodata_fraction == 1]
    assert len(empty) > 0 and (empty.cloud_fraction == 0).all()  # documented: 0, not NaN
    full = idx[idx.nodata_fraction == 0]
    assert len(full) > 0 and (full.cloud_fraction == 1).all()
    half = idx[(idx.row == 0) & (idx.col == 0)].iloc[0]
    assert half.nodata_fraction == pytest.approx(0.5) and half.cloud_fraction == 1.0


def test_filters_and_cloud_classes(scene):
    item, arrays = scene
    idx = chips.chip_index(item, 100)
    f = chips.chip_index(item, 100, max_nodata=0.05, max_cloud=0.3)
    expected = idx[(idx.nodata_fraction <= 0.05) & (idx.cloud_fraction <= 0.3)]
    assert list(f.chip_id) == list(expected.chip_id)
    only9 = chips.chip_index(item, 100, cloud_classes=(9,))
    r = only9.iloc[0]
    block = arrays["scl"][:50, :50]
    assert r.cloud_fraction == pytest.approx((block == 9).sum() / (block != 0).sum())
    none = chips.chip_index(item, 100, max_nodata=0.0, max_cloud=0.0)
    assert len(none) == 0 and list(none.columns) == list(idx.columns)


def test_grid_covers_scene_without_overlap(scene):
    item, _ = scene
    for partial, covered in (("keep", (1000, 700)), ("drop", (768, 512))):
        idx = chips.chip_index(item, 256, partial=partial)
        count = np.zeros((1000, 700), dtype=int)
        for r in idx.itertuples():
            count[r.row_off:r.row_off + r.height, r.col_off:r.col_off + r.width] += 1
        assert count.max() == 1
        assert count[:covered[0], :covered[1]].min() == 1 and count.sum() == covered[0] * covered[1]


def test_columns_dtypes_and_footprints(scene):
    import geopandas as gpd
    from pyproj import Transformer

    item, _ = scene
    idx = chips.chip_index(item, 256, partial="keep")
    assert isinstance(idx, gpd.GeoDataFrame) and idx.crs.to_epsg() == 4326
    assert list(idx.columns) == [*chips.INDEX_COLUMNS, "geometry"]
    for c in ("crs", "col", "row", "col_off", "row_off", "width", "height"):
        assert idx[c].dtype == np.int64, c
    assert str(idx["datetime"].dt.tz) == "UTC"
    assert idx["datetime"].iloc[0] == pd.Timestamp("2023-07-02T09:06:19Z")
    assert (idx["crs"] == 32635).all() and (idx.collection == "sentinel-2-l2a").all()
    # the footprint's corners are the exact UTM window corners, reprojected
    to_utm = Transformer.from_crs(4326, 32635, always_xy=True)
    r = idx.iloc[-1]
    xs, ys = to_utm.transform(*np.asarray(r.geometry.exterior.coords).T)
    assert min(xs) == pytest.approx(X0 + r.col_off * 10, abs=1e-4)
    assert max(xs) == pytest.approx(X0 + (r.col_off + r.width) * 10, abs=1e-4)
    assert max(ys) == pytest.approx(Y0 - r.row_off * 10, abs=1e-4)
    assert min(ys) == pytest.approx(Y0 - (r.row_off + r.height) * 10, abs=1e-4)
    assert len(r.geometry.exterior.coords) == 17 and r.geometry.is_valid
    # neighbouring chips touch and do not overlap
    a, b = idx.geometry.iloc[0], idx.geometry.iloc[1]
    assert a.intersection(b).area < 1e-9 * a.area


def test_proj_code_and_item_list(tmp_path):
    a, _ = make_item(tmp_path, item_id="A", epsg_field=("proj:code", "EPSG:32635"), with_swir=False)
    b, _ = make_item(tmp_path, item_id="B", seed=1, with_swir=False)
    idx = chips.chip_index([a, b.to_dict()], 256)
    assert list(idx.item_id.unique()) == ["A", "B"] and len(idx) == 12 and (idx["crs"] == 32635).all()
    # merging indexes is concatenation
    merged = pd.concat([chips.chip_index(a, 256), chips.chip_index(b, 256)], ignore_index=True)
    pd.testing.assert_frame_equal(pd.DataFrame(merged), pd.DataFrame(idx))


# ---------------------------------------------------------------------------------------
# GeoParquet
# ---------------------------------------------------------------------------------------


def _same(a, b):
    a = a.sort_values("chip_id").reset_index(drop=True)
    b = b.sort_values("chip_id").reset_index(drop=True)
    assert a.crs == b.crs
    assert dict(a.dtypes) == dict(b.dtypes)
    pd.testing.assert_frame_equal(pd.DataFrame(a.drop(columns="geometry")), pd.DataFrame(b.drop(columns="geometry")))
    assert a.geometry.geom_equals_exact(b.geometry, tolerance=0).all()


@pytest.mark.parametrize("partition", [False, True])
def test_geoparquet_round_trip(tmp_path, partition):
    a, _ = make_item(tmp_path, item_id="A", with_swir=False)
    b, _ = make_item(tmp_path, item_id="B", seed=1, with_swir=False)
    idx = chips.chip_index([a, b], 256, partial="keep")
    path = tmp_path / ("index" if partition else "index.parquet")
    chips.write_index(idx, path, partition_by_item=partition)
    if partition:
        assert sorted(p.name for p in path.iterdir()) == ["item_id=A", "item_id=B"]
        assert (path / "item_id=A" / "part.parquet").is_file()
    back = chips.read_index(path)
    assert back.crs.to_epsg() == 4326
    for c in ("crs", "col", "row", "col_off", "row_off", "width", "height"):
        assert back[c].dtype == np.int64
    assert str(back["datetime"].dt.tz) == "UTC"
    _same(idx, back)
    plain = chips.read_index(path, geometry=False)  # for training processes: no geopandas
    assert type(plain) is pd.DataFrame and "geometry" not in plain.columns
    pd.testing.assert_frame_equal(plain, pd.DataFrame(idx.drop(columns="geometry")))


def test_read_index_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="no chip index"):
        chips.read_index(tmp_path / "nope.parquet")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="item_id="):
        chips.read_index(tmp_path / "empty")


# ---------------------------------------------------------------------------------------
# reading chips
# ---------------------------------------------------------------------------------------


def _expected(arrays, item, key, r):
    a = arrays[key]
    if key == "swir16":
        a = np.repeat(np.repeat(a, 2, axis=0), 2, axis=1)
    dn = a[r.row_off:r.row_off + r.height, r.col_off:r.col_off + r.width]
    return reflectance(dn, item.assets[key])


def test_read_chip_equals_full_array(scene):
    item, arrays = scene
    idx = chips.chip_index(item, 256, partial="keep")
    assets = ("red", "nir", "swir16")
    for _, r in idx.iterrows():
        da = chips.read_chip(r, assets, items={item.id: item})
        assert da.dims == ("band", "y", "x") and da.dtype == np.float32
        assert da.shape == (3, r.height, r.width) and list(da.band.values) == list(assets)
        for i, key in enumerate(assets):
            np.testing.assert_array_equal(da.values[i], _expected(arrays, item, key, r))
        assert da.rio.crs.to_epsg() == 32635
        assert da.x.values[0] == X0 + (r.col_off + 0.5) * 10 and da.y.values[0] == Y0 - (r.row_off + 0.5) * 10
        assert da.rio.transform().c == X0 + r.col_off * 10
        assert da.attrs["chip_id"] == r.chip_id
    assert np.isnan(chips.read_chip(idx.iloc[0], items=item).values[0, :3, :5]).all()  # nodata -> NaN


def test_read_chips_one_pass(scene):
    item, arrays = scene
    idx = chips.chip_index(item, 128, partial="keep")
    some = idx.iloc[[0, 3, 7, len(idx) - 1]]
    out = chips.read_chips(some, ("green", "swir16"), items=[item])
    assert len(out) == 4
    for (_, r), da in zip(some.iterrows(), out):
        for i, key in enumerate(("green", "swir16")):
            np.testing.assert_array_equal(da.values[i], _expected(arrays, item, key, r))
    full = idx[(idx.width == 128) & (idx.height == 128)].iloc[:5]
    st = chips.read_chips(full, ("red", "blue"), items=item, stack=True)
    assert st.dims == ("chip", "band", "y", "x") and st.shape == (5, 2, 128, 128)
    assert list(st.chip.values) == list(full.chip_id) and st.rio.crs.to_epsg() == 32635
    for j, (_, r) in enumerate(full.iterrows()):
        np.testing.assert_array_equal(st.values[j, 1], _expected(arrays, item, "blue", r))
    with pytest.raises(ValueError, match="one size"):
        chips.read_chips(some, items=item, stack=True)


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_lookup_table_scaling_equals_reflectance(dtype):
    """Large windows are scaled through a lookup table; small ones with reflectance(): same values."""
    asset = {"raster:bands": [{"scale": 0.0001, "offset": -0.1, "nodata": 0}]}
    info = np.iinfo(dtype)
    big = np.random.default_rng(1).integers(0, info.max, size=(700, 1000), endpoint=True).astype(dtype)
    big[0, :10] = 0
    small = big[:40, :40]
    for window in (big, small):
        out = np.empty(window.shape, dtype=np.float32)
        chips.reads._scaler(window, asset)(window, out)
        np.testing.assert_array_equal(out, reflectance(window, asset))
    assert np.isnan(out[0, :10]).all()


def test_dataset_cache_reused_and_reset_after_fork(scene):
    item, _ = scene
    idx = chips.chip_index(item, 256)
    chips.close_datasets()
    chips.read_chip(idx.iloc[0], ("red",), items=item)
    ds = chips.files._cache()[item.assets["red"].href]
    chips.read_chip(idx.iloc[1], ("red",), items=item)
    assert chips.files._cache()[item.assets["red"].href] is ds and len(chips.files._cache()) == 1
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: empty cache, reads still work
        ok = len(chips.files._cache()) == 0
        try:
            chips.read_chip(idx.iloc[2], ("red",), items=item)
        except Exception:  # noqa: BLE001
            ok = False
        os.write(w, b"1" if ok else b"0")
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(r, 1) == b"1"
    assert chips.files._cache()[item.assets["red"].href] is ds
    chips.close_datasets()
    assert chips.files._cache() == {}


def test_failed_read_names_href(scene, tmp_path):
    item, _ = scene
    idx = chips.chip_index(item, 256)
    broken = item.clone()
    bad = str(tmp_path / "missing" / "B04.tif")
    broken.assets["red"].href = bad
    chips.close_datasets()
    with pytest.raises(OSError, match="missing/B04.tif"):
        chips.read_chip(idx.iloc[0], ("red",), items=broken)
    broken.assets["scl"].href = str(tmp_path / "missing" / "SCL.tif")
    with pytest.raises(OSError, match="missing/SCL.tif"):
        chips.chip_index(broken)
    with pytest.raises(KeyError, match="not among"):
        chips.read_chip(idx.iloc[0], items=[])


# ---------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("chip_size, match", [
    (0, "chip_size must be a positive integer"), (-5, "chip_size must be a positive integer"),
    (2.5, "chip_size must be a positive integer"), (1001, "larger than the scene"),
    (701, "larger than the scene"), (255, "whole number"),
])
def test_bad_chip_size(scene, chip_size, match):
    with pytest.raises(ValueError, match=match):
        chips.chip_index(scene[0], chip_size)


def test_bad_arguments(scene):
    item, _ = scene
    with pytest.raises(ValueError, match="partial must be one of"):
        chips.chip_index(item, partial="pad")
    with pytest.raises(ValueError, match="max_cloud must be None or a fraction"):
        chips.chip_index(item, max_cloud=1.5)
    with pytest.raises(ValueError, match="cloud_classes: \\[12\\]"):
        chips.chip_index(item, cloud_classes=(9, 12))


def test_items_that_are_not_items():
    with pytest.raises(TypeError, match="not None .did a search or get_item find nothing"):
        chips.chip_index(None)
    with pytest.raises(TypeError, match="not 'S2A_35SNA'"):
        chips.chip_index("S2A_35SNA")


def test_item_without_scl(scene):
    item, arrays = scene
    del item.assets["scl"]
    with pytest.raises(ValueError, match="no asset 'scl'"):
        chips.chip_index(item, statistics="scl")
    # "auto" falls back to the nodata (0) of the reference asset, red
    idx = chips.chip_index(item, 100)
    red = arrays["red"]
    for r in idx.itertuples():
        assert r.nodata_fraction == (red[r.row_off:r.row_off + 100, r.col_off:r.col_off + 100] == 0).mean()
    assert idx.cloud_fraction.isna().all() and (idx.nodata_fraction[idx.row_off == 0].iloc[0] > 0)


def test_scl_file_not_the_size_its_item_says(scene):
    item, _ = scene
    item.assets["scl"].extra_fields["proj:shape"] = [501, 350]  # the file is 500 x 350
    with pytest.raises(ValueError, match=r"scl.tif' is 500 x 350 pixels, but item 'T_1', asset 'scl', says "
                                         r"proj:shape \[501, 350\]"):
        chips.chip_index(item)


def test_empty_items_and_bad_statistics(scene):
    with pytest.raises(ValueError, match="items is empty.*search that matched no item"):
        chips.chip_index([])
    with pytest.raises(ValueError, match="statistics must be one of"):
        chips.chip_index(scene[0], statistics="cloud")


def test_crs_not_in_metres(tmp_path):
    item, _ = make_item(tmp_path, epsg_field=("proj:epsg", 4326), with_swir=False)
    with pytest.raises(ValueError, match="projected CRS in metres"):
        chips.chip_index(item)
    item2, _ = make_item(tmp_path, item_id="F", epsg_field=("proj:code", "EPSG:2227"), with_swir=False)
    with pytest.raises(ValueError, match="US survey foot|projected CRS in metres"):  # California, US feet
        chips.chip_index(item2)


def test_unknown_epsg_code(tmp_path, capfd):
    item, _ = make_item(tmp_path, epsg_field=("proj:epsg", 999999), with_swir=False)
    with pytest.raises(ValueError, match="EPSG code 999999 is not a known CRS"):
        chips.chip_index(item)
    assert "ERROR" not in capfd.readouterr().err  # GDAL's own message is not printed as well


def test_item_without_proj(tmp_path):
    item, _ = make_item(tmp_path, epsg_field=None, with_swir=False)
    with pytest.raises(ValueError, match="no proj:epsg or proj:code"):
        chips.chip_index(item)
    item2, _ = make_item(tmp_path, item_id="S", with_swir=False)
    del item2.assets["scl"].extra_fields["proj:transform"]
    with pytest.raises(ValueError, match="asset 'scl': no proj:transform"):
        chips.chip_index(item2)
    del item2.assets["red"].extra_fields["proj:shape"]
    with pytest.raises(ValueError, match="asset 'red': no proj:shape"):
        chips.chip_index(item2)


# ---------------------------------------------------------------------------------------
# the real mirror (one item)
# ---------------------------------------------------------------------------------------


def test_mirror_item_partial_orbit(mirror):
    import time

    import pystac_client

    from geolesson.mirror.sentinel2.scenario import load_scenario

    # index 3 of the season starting 2023-06-02 every 5 days: 2023-06-17, a partial-orbit date
    client = pystac_client.Client.open(mirror["api_url"])
    found = list(client.search(collections=["sentinel-2-l2a"], ids=["S2B_35SNV_20230617_0_L2A"]).items())
    assert len(found) == 1
    t0 = time.perf_counter()
    idx = chips.chip_index(found[0], 256)
    elapsed = time.perf_counter() - t0
    print(f"chip_index on one mirror item: {elapsed * 1000:.0f} ms")
    height, width = found[0].assets["red"].extra_fields["proj:shape"]
    crop = next(t for t in load_scenario().tiles if t.mgrs == "35SNV")
    assert (height, width) == (crop.height, crop.width)
    assert len(idx) == (height // 256) * (width // 256) >= 28
    assert idx.nodata_fraction.max() > 0 and idx.nodata_fraction.mean() > 0
    da = chips.read_chip(idx.iloc[27], ("red", "swir16"), items=found)
    assert da.shape == (2, 256, 256) and da.dtype == np.float32


# ---------------------------------------------------------------------------------------
# Sentinel-1 (no SCL), merged indexes, reads without scale, bad windows, bad files
# ---------------------------------------------------------------------------------------


def _s1(tmp_path, item_id="S1A_OSAKA", zone=s1f.OSAKA, seed=0, **kw):
    return s1f.make_s1_item(tmp_path / item_id, item_id, zone, seed=seed, **kw)


def test_sentinel1_nodata_statistics(tmp_path):
    item, arrays = _s1(tmp_path)
    arrays["vh"][600:, 300:] = s1f.NODATA  # vh has more nodata than vv
    s1f.write_cog(tmp_path / "S1A_OSAKA" / "vh.tif", arrays["vh"], *s1f.OSAKA)
    idx = chips.chip_index(item, 128, partial="keep")
    assert (idx.reference_asset == "vv").all() and (idx["crs"] == 32653).all()
    assert idx.cloud_fraction.isna().all() and (idx.collection == "sentinel-1-rtc").all()
    for key, index in (("vv", idx), ("vh", chips.chip_index(item, 128, partial="keep", nodata_asset="vh"))):
        a = arrays[key]
        for r in index.itertuples():
            window = a[r.row_off:r.row_off + r.height, r.col_off:r.col_off + r.width]
            assert r.nodata_fraction == pytest.approx((window == s1f.NODATA).mean(), abs=1e-12)
    assert idx.nodata_fraction.iloc[0] == pytest.approx(40 / 128)
    assert len(chips.chip_index(item, 128, max_nodata=0.0)) == 6 * 4  # first column of chips dropped
    with pytest.raises(ValueError, match="max_cloud=0.1 needs cloud statistics"):
        chips.chip_index(item, max_cloud=0.1)
    del item["assets"]["vv"]["raster:bands"][0]["nodata"]
    with pytest.raises(ValueError, match="asset 'vv' has no raster:bands nodata"):
        chips.chip_index(item)


def test_indexes_of_collections_zones_and_sizes_merge(tmp_path):
    s2, _ = make_item(tmp_path, item_id="T_1", with_swir=False)
    osaka, _ = _s1(tmp_path)
    tokyo, _ = _s1(tmp_path, "S1A_TOKYO", s1f.TOKYO, seed=1)
    parts = [chips.chip_index(s2, 256), chips.chip_index([osaka, tokyo], 256),
             chips.chip_index([osaka, tokyo], 128), chips.chip_index(s2, 128)]
    merged = pd.concat(parts, ignore_index=True)
    assert merged["chip_id"].is_unique and len(merged) == sum(map(len, parts))
    assert sorted(merged["crs"].unique()) == [32635, 32653, 32654]
    assert set(merged.reference_asset) == {"red", "vv"} and set(merged.chip_size) == {128, 256}
    assert all((p.dtypes == parts[0].dtypes).all() for p in parts)
    assert merged.crs.to_epsg() == 4326
    back = chips.read_index(chips.write_index(merged, tmp_path / "merged.parquet"))
    _same(merged, back)
    # the row's reference_asset picks the grid: S1 and S2 rows read with no reference_asset=
    s1_row = merged[merged.collection == "sentinel-1-rtc"].iloc[-1]
    assert chips.read_chip(s1_row, ("vv", "vh"), items=[osaka, tokyo]).shape == (2, 128, 128)


def test_reads_without_scale_are_physical_float32(tmp_path):
    item, arrays = _s1(tmp_path, zone=s1f.TOKYO)
    idx = chips.chip_index(item, 128, partial="keep")
    for _, r in idx.iloc[[0, 5, len(idx) - 1]].iterrows():
        da = chips.read_chip(r, ("vv", "vh"), items=item)
        assert da.name == "value" and da.dtype == np.float32 and da.rio.crs.to_epsg() == 32654
        for i, key in enumerate(("vv", "vh")):
            with rasterio.open(item["assets"][key]["href"]) as ds:
                direct = ds.read(1, window=((r.row_off, r.row_off + r.height), (r.col_off, r.col_off + r.width)))
            expected = np.where(direct == s1f.NODATA, np.float32(np.nan), direct)
            np.testing.assert_array_equal(da.values[i], expected)  # NaN == NaN here; bit for bit otherwise
        arr = chips.read_chip_array(r, ("vv", "vh"), items={item["id"]: item})
        np.testing.assert_array_equal(arr.data, da.values)
        assert arr.epsg == 32654 and tuple(arr.transform)[:6] == tuple(da.rio.transform())[:6]
    assert np.isnan(chips.read_chip(idx.iloc[0], ("vv",), items=item).values[0, :, :40]).all()


def test_windows_outside_or_empty_are_errors(tmp_path):
    item, arrays = _s1(tmp_path)  # 768 x 640
    row = {"item_id": item["id"], "row_off": 0, "col_off": 0, "height": 128, "width": 128}
    for bad, match in (({"row_off": 5000}, "row_off=5000, col_off=0: the window rows \\[5000, 5128\\)"),
                       ({"col_off": -300}, "col_off=-300: .* lies wholly outside item 'S1A_OSAKA'"),
                       ({"height": 0}, "height=0: a chip window needs a positive"),
                       ({"width": -2}, "width=-2")):
        with pytest.raises(ValueError, match=match):
            chips.read_chip({**row, **bad}, ("vv",), items=item)
    # a window over the edge keeps its documented NaN padding
    da = chips.read_chip({**row, "row_off": 700, "col_off": -64}, ("vv",), items=item)
    assert np.isnan(da.values[0, 68:]).all() and np.isnan(da.values[0, :, :64]).all()
    np.testing.assert_array_equal(da.values[0, :68, 104:], arrays["vv"][700:, 40:64])


def test_read_index_of_files_that_are_not_indexes(tmp_path):
    text = tmp_path / "notes.parquet"
    text.write_text("not parquet")
    with pytest.raises(ValueError, match="notes.parquet is not a Parquet file"):
        chips.read_index(text)
    plain = tmp_path / "plain.parquet"
    pd.DataFrame({"a": [1, 2]}).to_parquet(plain)
    for geometry in (True, False):
        with pytest.raises(ValueError, match="plain.parquet is a Parquet file without a GeoParquet geometry"):
            chips.read_index(plain, geometry=geometry)
    with pytest.raises(ValueError, match="notes.parquet is not a Parquet file"):
        chips.read_index(text, geometry=False)
