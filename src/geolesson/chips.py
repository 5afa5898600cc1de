"""Chip grids, a chip index in GeoParquet, and on-demand chip reads.

A *scene* (one STAC item, e.g. a 10980 x 10980 Sentinel-2 tile) is far larger than what
a model eats: a *chip* (or patch), e.g. 256 x 256 pixels. Instead of cutting millions of
chip files, we keep a *chip index*: a table with one row per chip that a scene could
yield (where it is, and how cloudy / empty it is), and read the pixels of a chip only when
it is asked for, with windowed reads of the scene's Cloud-Optimized GeoTIFFs.

The three steps:

1. :func:`chip_index`: items -> ``geopandas.GeoDataFrame`` with one row per chip, with
   nodata and cloud statistics from the Scene Classification layer (SCL).
2. :func:`write_index` / :func:`read_index`: the index as GeoParquet (one file, or one
   file per item in a hive-style folder). Indexes of many items (or collections) merge by
   concatenation: ``pd.concat([a, b], ignore_index=True)``; filtering by cloud, date or
   area is ordinary (geo)pandas (``idx[idx.cloud_fraction < 0.1]``, ``idx.cx[...]``,
   ``idx[idx.intersects(aoi)]``).
3. :func:`read_chip` / :func:`read_chips`: index rows -> ``xarray.DataArray`` of reflectance.

Grid conventions (all on each item's own projected grid, no resampling of the 10 m bands):

- Chips lie on the native grid of the *reference asset* (``red``, 10 m for Sentinel-2),
  taken from that asset's ``proj:transform`` and ``proj:shape``. Chip ``(row, col)``
  covers reference pixels ``[row * chip_size, row * chip_size + height)`` x
  ``[col * chip_size, col * chip_size + width)``; chips do not overlap.
- The grid must be north-up (no rotation) and in a projected CRS in metres (UTM for
  Sentinel-2); all assets of an item must share the grid origin (true for Sentinel-2 L2A:
  the 10, 20 and 60 m bands start at the same corner).

Data flow: this module imports :mod:`geolesson.sources` (GDAL HTTP options) and
:mod:`geolesson.indices` (reflectance scaling) only.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from geolesson import sources
from geolesson.indices import (
    DEFAULT_CLOUD_CLASSES,
    SCL_CLASSES,
    SCL_NODATA,
    reflectance,
)

__all__ = [
    "INDEX_COLUMNS",
    "chip_index",
    "close_datasets",
    "read_chip",
    "read_chips",
    "read_index",
    "write_index",
]

#: Columns of a chip index, in order (plus ``geometry``, the chip footprint in EPSG:4326).
INDEX_COLUMNS: tuple[str, ...] = (
    "chip_id", "item_id", "collection", "datetime", "crs", "col", "row",
    "col_off", "row_off", "width", "height", "nodata_fraction", "cloud_fraction",
)

#: SCL rows per read of the index (rounded to whole chip rows): 11 MB of a 5490-wide SCL;
#: few enough reads to decode fast, enough to overlap decoding with counting.
_STRIP_ROWS = 2048
_INT_COLUMNS = ("crs", "col", "row", "col_off", "row_off", "width", "height")
_PARTIAL = ("drop", "keep")
#: Points per footprint edge (corners included once): the UTM window's edges are curved in
#: EPSG:4326, so each edge gets a few intermediate points.
_DENSIFY = 4


# ---------------------------------------------------------------------------------------
# item and asset metadata
# ---------------------------------------------------------------------------------------


def _item_dict(item: Any) -> dict:
    """The item as a STAC dict with absolute asset hrefs where pystac knows them."""
    if isinstance(item, Mapping):
        return dict(item)
    if hasattr(item, "to_dict") and hasattr(item, "assets"):  # pystac.Item
        d = item.to_dict(include_self_link=False, transform_hrefs=False)
        for key, asset in item.assets.items():
            href = asset.get_absolute_href() or asset.href
            d["assets"][key] = {**d["assets"].get(key, {}), "href": href}
        return d
    raise TypeError(f"items must be pystac.Item objects or STAC item dicts, not {type(item).__name__}")


def _item_id(d: dict) -> str:
    item_id = d.get("id")
    if not isinstance(item_id, str) or not item_id:
        raise ValueError(f"an item has no 'id' (got {item_id!r})")
    return item_id


def _asset(d: dict, key: str, role: str) -> dict:
    assets = d.get("assets") or {}
    if key not in assets:
        raise ValueError(f"item {d.get('id')!r} has no asset {key!r} ({role}={key!r}); "
                         f"its assets are {sorted(assets)}")
    return assets[key]


def _proj(d: dict, asset: dict, field: str) -> Any:
    """``proj:<field>`` from the asset, else from the item properties (STAC projection extension)."""
    value = asset.get(f"proj:{field}")
    if value is None:
        value = (d.get("properties") or {}).get(f"proj:{field}")
    return value


def _epsg(d: dict, asset: dict) -> int:
    """EPSG code from ``proj:epsg`` or ``proj:code`` (``"EPSG:32635"``; pystac >= 1.15 migrates
    epsg to code), asset first, then item; ValueError if absent or not a metre-based projected CRS."""
    from pyproj import CRS

    epsg = _proj(d, asset, "epsg")
    if epsg is None:
        code = _proj(d, asset, "code")
        if isinstance(code, str) and code.upper().startswith("EPSG:"):
            epsg = code.split(":", 1)[1]
        elif code is not None:
            raise ValueError(f"item {d.get('id')!r}: proj:code={code!r} is not an EPSG code ('EPSG:<n>')")
    if epsg is None:
        raise ValueError(f"item {d.get('id')!r} has no proj:epsg or proj:code (STAC projection "
                         "extension), on the asset or in the properties: its CRS is unknown")
    try:
        epsg = int(epsg)
        crs = CRS.from_epsg(epsg)
    except Exception as exc:
        raise ValueError(f"item {d.get('id')!r}: EPSG code {epsg!r} is not a known CRS") from exc
    units = {axis.unit_name for axis in crs.axis_info}
    if crs.is_geographic or not units <= {"metre", "meter"}:
        raise ValueError(f"item {d.get('id')!r} has CRS EPSG:{epsg} ({crs.name}) with units {sorted(units)}: "
                         "chips need a projected CRS in metres (e.g. UTM), so that chip_size pixels "
                         "have a fixed size on the ground")
    return epsg


class _Grid:
    """An asset's pixel grid: shape (height, width) and north-up affine transform."""

    def __init__(self, d: dict, key: str, role: str):
        from affine import Affine

        asset = _asset(d, key, role)
        shape, transform = _proj(d, asset, "shape"), _proj(d, asset, "transform")
        if shape is None or transform is None:
            missing = [f for f, v in (("proj:shape", shape), ("proj:transform", transform)) if v is None]
            raise ValueError(f"item {d.get('id')!r}, asset {key!r}: no {' and '.join(missing)} (STAC "
                             "projection extension), on the asset or in the item properties: the "
                             "chip grid cannot be derived")
        if len(shape) != 2 or len(transform) not in (6, 9):
            raise ValueError(f"item {d.get('id')!r}, asset {key!r}: proj:shape must be [height, width] and "
                             f"proj:transform 6 or 9 numbers, not {shape!r} and {transform!r}")
        t = Affine(*[float(v) for v in transform[:6]])
        if t.b != 0 or t.d != 0 or t.a <= 0 or t.e >= 0:
            raise ValueError(f"item {d.get('id')!r}, asset {key!r}: proj:transform {list(transform)} is not "
                             "north-up (rotated or flipped grids are not supported)")
        self.key = key
        self.href = asset.get("href")
        self.asset = asset
        self.height, self.width = int(shape[0]), int(shape[1])
        self.transform = t
        self.res = t.a
        if not math.isclose(t.a, -t.e, rel_tol=1e-9):
            raise ValueError(f"item {d.get('id')!r}, asset {key!r}: pixels are not square "
                             f"({t.a} x {-t.e} m); not supported")

    def check_origin(self, ref: _Grid, item_id: str) -> None:
        tol = 1e-6 * ref.res
        if abs(self.transform.c - ref.transform.c) > tol or abs(self.transform.f - ref.transform.f) > tol:
            raise ValueError(f"item {item_id!r}: asset {self.key!r} starts at ({self.transform.c}, "
                             f"{self.transform.f}), the reference asset {ref.key!r} at ({ref.transform.c}, "
                             f"{ref.transform.f}); assets must share the grid origin")


