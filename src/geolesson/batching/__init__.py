"""Batching chips for PyTorch: a map-style dataset over a chip index, seeded samplers,
spatial splits, normalization statistics and a collate that keeps the georeferencing.

Built on PyTorch's own ``Dataset``, ``Sampler``, ``DataLoader`` and ``default_collate``
(``torch==2.13.0``, the ``ml`` extra). Every chip is read on its item's own grid, in its own
CRS, and never reprojected: a batch may hold chips of several UTM zones and collections,
each with its CRS and transform.

- :class:`ChipDataset`: ``dataset[i]`` -> ``{"image" (C, H, W) float32, "mask", "chip_id",
  "crs", "transform", "datetime", ...}``; :class:`VectorLabels` for label polygons.
- :class:`RandomChipSampler` (seeded by ``(seed, epoch)``), :class:`RandomBlockBatchSampler`
  (random batches of whole COG blocks: each block decoded once, by one worker),
  :class:`GridChipSampler` (block order), :class:`BlockRowBatchSampler` (batches sharded to
  workers by COG block row).
- :func:`collate`: samples -> ``"image"`` ``(B, C, H, W)``, ``"mask"`` ``(B, H, W)``, lists of
  the rest.
- :func:`spatial_split`: train/val/test by blocks or regions, with a gap; :func:`leakage`.
- :func:`band_statistics`, :func:`save_statistics`, :func:`load_statistics`,
  :class:`Normalize`: per-band statistics of the training split, as JSON beside the index.

Data flow: imports :mod:`geolesson.chips` and :mod:`geolesson.indices` (to the left).
"""

from geolesson.batching.collate import collate
from geolesson.batching.dataset import ChipDataset, VectorLabels
from geolesson.batching.normalize import (
    BandStatistics,
    Normalize,
    band_statistics,
    load_statistics,
    save_statistics,
    statistics_path,
)
from geolesson.batching.samplers import (
    DEFAULT_BLOCK_SIZE,
    BlockRowBatchSampler,
    GridChipSampler,
    RandomBlockBatchSampler,
    RandomChipSampler,
    block_order,
)
from geolesson.batching.splits import SPLITS, leakage, spatial_split

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "SPLITS",
    "BandStatistics",
    "BlockRowBatchSampler",
    "ChipDataset",
    "GridChipSampler",
    "Normalize",
    "RandomBlockBatchSampler",
    "RandomChipSampler",
    "VectorLabels",
    "band_statistics",
    "block_order",
    "collate",
    "leakage",
    "load_statistics",
    "save_statistics",
    "spatial_split",
    "statistics_path",
]
