"""Per-chip statistics: nodata and cloud fractions counted on a whole band, strip by strip.

The statistics band is read once, whole, at its native resolution, in strips of whole
chip rows (the next strip decoded in a background thread while this one is counted), and
counted per chip with vectorised comparisons and sums; no resampling, no per-chip loop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from geolesson.gdal import GDAL_HTTP_OPTIONS
from geolesson.indices import SCL_NODATA

#: Band rows per read of the index, rounded to whole chip rows. 11 MB of a 5490-wide SCL,
#: few enough reads to decode fast, enough to overlap decoding with counting.
STRIP_ROWS = 2048


def _runs(classes: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted classes as runs of consecutive values: (1, 3, 8, 9, 10) -> [(1, 1), (3, 3), (8, 10)]."""
    runs: list[tuple[int, int]] = []
    for k in sorted(set(classes)):
        if runs and k == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], k)
        else:
            runs.append((k, k))
    return runs


def chip_counts(strips, s: int, h: int, w: int, nrows: int, ncols: int,
                 cloud_classes: Sequence[int] = (), nodata: float = SCL_NODATA):
    """Pixel counts per chip of a statistics band (SCL, or a data band such as Sentinel-1
    ``vv``): (total, nodata, cloud), each ``(nrows, ncols)`` int64.

    ``strips`` yields ``(row0, strip)`` covering band rows [0, h) x cols [0, w), each strip
    a whole number of chip rows (``s`` band rows each). Chip ``(r, c)`` counts
    ``band[r*s:(r+1)*s, c*s:(c+1)*s]`` clipped to [0, h) x [0, w) (partial edge chips count
    fewer pixels). A pixel is nodata where it equals ``nodata``, and in a float band also
    where it is NaN (never a measurement); it is cloud where its class is in
    ``cloud_classes`` (empty: no cloud count, all zeros). Per row of chips: masks by
    comparison, summed down the columns, then over each chip's ``s`` columns with
    ``np.add.reduceat``. All arithmetic is vectorised;
    the loop runs once per row of chips and keeps the masks small (CPU cache sized).
    """
    nodata_cols = np.empty((nrows, w), dtype=np.int64)
    cloud_cols = np.empty((nrows, w), dtype=np.int64)
    is_nodata = np.empty((s, w), dtype=bool)
    is_cloud = np.empty((s, w), dtype=bool)
    is_class = np.empty((s, w), dtype=bool)
    # the narrowest sum that holds s (a column's count within one row of chips): 6x faster than int64
    count_dtype = np.uint8 if s <= 255 else np.uint16 if s <= 65535 else np.uint32
    runs = _runs(cloud_classes)
    if not runs:
        cloud_cols[:] = 0
    isnan_nodata = isinstance(nodata, float) and math.isnan(nodata)
    shifted = None
    for row0, strip in strips:
        if shifted is None or shifted.dtype != strip.dtype:
            shifted = np.empty((s, w), dtype=strip.dtype)
        for r in range(row0 // s, min(-(-(row0 + strip.shape[0]) // s), nrows)):
            chip_rows = strip[r * s - row0:(r + 1) * s - row0]
            m = chip_rows.shape[0]
            if isnan_nodata:
                np.isnan(chip_rows, out=is_nodata[:m])
            else:
                np.equal(chip_rows, nodata, out=is_nodata[:m])
                if chip_rows.dtype.kind == "f":
                    np.logical_or(is_nodata[:m], np.isnan(chip_rows), out=is_nodata[:m])
            nodata_cols[r] = np.add.reduce(is_nodata[:m].view(np.uint8), axis=0, dtype=count_dtype)
            if not runs:
                continue
            is_cloud[:m] = False
            for lo, hi in runs:  # classes lo..hi: one comparison for a single class, two for a run
                if lo == hi:
                    np.equal(chip_rows, lo, out=is_class[:m])
                elif chip_rows.dtype.kind == "u":  # lo <= v <= hi  <=>  (v - lo) mod 2**n <= hi - lo
                    np.less_equal(np.subtract(chip_rows, lo, out=shifted[:m], casting="unsafe"), hi - lo,
                                  out=is_class[:m])
                else:
                    np.logical_and(chip_rows >= lo, chip_rows <= hi, out=is_class[:m])
                np.logical_or(is_cloud[:m], is_class[:m], out=is_cloud[:m])
            cloud_cols[r] = np.add.reduce(is_cloud[:m].view(np.uint8), axis=0, dtype=count_dtype)
    starts = np.arange(ncols) * s
    rows_per_chip = np.minimum(s, h - np.arange(nrows) * s)
    cols_per_chip = np.minimum(s, w - starts)
    total = (rows_per_chip[:, None] * cols_per_chip[None, :]).astype(np.int64)
    return total, np.add.reduceat(nodata_cols, starts, axis=1), np.add.reduceat(cloud_cols, starts, axis=1)


def read_strips(href: str, shape: tuple[int, int], rows: int, height: int, width: int, what: str):
    """Band 1 of ``href``, rows [0, height) x cols [0, width), as successive strips of
    ``rows`` rows: yields ``(row0, strip)``. The next strip is read in a background thread
    while the caller works on this one, so counting overlaps decoding; GDAL decodes each
    strip's blocks on all cores (``GDAL_NUM_THREADS``, GDAL >= 3.6). Nothing is cached:
    the index reads each SCL once, whole.

    Raises:
        ValueError: the file's size is not ``shape``, the ``proj:shape`` of ``what`` (item and asset).
        OSError: the file cannot be opened or read (the message names the href).
    """
    from concurrent.futures import ThreadPoolExecutor

    import rasterio
    from rasterio.windows import Window

    options = {**GDAL_HTTP_OPTIONS, "GDAL_NUM_THREADS": "ALL_CPUS"}

    def read(ds, row0: int) -> np.ndarray:
        with rasterio.Env(**options):  # GDAL options are per thread
            return ds.read(1, window=Window(0, row0, width, min(rows, height - row0)))

    try:
        with rasterio.Env(**options):
            ds = rasterio.open(href)
    except Exception as exc:
        raise OSError(f"could not open {href!r}: {exc}") from exc
    with ds, ThreadPoolExecutor(max_workers=1) as pool:
        if (ds.height, ds.width) != tuple(shape):
            raise ValueError(f"{href!r} is {ds.height} x {ds.width} pixels, but {what} says proj:shape "
                             f"{list(shape)}")
        pending = pool.submit(read, ds, 0)
        for row0 in range(0, height, rows):
            try:
                strip = pending.result()
            except Exception as exc:
                raise OSError(f"could not read {href!r} (rows {row0}:{row0 + rows}): {exc}") from exc
            if row0 + rows < height:
                pending = pool.submit(read, ds, row0 + rows)
            yield row0, strip


def chip_size_step(ratio: float) -> int:
    """Smallest chip_size step that gives whole SCL pixels (2 for 10 m / 20 m)."""
    from fractions import Fraction

    return Fraction(ratio).limit_denominator(1000).denominator