def _datetime(d: dict):
    import pandas as pd

    props = d.get("properties") or {}
    value = props.get("datetime") or props.get("start_datetime")
    if value is None:
        raise ValueError(f"item {d.get('id')!r} has neither datetime nor start_datetime")
    ts = pd.Timestamp(value)
    return ts.tz_convert("UTC") if ts.tzinfo else ts.tz_localize("UTC")


def _as_item_list(items: Any) -> list:
    if isinstance(items, Mapping) and "assets" in items:  # one item dict
        return [items]
    if hasattr(items, "assets") and hasattr(items, "to_dict"):  # one pystac.Item
        return [items]
    if hasattr(items, "items") and callable(items.items) and not isinstance(items, Mapping):
        items = items.items()  # pystac ItemCollection / ItemSearch
    if items is None or isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise TypeError(f"items must be a pystac.Item, a STAC item dict, or an iterable of them, not "
                        f"{items!r}" + (" (did a search or get_item find nothing?)" if items is None else ""))
    return list(items)


# ---------------------------------------------------------------------------------------
# opening and reading rasters (one dataset per href, per process and thread)
# ---------------------------------------------------------------------------------------

_local = threading.local()


def _cache() -> dict:
    """This thread's dataset cache, emptied (not closed: the handles belong to the parent)
    when the process has changed since it was filled, i.e. after a fork."""
    if getattr(_local, "pid", None) != os.getpid():
        _local.pid = os.getpid()
        _local.datasets = {}
    return _local.datasets


def _forget_after_fork() -> None:
    _local.__dict__.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def close_datasets() -> None:
    """Close the datasets :func:`read_chip` keeps open in this process and thread."""
    cache = _cache()
    for ds in cache.values():
        with contextlib.suppress(Exception):  # closing is best effort
            ds.close()
    cache.clear()


def _open(href: str):
    import rasterio

    cache = _cache()
    ds = cache.get(href)
    if ds is None or ds.closed:
        try:
            with rasterio.Env(**sources.GDAL_HTTP_OPTIONS):
                ds = rasterio.open(href)
        except Exception as exc:
            raise OSError(f"could not open {href!r}: {exc}") from exc
        cache[href] = ds
    return ds


