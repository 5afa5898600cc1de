"""On-demand chip reads: index rows -> windowed reads of the items' COGs -> physical values.

Datasets are opened lazily, once per href, per process and thread, and forgotten (not
closed: the handles belong to the parent) after a fork, so that forked DataLoader workers
never share GDAL handles with their parent.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import threading
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from geolesson import sources
from geolesson.chips.grid import _epsg, _find_item, _Grid, _item_dict, _reference_asset
from geolesson.indices import reflectance

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


def _read(href: str, r0: int, r1: int, c0: int, c1: int, out: np.ndarray | None = None) -> np.ndarray:
    """Band 1 of ``href``, rows [r0, r1) x cols [c0, c1) inside the raster, native dtype (into
    ``out`` if given). OSError naming the href if the read fails."""
    import rasterio
    from rasterio.windows import Window

    ds = _open(href)
    try:
        with rasterio.Env(**sources.GDAL_HTTP_OPTIONS):
            return ds.read(1, window=Window(c0, r0, max(c1 - c0, 0), max(r1 - r0, 0)), out=out)
    except Exception as exc:
        _cache().pop(href, None)
        raise OSError(f"could not read {href!r} (rows {r0}:{r1}, cols {c0}:{c1}): {exc}") from exc


def _read_window(href: str, row0: int, row1: int, col0: int, col1: int, fill: Any) -> np.ndarray:
    """Band 1 of ``href``, rows [row0, row1) x cols [col0, col1), native dtype; parts outside
    the raster are ``fill``. OSError naming the href if the read fails."""
    ds = _open(href)
    r0, r1 = max(row0, 0), min(row1, ds.height)
    c0, c1 = max(col0, 0), min(col1, ds.width)
    data = _read(href, r0, r1, c0, c1)
    if (r0, r1, c0, c1) != (row0, row1, col0, col1):
        pad = ((r0 - row0, row1 - r1), (c0 - col0, col1 - c1))
        data = np.pad(data, [(max(a, 0), max(b, 0)) for a, b in pad], constant_values=fill)
    return data


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
        nodata = bands[0].get("nodata")
        self.nodata = None if nodata is None else float(nodata)
        self.fill = 0 if self.nodata is None else self.nodata  # outside the raster
        # read straight into a float32 buffer (rasterio checks the file's dtype when read)
        self.direct = self.k == 1 and not _has_scale(self.grid.asset)

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


class ItemReader:
    """Reads chips of one item into a caller's float32 buffer, its grids prepared once.

    :func:`read_chip_array` parses the item's ``proj:*`` fields and checks its grids for
    every chip; a dataset that reads thousands of chips of few items keeps one reader per
    item instead (:class:`geolesson.batching.ChipDataset`). The pixels are the same:
    each asset's window read on the item's own grid, physical values, NaN nodata.

    Args:
        item: a ``pystac.Item`` or STAC item dict.
        assets: asset keys, in channel order.
        reference_asset: the asset whose grid the chip windows are on (None: the first of
            ``DEFAULT_REFERENCE_ASSETS`` the item has).

    Attributes:
        epsg: the item's EPSG code (int).
        ref: the reference grid (``height``, ``width``, ``transform`` in metres of ``epsg``).

    Raises:
        ValueError: as :func:`read_chip` (a missing asset or ``proj:*`` field, grids that
            do not line up).
    """

    def __init__(self, item: Any, assets: Sequence[str], reference_asset: str | None = None):
        d = _item_dict(item)
        self.item_id = d.get("id")
        self.ref = _Grid(d, _reference_asset(d, reference_asset), "reference_asset")
        self.epsg = _epsg(d, self.ref.asset)
        self.plans = [_Plan(d, key, self.ref) for key in _assets_tuple(assets)]

    def transform(self, row_off: int, col_off: int):
        """The ``affine.Affine`` of the chip whose window starts at (row_off, col_off)."""
        return _chip_transform(self.ref, row_off, col_off)

    def read_into(self, window: tuple[int, int, int, int], out: np.ndarray) -> None:
        """Write the chip ``window`` = (row_off, col_off, height, width) of the reference
        grid into ``out``, float32 ``(len(assets), height, width)``, C-contiguous.

        A float32 asset on the reference grid, window inside the raster, no ``scale``
        (Sentinel-1 RTC gamma0) is read straight into ``out`` and its nodata set to NaN
        in place; any other asset as :func:`read_chip` reads it (scaled, upsampled,
        padded with NaN outside the raster).

        Raises:
            ValueError: the window is empty or wholly outside the item, or ``out`` has
                another shape or dtype, or is not C-contiguous.
            OSError: a file cannot be opened or read (the message names its href).
        """
        row_off, col_off, height, width = window
        if (out.shape != (len(self.plans), height, width) or out.dtype != np.float32
                or not out.flags.c_contiguous):
            raise ValueError(f"out must be a C-contiguous float32 array of shape "
                             f"{(len(self.plans), height, width)}, not {out.dtype} {out.shape}"
                             f"{'' if out.flags.c_contiguous else ' (not C-contiguous)'}")
        _check_window(window, self.ref, self.item_id)
        for j, plan in enumerate(self.plans):
            if plan.direct and _read_direct(plan, row_off, col_off, height, width, out[j]):
                continue
            r0, r1 = plan.span(row_off, height)
            c0, c1 = plan.span(col_off, width)
            data = _read_window(plan.grid.href, r0, r1, c0, c1, plan.fill)
            _scaler(data, plan.grid.asset)(plan.cut(data, r0, c0, row_off, col_off, height, width), out[j])


def _read_direct(plan: _Plan, row_off: int, col_off: int, height: int, width: int,
                 out: np.ndarray) -> bool:
    """Read a window of a float32 asset straight into ``out`` (True), or leave it to the
    general path (False: another dtype, or a window over the raster's edge)."""
    ds = _open(plan.grid.href)
    if (ds.dtypes[0] != "float32" or row_off < 0 or col_off < 0 or row_off + height > ds.height
            or col_off + width > ds.width):
        return False
    _read(plan.grid.href, row_off, row_off + height, col_off, col_off + width, out=out)
    if plan.nodata is not None and not math.isnan(plan.nodata):
        out[out == plan.nodata] = np.nan
    return True


def _window(row: Any) -> tuple[int, int, int, int]:
    return tuple(int(_field(row, k)) for k in ("row_off", "col_off", "height", "width"))


def _has_scale(asset: dict) -> bool:
    bands = asset.get("raster:bands") or [{}]
    return bands[0].get("scale") is not None


def _scaler(dn: np.ndarray, asset: dict):
    """A function ``(window, out) -> None`` writing the physical values of a window into
    ``out`` (float32):

    - an asset with ``raster:bands`` ``scale`` (Sentinel-2 DN): :func:`geolesson.indices.reflectance`.
      For a large ``uint8``/``uint16`` read it gathers from a lookup table that
      ``reflectance`` itself computes for every possible DN: the values are identical,
      and one 4-byte gather per pixel replaces float64 arithmetic;
    - an asset without ``scale`` (e.g. Sentinel-1 RTC gamma0, already physical): the
      file's values cast to float32 (exact for float32 files), NaN where they equal the
      band's ``nodata`` (or are NaN already); no ``nodata``: the values as they are."""
    if not _has_scale(asset):
        bands = asset.get("raster:bands") or [{}]
        nodata = bands[0].get("nodata")
        nodata = None if nodata is None else float(nodata)

        def physical(window: np.ndarray, out: np.ndarray) -> None:
            np.copyto(out, window, casting="unsafe")
            if nodata is not None and not math.isnan(nodata):
                out[window == nodata] = np.nan
        return physical
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


def _chip_transform(ref: _Grid, row_off: int, col_off: int):
    """The affine transform of the chip whose window starts at (row_off, col_off)."""
    from affine import Affine

    t = ref.transform
    return Affine(t.a, 0, t.c + col_off * t.a, 0, t.e, t.f + row_off * t.e)


def _to_dataarray(data: np.ndarray, assets: Sequence[str], ref: _Grid, epsg: int,
                  row_off: int, col_off: int, attrs: dict, name: str):
    import xarray as xr

    t = ref.transform
    height, width = data.shape[1:]
    x = t.c + (col_off + np.arange(width) + 0.5) * t.a
    y = t.f + (row_off + np.arange(height) + 0.5) * t.e
    chip_transform = _chip_transform(ref, row_off, col_off)
    da = xr.DataArray(data, dims=("band", "y", "x"), name=name, attrs=attrs,
                      coords={"band": list(assets), "y": y, "x": x,
                              "spatial_ref": _spatial_ref(epsg, chip_transform)})
    da.encoding["grid_mapping"] = "spatial_ref"
    return da


def _assets_tuple(assets: Any) -> tuple[str, ...]:
    assets = (assets,) if isinstance(assets, str) else tuple(assets)
    if not assets:
        raise ValueError("assets must name at least one asset, e.g. ('red', 'green', 'blue', 'nir')")
    return assets




def _check_window(w: tuple[int, int, int, int], ref: _Grid, item_id: str) -> None:
    """ValueError unless the window (row_off, col_off, height, width) has a positive size and
    overlaps the reference grid (a window over an edge is fine: its outside is NaN)."""
    row_off, col_off, height, width = w
    for name, value in (("height", height), ("width", width)):
        if value <= 0:
            raise ValueError(f"{name}={value}: a chip window needs a positive height and width "
                             f"(row_off={row_off}, col_off={col_off}, height={height}, width={width})")
    if row_off >= ref.height or row_off + height <= 0 or col_off >= ref.width or col_off + width <= 0:
        raise ValueError(f"row_off={row_off}, col_off={col_off}: the window rows [{row_off}, "
                         f"{row_off + height}) x cols [{col_off}, {col_off + width}) lies wholly "
                         f"outside item {item_id!r}, whose {ref.key!r} grid is {ref.height} x "
                         f"{ref.width} pixels; a chip must overlap rows [0, {ref.height}) and cols "
                         f"[0, {ref.width}) (one that overlaps an edge is padded with NaN)")


def _row_reference(rows: list, reference_asset: str | None) -> str | None:
    if reference_asset is not None:
        return reference_asset
    keys = {_get_optional(r, "reference_asset") for r in rows}
    keys.discard(None)
    if len(keys) > 1:
        raise ValueError(f"the rows were indexed on different reference assets {sorted(keys)}; "
                         "read them separately or pass reference_asset=")
    return keys.pop() if keys else None


class _Read(NamedTuple):
    arrays: list  # per row: float32 (C, H, W)
    block: np.ndarray | None  # (N, C, H, W) when all rows have one size (arrays are its views)
    windows: list
    item: dict
    ref: _Grid
    epsg: int
    name: str


def _read_rows(rows: list, assets: tuple[str, ...], items: Any, reference_asset: str | None) -> _Read:
    """The pixels of rows of ONE item, one read per asset of the union window, then slices."""
    if not rows:
        raise ValueError("rows is empty: nothing to read")
    item_ids = {str(_field(r, "item_id")) for r in rows}
    if len(item_ids) != 1:
        raise ValueError(f"read_chips reads chips of one item at a time, got {len(item_ids)} items "
                         f"({sorted(item_ids)[:3]}...); group the index by item_id first")
    d = _find_item(items, item_ids.pop())
    ref = _Grid(d, _reference_asset(d, _row_reference(rows, reference_asset)), "reference_asset")
    epsg = _epsg(d, ref.asset)
    windows = [_window(r) for r in rows]
    for w in windows:
        _check_window(w, ref, d["id"])
    top = min(w[0] for w in windows)
    left = min(w[1] for w in windows)
    bottom = max(w[0] + w[2] for w in windows)
    right = max(w[1] + w[3] for w in windows)
    plans = [_Plan(d, key, ref) for key in assets]
    sizes = {(w[2], w[3]) for w in windows}
    # chips of one size go into one (chip, band, y, x) block; others get one array each
    block = None
    if len(sizes) == 1:
        height, width = next(iter(sizes))
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
    name = "reflectance" if all(_has_scale(p.grid.asset) for p in plans) else "value"
    return _Read(out_arrays, block, windows, d, ref, epsg, name)


def _rows_list(rows: Any) -> list:
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):  # (Geo)DataFrame
        return rows.to_dict("records")
    return list(rows)


