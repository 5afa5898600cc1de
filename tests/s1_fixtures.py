"""Sentinel-1 RTC-like scenes made in code (torchgeo-style fixtures) for the chips and
batching tests: one float32 COG per polarization, linear gamma0, nodata -32768, no
raster:bands scale, ``proj:epsg`` an integer, item dicts in Planetary Computer's schema."""

from __future__ import annotations

import numpy as np
import rasterio
from rasterio.transform import from_origin

NODATA = -32768.0
#: (EPSG, x0, y0): Osaka in UTM 53N, Tokyo in UTM 54N (upper-left corners, metres)
OSAKA = (32653, 540000.0, 3850000.0)
TOKYO = (32654, 380000.0, 3960000.0)


def land_cover(shape, seed):
    """0 water, 1 vegetation, 2 urban: blocky classes, deterministic from the seed."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 3, size=(-(-shape[0] // 64), -(-shape[1] // 64)))
    return np.kron(coarse, np.ones((64, 64), dtype=int))[:shape[0], :shape[1]].astype("uint8")


def _gamma0(classes, mean_db, seed):
    rng = np.random.default_rng(seed)
    mean = 10 ** (np.asarray(mean_db)[classes] / 10)
    return (mean * rng.gamma(4.4, 1 / 4.4, size=classes.shape)).astype("float32")  # ENL 4.4


def write_cog(path, data, epsg, x0, y0, nodata=NODATA, blocksize=256):
    profile = {"driver": "COG", "width": data.shape[1], "height": data.shape[0], "count": 1,
               "dtype": str(data.dtype), "crs": f"EPSG:{epsg}", "nodata": nodata,
               "transform": from_origin(x0, y0, 10, 10), "blocksize": blocksize,
               "compress": "DEFLATE", "predictor": 3 if data.dtype.kind == "f" else 2}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)


def make_s1_item(folder, item_id, zone=OSAKA, shape=(768, 640), seed=0, edge_cols=40,
                 datetime="2023-03-04T20:40:00Z"):
    """A Sentinel-1 RTC-like item dict and its arrays ({"vv", "vh", "classes"}).

    ``edge_cols`` columns on the left are swath-edge nodata (-32768) in both bands."""
    epsg, x0, y0 = zone
    folder.mkdir(parents=True, exist_ok=True)
    classes = land_cover(shape, seed)
    arrays = {"classes": classes}
    assets = {}
    for key, mean_db, s in (("vh", (-27, -17, -14), 1), ("vv", (-22, -10, -4), 2)):
        a = _gamma0(classes, mean_db, seed * 10 + s)
        a[:, :edge_cols] = NODATA
        write_cog(folder / f"{key}.tif", a, epsg, x0, y0)
        arrays[key] = a
        assets[key] = {
            "href": str(folder / f"{key}.tif"), "type": "image/tiff; application=geotiff; "
            "profile=cloud-optimized", "roles": ["data"],
            "raster:bands": [{"nodata": NODATA, "data_type": "float32", "spatial_resolution": 10}]}
    start = datetime.replace("T", " ")
    item = {
        "type": "Feature", "stac_version": "1.0.0", "id": item_id, "collection": "sentinel-1-rtc",
        "geometry": None, "bbox": None, "links": [], "assets": assets,
        "properties": {"datetime": datetime, "start_datetime": start, "end_datetime": start,
                       "proj:epsg": epsg, "proj:shape": list(shape),
                       "proj:transform": [10.0, 0.0, x0, 0.0, -10.0, y0, 0.0, 0.0, 1.0],
                       "sar:polarizations": ["VV", "VH"]},
    }
    return item, arrays
