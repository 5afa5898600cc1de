"""The placeholder assets of an item: valid files of the declared type and grid that hold no measurement.

Earth Search items carry assets the mirror does not simulate (the 60 m and red-edge bands, the
JPEG 2000 twins of every raster, the granule and tile metadata). So that every href answers,
each is written as the smallest honest stand-in:

- a COG or JPEG 2000 raster of the asset's data type and grid (``proj:shape``,
  ``proj:transform``, CRS) whose every pixel is nodata (0), with internal overviews (COG) or
  resolution levels (JPEG 2000); the GeoTIFF tag ``PLACEHOLDER`` says what it is;
- ``granule_metadata.xml`` and ``tileinfo_metadata.json``: short stubs with the tile, the
  sensing time and the product name, and a note that they are placeholders.

A constant raster compresses to almost nothing: a whole-tile 10 m placeholder is a few
kilobytes. The same grid on another date gives the same bytes, so each distinct raster is
encoded once per process and copied.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from xml.sax.saxutils import escape

import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.crs import CRS
from rasterio.io import MemoryFile

from geolesson.mirror.sentinel2 import naming
from geolesson.mirror.sentinel2.assets import ASSETS, PLACEHOLDER_NOTE, Asset
from geolesson.mirror.sentinel2.items import asset_grid
from geolesson.mirror.sentinel2.scenario import Acquisition, Scenario, Tile
from geolesson.mirror.sentinel2.writing import BLOCKSIZE, OVERVIEW_COUNT
from geolesson.mirror.stac import iso

# Lossless JPEG 2000 (ESA writes L2A granules losslessly), with GDAL's default resolution levels (the
# smallest no bigger than 128 x 128 px). Like ESA's files, they declare no nodata value: the
# item's raster:bands say 0.
JP2_OPTIONS = dict(QUALITY=100, REVERSIBLE="YES", BLOCKXSIZE=1024, BLOCKYSIZE=1024)
COG_OPTIONS = dict(blocksize=BLOCKSIZE, compress="DEFLATE", predictor=2, overview_count=OVERVIEW_COUNT,
                   overview_resampling="nearest", bigtiff="NO")


@lru_cache(maxsize=64)
def _encoded(driver: str, shape: tuple[int, int], count: int, dtype: str, transform: tuple, epsg: int) -> bytes:
    """The bytes of a nodata raster of this grid, written by GDAL's COG or JP2OpenJPEG driver."""
    suffix = ".tif" if driver == "COG" else ".jp2"
    options = COG_OPTIONS if driver == "COG" else JP2_OPTIONS
    with MemoryFile() as staging, MemoryFile(ext=suffix) as out:
        with staging.open(driver="GTiff", height=shape[0], width=shape[1], count=count, dtype=dtype,
                          crs=CRS.from_epsg(epsg), transform=Affine(*transform), nodata=0, tiled=True,
                          blockxsize=BLOCKSIZE, blockysize=BLOCKSIZE, compress="DEFLATE") as ds:
            ds.update_tags(PLACEHOLDER=PLACEHOLDER_NOTE)  # blocks never written read as nodata
        with staging.open() as src:
            rasterio.shutil.copy(src, out.name, driver=driver, **options)
        return out.read()


def write_raster(path: Path, asset: Asset, tile: Tile, epsg: int) -> None:
    """Write the placeholder file of raster ``asset`` at ``path``: a COG (a JPEG 2000 file for a
    ``-jp2`` asset) of the asset's bands and dtype on ``tile``'s grid at the asset's resolution, in
    EPSG ``epsg``, every pixel nodata, tagged ``PLACEHOLDER``. Written beside ``path`` and renamed
    into place, so a half-written file never has the final name."""
    shape, transform = asset_grid(tile, asset.resolution)
    driver = "JP2OpenJPEG" if asset.is_jp2 else "COG"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(_encoded(driver, tuple(shape), asset.count, asset.dtype, tuple(transform), epsg))
    tmp.replace(path)


def granule_metadata(scenario: Scenario, acq: Acquisition, tile: Tile) -> str:
    """A stub of the L2A granule's MTD_TL.xml: identity and sensing time only."""
    ids = naming.identifiers(scenario, acq, tile)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<!-- {escape(PLACEHOLDER_NOTE)} -->\n"
        '<n1:Level-2A_Tile_ID xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/S2_PDI_Level-2A_Tile_Metadata.xsd">\n'
        "  <n1:General_Info>\n"
        f"    <TILE_ID>{escape(ids['s2:granule_id'])}</TILE_ID>\n"
        f"    <DATASTRIP_ID>{escape(ids['s2:datastrip_id'])}</DATASTRIP_ID>\n"
        f"    <SENSING_TIME>{iso(acq.sensed(tile))}</SENSING_TIME>\n"
        "  </n1:General_Info>\n"
        "</n1:Level-2A_Tile_ID>\n"
    )


def tileinfo_metadata(scenario: Scenario, acq: Acquisition, tile: Tile) -> str:
    """A stub of the ``tileInfo.json`` of the ``sentinel-s2-l2a`` bucket: path, tile, time, product."""
    ids = naming.identifiers(scenario, acq, tile)
    return json.dumps({
        "placeholder": PLACEHOLDER_NOTE,
        "path": naming.jp2_path(acq, tile).removeprefix("sentinel-s2-l2a/"),
        "timestamp": iso(acq.sensed(tile)),
        "utmZone": tile.utm_zone, "latitudeBand": tile.latitude_band, "gridSquare": tile.grid_square,
        "productName": ids["s2:product_uri"].removesuffix(".SAFE"),
        "datatakeIdentifier": ids["s2:datatake_id"],
    }, indent=2) + "\n"


def write_placeholders(folder: Path, jp2_folder: Path, scenario: Scenario, acq: Acquisition, tile: Tile) -> None:
    """Every placeholder asset of the item: rasters in ``folder`` (COG) or ``jp2_folder`` (JPEG 2000)
    and the two metadata stubs in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for asset in ASSETS.values():
        if asset.simulated:
            continue
        if asset.key == "granule_metadata":
            (folder / asset.file).write_text(granule_metadata(scenario, acq, tile))
        elif asset.key == "tileinfo_metadata":
            (folder / asset.file).write_text(tileinfo_metadata(scenario, acq, tile))
        else:
            write_raster((jp2_folder if asset.is_jp2 else folder) / asset.file, asset, tile, scenario.epsg)