def _read_window(href: str, row0: int, row1: int, col0: int, col1: int, fill: Any) -> np.ndarray:
    """Band 1 of ``href``, rows [row0, row1) x cols [col0, col1), native dtype; parts outside
    the raster are ``fill``. OSError naming the href if the read fails."""
    import rasterio
    from rasterio.windows import Window

    ds = _open(href)
    r0, r1 = max(row0, 0), min(row1, ds.height)
    c0, c1 = max(col0, 0), min(col1, ds.width)
    try:
        with rasterio.Env(**sources.GDAL_HTTP_OPTIONS):
            data = ds.read(1, window=Window(c0, r0, max(c1 - c0, 0), max(r1 - r0, 0)))
    except Exception as exc:
        _cache().pop(href, None)
        raise OSError(f"could not read {href!r} (rows {r0}:{r1}, cols {c0}:{c1}): {exc}") from exc
    if (r0, r1, c0, c1) != (row0, row1, col0, col1):
        pad = ((r0 - row0, row1 - r1), (c0 - col0, col1 - c1))
        data = np.pad(data, [(max(a, 0), max(b, 0)) for a, b in pad], constant_values=fill)
    return data


def _read_strips(href: str, shape: tuple[int, int], rows: int, height: int, width: int, what: str):
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

    options = {**sources.GDAL_HTTP_OPTIONS, "GDAL_NUM_THREADS": "ALL_CPUS"}

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


# ---------------------------------------------------------------------------------------
# 1. the chip index
# ---------------------------------------------------------------------------------------


