"""Write a simulated scene as Cloud-Optimized GeoTIFFs laid out like Earth Search's ``sentinel-cogs``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.crs import CRS

from geolesson.mirror.scenario import GSD, Tile
from geolesson.mirror.simulate import BANDS, Scene
from geolesson.mirror.stac_items import OFFSET, SCALE, SPECTRAL, asset_keys

# DEFLATE with the horizontal predictor and internal overviews, as Earth Search's COGs.
# 512 x 512 blocks: with 1024 blocks the 1024-pixel overview of a 2048-pixel crop would be a
# single strip-like block, which rio-cogeo's validator (rightly) rejects.
BLOCKSIZE = 512
OVERVIEW_COUNT = 3
LOSSLESS = dict(compress="DEFLATE", predictor=2, level=6)
# The true-colour image is JPEG-compressed (YCbCr, quality 90): it is only ever looked at,
# ESA's own TCI is lossy JPEG 2000, and DEFLATE would make it the largest file of a crop.
VISUAL = dict(compress="JPEG", quality=90)


def write_cog(path: Path, data: np.ndarray, tile: Tile, resolution: float, epsg: int, resampling: str,
              compression: dict = LOSSLESS) -> None:
    """Write a (bands, H, W) array as a COG with nodata 0 (``compression``: GDAL COG creation options)."""
    profile = dict(
        driver="COG", width=data.shape[2], height=data.shape[1], count=data.shape[0], dtype=data.dtype,
        crs=CRS.from_epsg(epsg), transform=tile.transform(resolution), nodata=0,
        blocksize=BLOCKSIZE, **compression,
        overview_resampling=resampling, overview_count=OVERVIEW_COUNT, bigtiff="NO", num_threads="ALL_CPUS",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.tif")
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.write(data)
    tmp.replace(path)


def to_dn(reflectance: np.ndarray) -> np.ndarray:
    """Reflectance (NaN = nodata) -> uint16 digital numbers, DN = (reflectance - offset) / scale, 0 = nodata."""
    dn = np.rint((reflectance - OFFSET) / SCALE)
    return np.where(np.isnan(reflectance), 0, np.clip(dn, 1, 65535)).astype("uint16")


def to_20m(band: np.ndarray) -> np.ndarray:
    """Average 2 x 2 blocks of 10 m pixels (NaN if any is nodata)."""
    h, w = band.shape
    return band.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))


def true_colour(reflectance: np.ndarray) -> np.ndarray:
    """(3, H, W) uint8 TCI: red, green, blue reflectance 0-0.2 stretched to 1-255, 0 = nodata (as Sen2Cor's TCI)."""
    rgb = reflectance[[BANDS.index("red"), BANDS.index("green"), BANDS.index("blue")]]
    tci = np.clip(np.rint(rgb / 0.2 * 254) + 1, 1, 255)
    return np.where(np.isnan(rgb), 0, tci).astype("uint8")


def write_scene(folder: Path, scene: Scene, tile: Tile, epsg: int) -> None:
    """The assets of one item (``stac_items.asset_keys``): B02-B12 COGs, SCL.tif (20 m), TCI.tif, thumbnail.jpg."""
    keys = asset_keys(tile)
    for key, (fname, _, _, _, _, gsd) in SPECTRAL.items():
        if key not in keys:
            continue
        band = scene.reflectance[BANDS.index(key)]
        if gsd == 20:
            band = to_20m(band)
        write_cog(folder / f"{fname}.tif", to_dn(band)[None], tile, gsd, epsg, "average")
    write_cog(folder / "SCL.tif", scene.scl[None, ::2, ::2], tile, 2 * GSD, epsg, "nearest")
    if "visual" in keys:
        write_cog(folder / "TCI.tif", true_colour(scene.reflectance), tile, GSD, epsg, "average", VISUAL)
    # the thumbnail from every step-th pixel, decimated before the per-pixel colour mapping (the
    # same pixels as decimating the TCI): a whole tile's full-size TCI would cost GBs of memory
    step = max(1, scene.reflectance.shape[1] // 256)
    thumbnail = true_colour(scene.reflectance[:, ::step, ::step])
    Image.fromarray(thumbnail.transpose(1, 2, 0)).save(folder / "thumbnail.jpg", quality=85)