class ChipArray(NamedTuple):
    """One chip as plain arrays (:func:`read_chip_array`)."""

    #: float32 ``(band, y, x)``, physical values, NaN nodata
    data: np.ndarray
    #: ``affine.Affine`` of the chip's window on its item's grid (metres of ``epsg``)
    transform: Any
    #: the item's EPSG code
    epsg: int


def read_chip_array(row: Any, assets: Sequence[str], *, items: Any,
                    reference_asset: str | None = None) -> ChipArray:
    """One chip as a NumPy array with its georeferencing, without building an xarray object.

    The same pixels as :func:`read_chip` (same reads, same scaling), for code that wants
    arrays: e.g. a PyTorch dataset, where a DataArray per chip would cost more than the
    read. Args and errors as :func:`read_chip`.

    Returns:
        :class:`ChipArray` ``(data, transform, epsg)``: ``data`` float32 ``(len(assets),
        height, width)``; ``transform`` the chip's ``affine.Affine`` in the item's CRS
        ``EPSG:<epsg>``.
    """
    read = _read_rows([row], _assets_tuple(assets), items, reference_asset)
    row_off, col_off = read.windows[0][:2]
    return ChipArray(read.arrays[0], _chip_transform(read.ref, row_off, col_off), read.epsg)


def read_chip(row: Any, assets: Sequence[str] = ("red", "green", "blue", "nir"), *, items: Any,
              reference_asset: str | None = None):
    """Read one chip of a chip index in physical units: reflectance, or e.g. gamma0.

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
            ``height``, ``width`` (``chip_id`` is copied to the attrs if present). The
            window may overlap the scene's edge (the outside is NaN), but not lie wholly
            outside it, and must have a positive size.
        assets: asset keys to read, in band order; each needs ``proj:shape``/``proj:transform``
            and a resolution that is a whole multiple of the reference asset's. With
            ``raster:bands`` ``scale`` (Sentinel-2) the DN are scaled to reflectance; without
            (Sentinel-1 RTC) the values are already physical and are kept.
        items: where the items come from: a mapping ``{item_id: pystac.Item or dict}``, a
            list/``ItemCollection`` of items, or one item.
        reference_asset: the asset whose grid the index was built on; None: the row's
            ``reference_asset`` column (written by :func:`chip_index`), else the first of
            ``DEFAULT_REFERENCE_ASSETS`` (``red``, ``vv``) the item has.

    Returns:
        ``xarray.DataArray``, dims ``(band, y, x)``, shape ``(len(assets), height, width)``,
        ``float32``, NaN where the file has nodata (or outside the scene). Named
        ``"reflectance"`` when every asset has a ``scale`` (surface reflectance, unitless,
        scaled with :func:`geolesson.indices.reflectance`), else ``"value"`` (the file's
        physical values, e.g. linear gamma0 power for Sentinel-1 RTC). Coords ``band``
        (asset keys) and ``x``/``y``, the pixel-centre coordinates in metres of the item's
        CRS, which is written with rioxarray (``.rio.crs``, ``.rio.transform()``). attrs:
        ``item_id``, ``chip_id``.

    Raises:
        KeyError: the row's item is not in ``items``, or the row lacks a window column.
        ValueError: an asset is missing or lacks ``proj:*``; its grid does not line up with
            the reference grid; the window is empty or wholly outside the scene.
        OSError: a file cannot be opened or read (the message names its href).
    """
    return read_chips([row], assets, items=items, reference_asset=reference_asset)[0]