def _check_fraction(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not 0 <= float(value) <= 1:
        raise ValueError(f"{name} must be None or a fraction in [0, 1], not {value!r}")


def _footprints(transform, epsg: int, col_off, row_off, width, height):
    """EPSG:4326 polygons of pixel windows (vectorised): exact UTM corners, ``_DENSIFY``
    points per edge, reprojected with pyproj (always x=lon, y=lat)."""
    import shapely
    from pyproj import Transformer

    n = len(col_off)
    t = np.linspace(0.0, 1.0, _DENSIFY, endpoint=False)
    # walk the window boundary in window-pixel units: top, right, bottom, left (counter-clockwise
    # in map coordinates, since rows go down), then close the ring
    u = np.concatenate([t, np.ones_like(t), 1 - t, np.zeros_like(t), [0.0]])
    v = np.concatenate([np.zeros_like(t), t, np.ones_like(t), 1 - t, [0.0]])
    cols = col_off[:, None] + u[None, :] * width[:, None]
    rows = row_off[:, None] + v[None, :] * height[:, None]
    x = transform.c + cols * transform.a
    y = transform.f + rows * transform.e
    lon, lat = Transformer.from_crs(epsg, 4326, always_xy=True).transform(x.ravel(), y.ravel())
    coords = np.stack([np.asarray(lon).reshape(n, u.size), np.asarray(lat).reshape(n, u.size)], axis=-1)
    return shapely.polygons(coords)


def _runs(classes: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted classes as runs of consecutive values: (1, 3, 8, 9, 10) -> [(1, 1), (3, 3), (8, 10)]."""
    runs: list[tuple[int, int]] = []
    for k in sorted(set(classes)):
        if runs and k == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], k)
        else:
            runs.append((k, k))
    return runs


def _scl_counts(strips, s: int, h: int, w: int, nrows: int, ncols: int, cloud_classes: Sequence[int]):
    """SCL pixel counts per chip: (total, nodata, cloud), each ``(nrows, ncols)`` int64.

    ``strips`` yields ``(row0, strip)`` covering SCL rows [0, h) x cols [0, w), each strip
    a whole number of chip rows (``s`` SCL rows each). Chip ``(r, c)`` counts
    ``scl[r*s:(r+1)*s, c*s:(c+1)*s]`` clipped to [0, h) x [0, w) (partial edge chips count
    fewer pixels). Per row of chips: masks by comparison, summed down the columns, then
    over each chip's ``s`` columns with ``np.add.reduceat``. All arithmetic is vectorised;
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
    shifted = None
    for row0, strip in strips:
        if shifted is None or shifted.dtype != strip.dtype:
            shifted = np.empty((s, w), dtype=strip.dtype)
        for r in range(row0 // s, min(-(-(row0 + strip.shape[0]) // s), nrows)):
            chip_rows = strip[r * s - row0:(r + 1) * s - row0]
            m = chip_rows.shape[0]
            np.equal(chip_rows, SCL_NODATA, out=is_nodata[:m])
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
            nodata_cols[r] = np.add.reduce(is_nodata[:m].view(np.uint8), axis=0, dtype=count_dtype)
            cloud_cols[r] = np.add.reduce(is_cloud[:m].view(np.uint8), axis=0, dtype=count_dtype)
    starts = np.arange(ncols) * s
    rows_per_chip = np.minimum(s, h - np.arange(nrows) * s)
    cols_per_chip = np.minimum(s, w - starts)
    total = (rows_per_chip[:, None] * cols_per_chip[None, :]).astype(np.int64)
    return total, np.add.reduceat(nodata_cols, starts, axis=1), np.add.reduceat(cloud_cols, starts, axis=1)


def _item_chips(item: Any, chip_size: int, partial: str, cloud_classes: Sequence[int],
                max_nodata, max_cloud, scl_asset: str, reference_asset: str):
    import pandas as pd

    d = _item_dict(item)
    item_id = _item_id(d)
    ref = _Grid(d, reference_asset, "reference_asset")
    scl = _Grid(d, scl_asset, "scl_asset")
    epsg = _epsg(d, ref.asset)
    scl.check_origin(ref, item_id)
    if chip_size > ref.height or chip_size > ref.width:
        raise ValueError(f"chip_size={chip_size} is larger than the scene: item {item_id!r} asset "
                         f"{reference_asset!r} is {ref.height} x {ref.width} pixels; use chip_size <= "
                         f"{min(ref.height, ref.width)}")
    ratio = ref.res / scl.res  # SCL pixels per reference pixel (0.5 for 10 m / 20 m)
    s = chip_size * ratio
    if not math.isclose(s, round(s), abs_tol=1e-9) or round(s) < 1:
        raise ValueError(f"chip_size={chip_size} at {ref.res:g} m ({reference_asset!r}) is {s:g} SCL pixels "
                         f"at {scl.res:g} m: it must be a whole number; choose chip_size a multiple of "
                         f"{_step(ratio)}")
    s = round(s)
    # SCL pixels touched by the reference grid
    scl_h, scl_w = math.ceil(ref.height * ratio - 1e-9), math.ceil(ref.width * ratio - 1e-9)
    if scl.height < scl_h or scl.width < scl_w:
        raise ValueError(f"item {item_id!r}: asset {scl_asset!r} ({scl.height} x {scl.width} at {scl.res:g} m) "
                         f"does not cover the {reference_asset!r} grid ({ref.height} x {ref.width} at {ref.res:g} m)")

    if partial == "drop":
        nrows, ncols = ref.height // chip_size, ref.width // chip_size
    else:
        nrows, ncols = -(-ref.height // chip_size), -(-ref.width // chip_size)

    # the SCL rows and columns the chips cover, in strips of whole chip rows
    h, w = min(scl_h, nrows * s), min(scl_w, ncols * s)
    strips = _read_strips(scl.href, (scl.height, scl.width), s * max(1, round(_STRIP_ROWS / s)), h, w,
                          f"item {item_id!r}, asset {scl_asset!r},")
    total, nodata, cloud = _scl_counts(strips, s, h, w, nrows, ncols, cloud_classes)
    valid = total - nodata
    nodata_fraction = (nodata / total).ravel()
    cloud_fraction = np.divide(cloud, valid, out=np.zeros(valid.shape, dtype=np.float64),
                               where=valid > 0).ravel()

    row_idx, col_idx = np.divmod(np.arange(nrows * ncols, dtype=np.int64), ncols)
    keep = np.ones(row_idx.shape, dtype=bool)
    if max_nodata is not None:
        keep &= nodata_fraction <= max_nodata
    if max_cloud is not None:
        keep &= cloud_fraction <= max_cloud
    row_idx, col_idx = row_idx[keep], col_idx[keep]
    row_off, col_off = row_idx * chip_size, col_idx * chip_size
    height = np.minimum(chip_size, ref.height - row_off)
    width = np.minimum(chip_size, ref.width - col_off)
    geometry = _footprints(ref.transform, epsg, col_off, row_off, width, height)
    n = int(keep.sum())
    frame = pd.DataFrame({
        "chip_id": [f"{item_id}_{r}_{c}" for r, c in zip(row_idx.tolist(), col_idx.tolist())],
        "item_id": [item_id] * n,
        "collection": [d.get("collection") or ""] * n,
        "datetime": pd.DatetimeIndex([_datetime(d)] * n).as_unit("us") if n else
        pd.DatetimeIndex([], tz="UTC").as_unit("us"),
        "crs": np.full(n, epsg, dtype=np.int64),
        "col": col_idx, "row": row_idx, "col_off": col_off, "row_off": row_off,
        "width": width.astype(np.int64), "height": height.astype(np.int64),
        "nodata_fraction": nodata_fraction[keep], "cloud_fraction": cloud_fraction[keep],
    })
    return frame, geometry


def _step(ratio: float) -> int:
    """Smallest chip_size step that gives whole SCL pixels (2 for 10 m / 20 m)."""
    from fractions import Fraction

    return Fraction(ratio).limit_denominator(1000).denominator


def chip_index(items: Any, chip_size: int = 256, *, partial: str = "drop",
               cloud_classes: Iterable[int] = DEFAULT_CLOUD_CLASSES, max_nodata: float | None = None,
               max_cloud: float | None = None, scl_asset: str = "scl", reference_asset: str = "red"):
    """The chip index of STAC items: one row per ``chip_size`` x ``chip_size`` chip, with statistics.

    Chips tile each item's native grid of ``reference_asset`` (from its ``proj:transform``
    and ``proj:shape``, 10 m for Sentinel-2 ``red``) from the top-left corner, without
    overlap. The statistics come from the Scene Classification layer (``scl_asset``),
    read once, whole, at its native resolution (20 m), and counted per chip with
    vectorised masks and sums, one row of chips at a time (no resampling, no per-chip
    loop). A chip counts the SCL pixels that its
    footprint touches: ``chip_size * ref_res / scl_res`` per side (128 for 256 chips at
    10 m over a 20 m SCL), fewer for partial edge chips.

    Args:
        items: a ``pystac.Item``, a STAC item dict, or an iterable of them (list,
            ``ItemCollection``). Each needs ``proj:shape``/``proj:transform`` for the
            reference and SCL assets and ``proj:epsg`` or ``proj:code`` (asset or item
            properties), in a projected CRS in metres.
        chip_size: chip side in reference pixels (positive int, at most the scene size);
            ``chip_size * ref_res / scl_res`` must be whole (even, for 10 m over 20 m).
        partial: what to do with the chips at the right and bottom edges when the scene
            is not a multiple of ``chip_size``: ``"drop"`` them (every chip is full size)
            or ``"keep"`` them with their real ``width``/``height`` (smaller).
        cloud_classes: SCL classes that count as cloud; default
            :data:`geolesson.indices.DEFAULT_CLOUD_CLASSES` (3 cloud shadows, 8 and 9 cloud
            medium/high probability, 10 thin cirrus).
        max_nodata, max_cloud: keep only chips with ``nodata_fraction <= max_nodata`` /
            ``cloud_fraction <= max_cloud`` (None: keep all).
        scl_asset, reference_asset: asset keys of the SCL band and of the band whose grid
            the chips follow.

    Returns:
        ``geopandas.GeoDataFrame`` in EPSG:4326, columns :data:`INDEX_COLUMNS` + geometry:

        - ``chip_id`` (str, ``f"{item_id}_{row}_{col}"``), ``item_id``, ``collection`` (str);
        - ``datetime``: ``datetime64[us, UTC]``, the item's acquisition time;
        - ``crs`` (int64): the item's EPSG code (e.g. 32635), i.e. the CRS of the windows.
          Select it as ``idx["crs"]``: the attribute ``idx.crs`` is the GeoDataFrame's
          geometry CRS (EPSG:4326);
        - ``row``, ``col`` (int64): chip position in chip units (0-based);
        - ``row_off``, ``col_off``, ``height``, ``width`` (int64): the pixel window on the
          reference asset's grid (``row_off = row * chip_size``);
        - ``nodata_fraction`` (float64, 0-1): SCL no-data pixels (class 0) / SCL pixels of the chip;
        - ``cloud_fraction`` (float64, 0-1): SCL pixels in ``cloud_classes`` / SCL pixels
          *with data* (class != 0), i.e. the cloudiness of what was observed. A chip
          with no data at all has ``cloud_fraction = 0.0`` (never NaN; it is told apart
          by ``nodata_fraction == 1``);
        - ``geometry``: footprint polygon in EPSG:4326, the exact projected window corners
          plus 3 points per edge, reprojected (lon/lat order).

        Rows are in item order, then row-major chip order. An empty frame (same columns)
        if the filters keep nothing.

    Raises:
        ValueError: ``chip_size`` not a positive int or larger than a scene, or not whole
            in SCL pixels; ``partial`` not ``"drop"``/``"keep"``; ``cloud_classes`` not SCL
            classes; ``max_nodata``/``max_cloud`` not in [0, 1]; an item without the SCL or
            reference asset, without ``proj:shape``/``proj:transform``, without an EPSG
            code, or in a CRS not in metres (geographic); SCL not aligned with or not
            covering the reference grid, or its file's size differs from ``proj:shape``.
        TypeError: ``items`` is not an item or an iterable of items (e.g. ``None``).
        OSError: the SCL file cannot be read (the message names its href).
    """
    import geopandas as gpd
    import pandas as pd

    if isinstance(chip_size, bool) or not isinstance(chip_size, (int, np.integer)) or chip_size <= 0:
        raise ValueError(f"chip_size must be a positive integer number of pixels, not {chip_size!r}")
    chip_size = int(chip_size)
    if partial not in _PARTIAL:
        raise ValueError(f"partial must be one of {_PARTIAL}, not {partial!r}")
    classes = [cloud_classes] if isinstance(cloud_classes, (int, np.integer)) else list(cloud_classes)
    unknown = [c for c in classes if c not in SCL_CLASSES]
    if unknown:
        raise ValueError(f"cloud_classes: {unknown} are not SCL classes (0..{max(SCL_CLASSES)})")
    if SCL_NODATA in classes:
        raise ValueError(f"cloud_classes must not contain the no-data class {SCL_NODATA}")
    _check_fraction("max_nodata", max_nodata)
    _check_fraction("max_cloud", max_cloud)

    frames, geoms = [], []
    for item in _as_item_list(items):
        frame, geometry = _item_chips(item, chip_size, partial, sorted(set(classes)), max_nodata, max_cloud,
                                      scl_asset, reference_asset)
        frames.append(frame)
        geoms.append(geometry)
    if frames:
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        geometry = np.concatenate(geoms)
    else:
        frame, _ = _empty_frame(), None
        geometry = np.array([], dtype=object)
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geometry, crs="EPSG:4326"), crs="EPSG:4326")


def _empty_frame():
    import pandas as pd

    cols = {c: pd.Series([], dtype="int64") for c in _INT_COLUMNS}
    cols.update({c: pd.Series([], dtype="str") for c in ("chip_id", "item_id", "collection")})
    cols["datetime"] = pd.Series(pd.DatetimeIndex([], tz="UTC").as_unit("us"))
    cols.update({c: pd.Series([], dtype="float64") for c in ("nodata_fraction", "cloud_fraction")})
    return pd.DataFrame({c: cols[c] for c in INDEX_COLUMNS})


# ---------------------------------------------------------------------------------------
# 2. the index as GeoParquet
# ---------------------------------------------------------------------------------------

_PART = "part.parquet"


def write_index(gdf, path: str | os.PathLike, partition_by_item: bool = False) -> Path:
    """Write a chip index as GeoParquet (geopandas, GeoParquet 1.x metadata, CRS included).

    Args:
        gdf: a chip index (:func:`chip_index`, or a filtered/merged one).
        path: the ``.parquet`` file, or with ``partition_by_item`` the folder.
        partition_by_item: False: one file. True: one file per item in a hive-style folder,
            ``path/item_id=<id>/part.parquet`` (``<id>`` URL-quoted if it holds characters
            unsafe in file names); each part is a complete index of its item (the
            ``item_id`` column is kept in the file too). Parts of items already in the
            folder are replaced; other items' parts are left alone, so a folder grows item
            by item.

    Returns:
        ``Path(path)``.

    Raises:
        ValueError: ``gdf`` has no ``item_id`` column (partitioned write) or no geometry.
    """
    path = Path(path)
    if getattr(gdf, "geometry", None) is None:
        raise ValueError("write_index needs a GeoDataFrame with a geometry column (a chip index)")
    if not partition_by_item:
        path.parent.mkdir(parents=True, exist_ok=True)
        gdf.to_parquet(path, index=False)
        return path
    if "item_id" not in gdf.columns:
        raise ValueError("partition_by_item=True needs an 'item_id' column")
    path.mkdir(parents=True, exist_ok=True)
    for item_id, part in gdf.groupby("item_id", sort=True):
        folder = path / f"item_id={quote(str(item_id), safe='')}"
        folder.mkdir(exist_ok=True)
        part.to_parquet(folder / _PART, index=False)
    return path


def read_index(path: str | os.PathLike):
    """Read a chip index written by :func:`write_index` (one file, or a partitioned folder).

    Returns:
        ``geopandas.GeoDataFrame`` with the CRS and dtypes written (EPSG:4326, int64
        windows, ``datetime64[us, UTC]``); a folder's parts are concatenated in the order
        of their folder names, with a fresh ``RangeIndex``.

    Raises:
        FileNotFoundError: ``path`` does not exist, or a folder holds no ``item_id=*/part.parquet``.
    """
    import geopandas as gpd
    import pandas as pd

    path = Path(path)
    if path.is_dir():
        parts = sorted(path.glob(f"item_id=*/{_PART}"))
        if not parts:
            raise FileNotFoundError(f"{path} holds no item_id=*/{_PART} files (not a partitioned chip index)")
        frames = [gpd.read_parquet(p) for p in parts]
        out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        return gpd.GeoDataFrame(out, geometry="geometry", crs=frames[0].crs)
    if not path.exists():
        raise FileNotFoundError(f"no chip index at {path}")
    return gpd.read_parquet(path)


# ---------------------------------------------------------------------------------------
# 3. reading chips
# ---------------------------------------------------------------------------------------


def _find_item(items: Any, item_id: str) -> dict:
    if isinstance(items, Mapping) and "assets" not in items:  # {item_id: item}
        if item_id not in items:
            raise KeyError(f"item {item_id!r} is not in items (a mapping of {len(items)} item ids)")
        return _item_dict(items[item_id])
    for item in _as_item_list(items):
        d = _item_dict(item)
        if d.get("id") == item_id:
            return d
    raise KeyError(f"item {item_id!r} is not among the items given")


def _field(row: Any, key: str) -> Any:
    try:
        return row[key]
    except (KeyError, TypeError, IndexError):
        value = getattr(row, key, None)
        if value is None:
            raise KeyError(f"the chip row has no {key!r} (is it a row of a chip index?)") from None
        return value


class _Plan:
    """How to read one asset of one item onto the reference grid."""

    def __init__(self, d: dict, key: str, ref: _Grid):
        self.grid = _Grid(d, key, "assets")
        self.grid.check_origin(ref, d.get("id"))
        k = self.grid.res / ref.res
        if not math.isclose(k, round(k), rel_tol=1e-9) or round(k) < 1:
            raise ValueError(f"item {d.get('id')!r}: asset {key!r} has {self.grid.res:g} m pixels, the "
                             f"reference grid {ref.res:g} m; only whole multiples (>= 1) can be upsampled")
        self.k = round(k)
        bands = self.grid.asset.get("raster:bands") or [{}]
        self.fill = bands[0].get("nodata", 0) if bands[0].get("nodata") is not None else 0

    def span(self, off: int, size: int) -> tuple[int, int]:
        """Asset pixels [a0, a1) covering reference pixels [off, off + size)."""
        return off // self.k, -(-(off + size) // self.k)

    def cut(self, data: np.ndarray, a_row0: int, a_col0: int, row_off: int, col_off: int,
            height: int, width: int) -> np.ndarray:
        """The reference window from ``data`` (asset pixels starting at a_row0, a_col0):
        sliced, then upsampled by nearest neighbour (each asset pixel repeated k x k)."""
        r0, r1 = self.span(row_off, height)
        c0, c1 = self.span(col_off, width)
        block = data[r0 - a_row0:r1 - a_row0, c0 - a_col0:c1 - a_col0]
        if self.k == 1:
            return block
        up = np.repeat(np.repeat(block, self.k, axis=0), self.k, axis=1)
        dr, dc = row_off - r0 * self.k, col_off - c0 * self.k
        return up[dr:dr + height, dc:dc + width]


def _window(row: Any) -> tuple[int, int, int, int]:
    return tuple(int(_field(row, k)) for k in ("row_off", "col_off", "height", "width"))


def _scaler(dn: np.ndarray, asset: dict):
    """A function ``(dn window, out) -> None`` writing :func:`geolesson.indices.reflectance`
    of a window into ``out``. For a large ``uint8``/``uint16`` read it gathers from a
    lookup table that ``reflectance`` itself computes for every possible DN: the values
    are identical, and one 4-byte gather per pixel replaces float64 arithmetic."""
    if dn.dtype in (np.uint8, np.uint16) and dn.size > 4 * 2 ** (8 * dn.itemsize):
        lut = reflectance(np.arange(2 ** (8 * dn.itemsize), dtype=dn.dtype), asset, band=0)

        def scale(window: np.ndarray, out: np.ndarray) -> None:
            np.take(lut, window, out=out)
    else:
        def scale(window: np.ndarray, out: np.ndarray) -> None:
            out[...] = reflectance(window, asset, band=0)
    return scale


@functools.lru_cache(maxsize=16)
def _crs_attrs(epsg: int) -> dict:
    """The CF grid-mapping attributes rioxarray writes for ``EPSG:<epsg>`` (``spatial_ref``
    coordinate), computed once: ``rio.write_crs`` per chip would cost about 1 ms."""
    import rioxarray  # noqa: F401  (registers .rio)
    import xarray as xr

    return dict(xr.DataArray(0).rio.write_crs(f"EPSG:{epsg}").spatial_ref.attrs)


def _spatial_ref(epsg: int, transform=None):
    """The ``spatial_ref`` coordinate rioxarray reads back with ``.rio.crs`` and
    ``.rio.transform()`` (GDAL GeoTransform order: c a b f d e)."""
    attrs = dict(_crs_attrs(epsg))
    if transform is not None:
        t = transform
        attrs["GeoTransform"] = " ".join(repr(float(v)) for v in (t.c, t.a, t.b, t.f, t.d, t.e))
    return ((), np.int64(0), attrs)


def _to_dataarray(data: np.ndarray, assets: Sequence[str], ref: _Grid, epsg: int,
                  row_off: int, col_off: int, attrs: dict):
    import xarray as xr
    from affine import Affine

    t = ref.transform
    height, width = data.shape[1:]
    x = t.c + (col_off + np.arange(width) + 0.5) * t.a
    y = t.f + (row_off + np.arange(height) + 0.5) * t.e
    chip_transform = Affine(t.a, 0, t.c + col_off * t.a, 0, t.e, t.f + row_off * t.e)
    da = xr.DataArray(data, dims=("band", "y", "x"), name="reflectance", attrs=attrs,
                      coords={"band": list(assets), "y": y, "x": x,
                              "spatial_ref": _spatial_ref(epsg, chip_transform)})
    da.encoding["grid_mapping"] = "spatial_ref"
    return da


def _assets_tuple(assets: Any) -> tuple[str, ...]:
    assets = (assets,) if isinstance(assets, str) else tuple(assets)
    if not assets:
        raise ValueError("assets must name at least one asset, e.g. ('red', 'green', 'blue', 'nir')")
    return assets


def read_chip(row: Any, assets: Sequence[str] = ("red", "green", "blue", "nir"), *, items: Any,
              reference_asset: str = "red"):
    """Read one chip of a chip index as reflectance.

    Each asset is read with one windowed read (rasterio ``Window``) of just the chip's
    pixels; GDAL fetches only the COG blocks that the window touches. Datasets are opened
    once per href and kept open in a small cache per process (and thread): reading
    many chips reuses them, and a forked worker (e.g. a PyTorch DataLoader worker) starts
    with an empty cache instead of sharing its parent's file handles.
    :func:`close_datasets` empties it.

    Bands coarser than the reference grid (e.g. 20 m ``swir16`` with 10 m ``red``) are read
    at their native resolution over the window that covers the chip and upsampled by
    nearest neighbour: each 20 m pixel becomes 2 x 2 chip pixels (``np.repeat``), no
    interpolation, so values are the file's own.

    Args:
        row: one row of a chip index (a ``pandas.Series`` such as ``idx.iloc[0]``, a dict,
            or an ``itertuples()`` tuple) with ``item_id``, ``row_off``, ``col_off``,
            ``height``, ``width`` (``chip_id`` is copied to the attrs if present).
        assets: asset keys to read, in band order; each needs ``proj:shape``/``proj:transform``
            and ``raster:bands`` with ``scale`` (``offset``, ``nodata``) and a resolution
            that is a whole multiple of the reference asset's.
        items: where the items come from: a mapping ``{item_id: pystac.Item or dict}``, a
            list/``ItemCollection`` of items, or one item.
        reference_asset: the asset whose grid the index was built on (as in :func:`chip_index`).

    Returns:
        ``xarray.DataArray`` named ``"reflectance"``, dims ``(band, y, x)``, shape
        ``(len(assets), height, width)``, ``float32`` surface reflectance (unitless; NaN
        where the file has nodata) scaled with :func:`geolesson.indices.reflectance`;
        coords ``band`` (asset keys) and ``x``/``y``, the pixel-centre coordinates in
        metres of the item's CRS, which is written with rioxarray (``.rio.crs``,
        ``.rio.transform()``). attrs: ``item_id``, ``chip_id``.

    Raises:
        KeyError: the row's item is not in ``items``, or the row lacks a window column.
        ValueError: an asset is missing, lacks ``proj:*`` or ``raster:bands`` scale, or
            its grid does not line up with the reference grid.
        OSError: a file cannot be opened or read (the message names its href).
    """
    return read_chips([row], assets, items=items, reference_asset=reference_asset)[0]


def read_chips(rows: Any, assets: Sequence[str] = ("red", "green", "blue", "nir"), *, items: Any,
               reference_asset: str = "red", stack: bool = False):
    """Read many chips of ONE item in one pass: one read per asset of the union window, then slices.

    Cheaper than :func:`read_chip` in a loop when the chips are close together (a COG
    block shared by several chips is decoded once), costlier in memory when they are far
    apart: the union window of all rows is held in memory per asset (native dtype), e.g.
    a full 10980 x 10980 ``uint16`` band is 241 MB. Split far-apart chips into groups.

    Args:
        rows: chip index rows of one item (a GeoDataFrame/DataFrame, or a list of rows).
        assets, items, reference_asset: as :func:`read_chip`.
        stack: False: a list of DataArrays like :func:`read_chip`, in row order. True: one
            DataArray ``(chip, band, y, x)`` (all chips must have the same height/width),
            with coords ``chip`` (chip ids, or 0..n-1), ``band``, and per chip ``row_off``,
            ``col_off``; no ``x``/``y`` coordinates (they differ per chip) but the CRS.

    Raises:
        ValueError: the rows belong to several items, ``rows`` is empty, or (``stack``)
            chips differ in size; and everything :func:`read_chip` raises.
    """
    import xarray as xr

    assets = _assets_tuple(assets)
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):  # (Geo)DataFrame
        rows = rows.to_dict("records")
    else:
        rows = list(rows)
    if not rows:
        raise ValueError("rows is empty: nothing to read")
    item_ids = {str(_field(r, "item_id")) for r in rows}
    if len(item_ids) != 1:
        raise ValueError(f"read_chips reads chips of one item at a time, got {len(item_ids)} items "
                         f"({sorted(item_ids)[:3]}...); group the index by item_id first")
    d = _find_item(items, item_ids.pop())
    ref = _Grid(d, reference_asset, "reference_asset")
    epsg = _epsg(d, ref.asset)
    windows = [_window(r) for r in rows]
    top = min(w[0] for w in windows)
    left = min(w[1] for w in windows)
    bottom = max(w[0] + w[2] for w in windows)
    right = max(w[1] + w[3] for w in windows)

    sizes = {(w[2], w[3]) for w in windows}
    if stack and len(sizes) != 1:
        raise ValueError(f"stack=True needs chips of one size, got {sorted(sizes)}; drop partial chips "
                         "(chip_index(..., partial='drop')) or use stack=False")
    plans = [_Plan(d, key, ref) for key in assets]
    # chips of one size go into one (chip, band, y, x) block; others get one array each
    if len(sizes) == 1:
        height, width = sizes.pop()
        block = np.empty((len(rows), len(assets), height, width), dtype=np.float32)
        out_arrays = list(block)
    else:
        out_arrays = [np.empty((len(assets), w[2], w[3]), dtype=np.float32) for w in windows]
    for j, plan in enumerate(plans):
        r0, r1 = plan.span(top, bottom - top)
        c0, c1 = plan.span(left, right - left)
        data = _read_window(plan.grid.href, r0, r1, c0, c1, plan.fill)
        scale = _scaler(data, plan.grid.asset)
        for i, (row_off, col_off, height, width) in enumerate(windows):
            scale(plan.cut(data, r0, c0, row_off, col_off, height, width), out_arrays[i][j])
        del data

    chip_ids = [_get_optional(r, "chip_id") for r in rows]
    if not stack:
        return [_to_dataarray(arr, assets, ref, epsg, w[0], w[1],
                              {"item_id": d["id"], **({"chip_id": str(c)} if c is not None else {})})
                for arr, w, c in zip(out_arrays, windows, chip_ids)]
    labels = [str(c) for c in chip_ids] if all(c is not None for c in chip_ids) else list(range(len(rows)))
    stacked = xr.DataArray(
        block, dims=("chip", "band", "y", "x"), name="reflectance",
        coords={"chip": labels, "band": list(assets),
                "row_off": ("chip", np.array([w[0] for w in windows], dtype=np.int64)),
                "col_off": ("chip", np.array([w[1] for w in windows], dtype=np.int64)),
                "spatial_ref": _spatial_ref(epsg)},
        attrs={"item_id": d["id"]})
    stacked.encoding["grid_mapping"] = "spatial_ref"
    return stacked


def _get_optional(row: Any, key: str) -> Any:
    try:
        return _field(row, key)
    except KeyError:
        return None
