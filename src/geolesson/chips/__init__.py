"""Chip grids, a chip index in GeoParquet, and on-demand chip reads.

A *scene* (one STAC item, e.g. a 10980 x 10980 Sentinel-2 tile) is far larger than what
a model eats: a *chip* (or patch), e.g. 256 x 256 pixels. Instead of cutting millions of
chip files, we keep a *chip index*: a table with one row per chip that a scene could
yield (where it is, and how cloudy / empty it is), and read the pixels of a chip only when
it is asked for, with windowed reads of the scene's Cloud-Optimized GeoTIFFs.

The three steps:

1. :func:`chip_index`: items -> ``geopandas.GeoDataFrame`` with one row per chip, with
   nodata and cloud statistics from the Scene Classification layer (SCL) of Sentinel-2,
   or nodata statistics from a data band where there is no SCL (Sentinel-1 RTC ``vv``).
2. :func:`write_index` / :func:`read_index`: the index as GeoParquet (one file, or one
   file per item in a hive-style folder). Indexes of many items (or collections) merge by
   concatenation: ``pd.concat([a, b], ignore_index=True)``; filtering by cloud, date or
   area is ordinary (geo)pandas (``idx[idx.cloud_fraction < 0.1]``, ``idx.cx[...]``,
   ``idx[idx.intersects(aoi)]``).
3. :func:`read_chip` / :func:`read_chips`: index rows -> ``xarray.DataArray`` in physical
   units (reflectance, or e.g. gamma0), NaN nodata; :func:`read_chip_array` -> NumPy;
   :class:`ItemReader`: chips of one item into a caller's buffer, its grids parsed once.

Grid conventions (all on each item's own projected grid, no resampling of the 10 m bands):

- Chips lie on the native grid of the *reference asset* (``red``, 10 m for Sentinel-2;
  ``vv`` for Sentinel-1 RTC),
  taken from that asset's ``proj:transform`` and ``proj:shape``. Chip ``(row, col)``
  covers reference pixels ``[row * chip_size, row * chip_size + height)`` x
  ``[col * chip_size, col * chip_size + width)``; chips do not overlap.
- The grid must be north-up (no rotation) and in a projected CRS in metres (UTM for
  Sentinel-2); all assets of an item must share the grid origin (true for Sentinel-2 L2A:
  the 10, 20 and 60 m bands start at the same corner).

Every module here speaks the item's grid, :class:`geolesson.grid.ItemGrid`: chips are
windows of it. The modules, one job each: :mod:`~geolesson.chips.index` (:func:`chip_index`
and :func:`overlap_grid`, one table builder), :mod:`~geolesson.chips.statistics` (per-chip
counts of a band), :mod:`~geolesson.chips.storage` (GeoParquet), :mod:`~geolesson.chips.rows`
(an index row's fields and window), :mod:`~geolesson.chips.files` (open files per process,
windowed reads), :mod:`~geolesson.chips.reads` (chip reads), :mod:`~geolesson.chips.archive`
(:func:`index_archive`: many items on a Dask cluster, resumable).

Data flow: this package imports :mod:`geolesson.items` and :mod:`geolesson.grid` (items and
their grids), :mod:`geolesson.gdal` (GDAL HTTP options) and :mod:`geolesson.indices`
(reflectance scaling) only.
"""

from geolesson.chips.archive import ArchiveReport, index_archive
from geolesson.chips.files import close_datasets
from geolesson.chips.index import INDEX_COLUMNS, STATISTICS, chip_id, chip_index, overlap_grid
from geolesson.chips.reads import ChipArray, ItemReader, read_chip, read_chip_array, read_chips
from geolesson.chips.storage import read_index, write_index
from geolesson.grid import DEFAULT_REFERENCE_ASSETS

__all__ = [
    "ArchiveReport",
    "DEFAULT_REFERENCE_ASSETS",
    "INDEX_COLUMNS",
    "ItemReader",
    "STATISTICS",
    "ChipArray",
    "chip_id",
    "chip_index",
    "close_datasets",
    "index_archive",
    "overlap_grid",
    "read_chip",
    "read_chip_array",
    "read_chips",
    "read_index",
    "write_index",
]