def read_chips(rows: Any, assets: Sequence[str] = ("red", "green", "blue", "nir"), *, items: Any,
               reference_asset: str | None = None, stack: bool = False):
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
    rows = _rows_list(rows)
    if stack and rows:
        sizes = {_window(r)[2:] for r in rows}
        if len(sizes) != 1:
            raise ValueError(f"stack=True needs chips of one size, got {sorted(sizes)}; drop partial "
                             "chips (chip_index(..., partial='drop')) or use stack=False")
    read = _read_rows(rows, assets, items, reference_asset)
    d, windows = read.item, read.windows
    chip_ids = [_get_optional(r, "chip_id") for r in rows]
    if not stack:
        return [_to_dataarray(arr, assets, read.ref, read.epsg, w[0], w[1],
                              {"item_id": d["id"], **({"chip_id": str(c)} if c is not None else {})},
                              read.name)
                for arr, w, c in zip(read.arrays, windows, chip_ids)]
    labels = [str(c) for c in chip_ids] if all(c is not None for c in chip_ids) else list(range(len(rows)))
    stacked = xr.DataArray(
        read.block, dims=("chip", "band", "y", "x"), name=read.name,
        coords={"chip": labels, "band": list(assets),
                "row_off": ("chip", np.array([w[0] for w in windows], dtype=np.int64)),
                "col_off": ("chip", np.array([w[1] for w in windows], dtype=np.int64)),
                "spatial_ref": _spatial_ref(read.epsg)},
        attrs={"item_id": d["id"]})
    stacked.encoding["grid_mapping"] = "spatial_ref"
    return stacked


def _get_optional(row: Any, key: str) -> Any:
    try:
        return _field(row, key)
    except KeyError:
        return None
