"""On-demand chip reads: index rows -> windowed reads of the items' COGs -> physical values.

Each asset of an item is read on its own grid (:class:`~geolesson.grid.ItemGrid`) over the
window that covers a chip of the reference grid, scaled to physical values and, where it is
coarser, upsampled by whole pixels. The files are opened by :mod:`geolesson.chips.files`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from geolesson.chips.files import open_dataset, read, read_window
from geolesson.chips.rows import asset_keys, row_field, row_get, row_window, rows_list
from geolesson.grid import GridWindow, ItemGrid
from geolesson.indices import reflectance
from geolesson.items import ItemLike, ItemsLike, find_item, item_asset, item_dict


class _AssetRead:
    """How to read one asset of one item onto the reference grid."""

    def __init__(self, d: dict, key: str, ref: ItemGrid):
        self.grid = ItemGrid.from_item(d, key, role="assets")
        self.asset = item_asset(d, key, "assets")
        k = self.grid.scale_to(ref)
        if not math.isclose(k, round(k), rel_tol=1e-9) or round(k) < 1:
            raise ValueError(f"item {d.get('id')!r}: asset {key!r} has {self.grid.resolution:g} m pixels, the "
                             f"reference grid {ref.resolution:g} m; only whole multiples (>= 1) can be upsampled")
        self.k = round(k)
        bands = self.asset.get("raster:bands") or [{}]
        nodata = bands[0].get("nodata")
        self.nodata = None if nodata is None else float(nodata)
        self.fill = 0 if self.nodata is None else self.nodata  # outside the raster
        # read straight into a float32 buffer (rasterio checks the file's dtype when read)
        self.direct = self.k == 1 and not _has_scale(self.asset)

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
        ref: the reference grid, a :class:`~geolesson.grid.ItemGrid` (``height``, ``width``,
            ``transform`` in metres of ``epsg``).
        plans: one read plan per asset, in channel order (``len(reader.plans)`` is C).

    Raises:
        ValueError: as :func:`read_chip` (a missing asset or ``proj:*`` field, grids that
            do not line up).
    """

    def __init__(self, item: ItemLike, assets: Sequence[str], reference_asset: str | None = None):
        d = item_dict(item)
        self.ref = ItemGrid.from_item(d, reference_asset)
        self.item_id, self.epsg = self.ref.item_id, self.ref.epsg
        self.plans = [_AssetRead(d, key, self.ref) for key in asset_keys(assets)]

    def transform(self, row_off: int, col_off: int):
        """The ``affine.Affine`` of the chip whose window starts at (row_off, col_off)."""
        return self.ref.window_transform(row_off, col_off)

    def read_into(self, window: GridWindow, out: np.ndarray) -> None:
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
        self._check_out(window, out)
        self._read_one(window, out)

    def read_many(self, windows: Sequence[GridWindow], outs: Sequence[np.ndarray]) -> None:
        """Write each chip ``windows[i]`` into ``outs[i]``, as :meth:`read_into` would, with
        one read per asset for chips that lie together.

        Neighbouring chips (a batch of an :func:`~geolesson.chips.overlap_grid` in row
        order) share COG blocks and overlap: the windows are grouped, in row-then-column
        order, while a group's bounding window holds no more pixels than its chips do
        together, and each group is read with one windowed read per asset and cut into
        chips. Far-apart chips (a random sampler's batch) stay groups of one, read as
        :meth:`read_into` reads them. The pixels are those of :meth:`read_into`, bit for bit.

        Raises:
            ValueError: ``windows`` and ``outs`` differ in length; and as :meth:`read_into`,
                for any window and its ``out``.
            OSError: as :meth:`read_into`.
        """
        if len(windows) != len(outs):
            raise ValueError(f"windows and outs must have one entry per chip, got {len(windows)} "
                             f"windows and {len(outs)} outs")
        for window, out in zip(windows, outs):
            self._check_out(window, out)
        for group in _groups(windows):
            if len(group) == 1:
                self._read_one(windows[group[0]], outs[group[0]])
                continue
            for j, plan in enumerate(self.plans):
                _read_cut(plan, [windows[i] for i in group], [outs[i][j] for i in group])

    def _read_one(self, window: GridWindow, out: np.ndarray) -> None:
        row_off, col_off, height, width = window
        for j, plan in enumerate(self.plans):
            if plan.direct and _read_direct(plan, row_off, col_off, height, width, out[j]):
                continue
            _read_cut(plan, [window], [out[j]])

    def _check_out(self, window: GridWindow, out: np.ndarray) -> None:
        height, width = window[2:]
        if (out.shape != (len(self.plans), height, width) or out.dtype != np.float32
                or not out.flags.c_contiguous):
            raise ValueError(f"out must be a C-contiguous float32 array of shape "
                             f"{(len(self.plans), height, width)}, not {out.dtype} {out.shape}"
                             f"{'' if out.flags.c_contiguous else ' (not C-contiguous)'}")
        self.ref.check_window(window)


def _bounds(windows: Sequence[GridWindow]) -> GridWindow:
    """The smallest window (row_off, col_off, height, width) holding all of ``windows``."""
    top = min(w[0] for w in windows)
    left = min(w[1] for w in windows)
    return (top, left, max(w[0] + w[2] for w in windows) - top,
            max(w[1] + w[3] for w in windows) - left)


def _groups(windows: Sequence[GridWindow]) -> list[list[int]]:
    """Indices of ``windows`` in groups to read together: in (row_off, col_off) order, a
    window joins the current group while the group's bounding window holds no more pixels
    than its windows do together (so a group never reads more than its chips one by one)."""
    groups: list[list[int]] = []
    area = 0
    for i in sorted(range(len(windows)), key=lambda i: windows[i][:2]):
        size = windows[i][2] * windows[i][3]
        if groups:
            group = groups[-1] + [i]
            _, _, height, width = _bounds([windows[k] for k in group])
            if height * width <= area + size:
                groups[-1], area = group, area + size
                continue
        groups.append([i])
        area = size
    return groups


def _read_cut(plan: _AssetRead, windows: Sequence[GridWindow], outs: Sequence[np.ndarray]) -> None:
    """One asset of chips ``windows`` (reference grid) into ``outs`` (float32 ``(H, W)``
    each): one read of their bounding window on the asset's grid, scaled, then cut."""
    top, left, height, width = _bounds(windows)
    r0, r1 = plan.span(top, height)
    c0, c1 = plan.span(left, width)
    data = read_window(plan.grid.href, r0, r1, c0, c1, plan.fill)
    scale = _scaler(data, plan.asset)
    # chips that share their pixels (a group of read_many): scale them once, before they are
    # cut and upsampled; far-apart chips (read_chips) are scaled each on its own, so that a
    # large union window is never held as float32 too
    if len(windows) > 1 and height * width <= sum(w[2] * w[3] for w in windows):
        physical = np.empty(data.shape, dtype=np.float32)
        scale(data, physical)
        data = physical

        def scale(window: np.ndarray, out: np.ndarray) -> None:
            np.copyto(out, window)
    for (row_off, col_off, h, w), out in zip(windows, outs):
        scale(plan.cut(data, r0, c0, row_off, col_off, h, w), out)


def _read_direct(plan: _AssetRead, row_off: int, col_off: int, height: int, width: int,
                 out: np.ndarray) -> bool:
    """Read a window of a float32 asset straight into ``out`` (True), or leave it to the
    general path (False: another dtype, or a window over the raster's edge)."""
    ds = open_dataset(plan.grid.href)
    if (ds.dtypes[0] != "float32" or row_off < 0 or col_off < 0 or row_off + height > ds.height
            or col_off + width > ds.width):
        return False
    read(plan.grid.href, row_off, row_off + height, col_off, col_off + width, out=out)
    if plan.nodata is not None and not math.isnan(plan.nodata):
        out[out == plan.nodata] = np.nan
    return True


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


def _to_dataarray(data: np.ndarray, assets: Sequence[str], ref: ItemGrid, row_off: int, col_off: int,
                  attrs: dict, name: str):
    import xarray as xr

    height, width = data.shape[1:]
    da = xr.DataArray(data, dims=("band", "y", "x"), name=name, attrs=attrs,
                      coords={"band": list(assets), **ref.coords((row_off, col_off, height, width))})
    da.encoding["grid_mapping"] = "spatial_ref"
    return da


def _row_reference(rows: list, reference_asset: str | None) -> str | None:
    if reference_asset is not None:
        return reference_asset
    keys = {row_get(r, "reference_asset") for r in rows}
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
    ref: ItemGrid
    name: str


def _read_rows(rows: list, assets: tuple[str, ...], items: Any, reference_asset: str | None) -> _Read:
    """The pixels of rows of ONE item, one read per asset of the union window, then slices."""
    if not rows:
        raise ValueError("rows is empty: nothing to read")
    item_ids = {str(row_field(r, "item_id")) for r in rows}
    if len(item_ids) != 1:
        raise ValueError(f"read_chips reads chips of one item at a time, got {len(item_ids)} items "
                         f"({sorted(item_ids)[:3]}...); group the index by item_id first")
    d = find_item(items, item_ids.pop())
    ref = ItemGrid.from_item(d, _row_reference(rows, reference_asset))
    windows = [row_window(r) for r in rows]
    for w in windows:
        ref.check_window(w)
    plans = [_AssetRead(d, key, ref) for key in assets]
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
        _read_cut(plan, windows, [a[j] for a in out_arrays])
    name = "reflectance" if all(_has_scale(p.asset) for p in plans) else "value"
    return _Read(out_arrays, block, windows, d, ref, name)


class ChipArray(NamedTuple):
    """One chip as plain arrays (:func:`read_chip_array`)."""

    #: float32 ``(band, y, x)``, physical values, NaN nodata
    data: np.ndarray
    #: ``affine.Affine`` of the chip's window on its item's grid (metres of ``epsg``)
    transform: Any
    #: the item's EPSG code
    epsg: int


def read_chip_array(row: Any, assets: Sequence[str], *, items: ItemsLike,
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
    read = _read_rows([row], asset_keys(assets), items, reference_asset)
    row_off, col_off = read.windows[0][:2]
    return ChipArray(read.arrays[0], read.ref.window_transform(row_off, col_off), read.ref.epsg)


def read_chip(row: Any, assets: Sequence[str] = ("red", "green", "blue", "nir"), *, items: ItemsLike,
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


def read_chips(rows: Any, assets: Sequence[str] = ("red", "green", "blue", "nir"), *, items: ItemsLike,
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

    assets = asset_keys(assets)
    rows = rows_list(rows)
    if stack and rows:
        sizes = {row_window(r)[2:] for r in rows}
        if len(sizes) != 1:
            raise ValueError(f"stack=True needs chips of one size, got {sorted(sizes)}; drop partial "
                             "chips (chip_index(..., partial='drop')) or use stack=False")
    read = _read_rows(rows, assets, items, reference_asset)
    d, windows = read.item, read.windows
    chip_ids = [row_get(r, "chip_id") for r in rows]
    if not stack:
        return [_to_dataarray(arr, assets, read.ref, w[0], w[1],
                              {"item_id": d["id"], **({"chip_id": str(c)} if c is not None else {})},
                              read.name)
                for arr, w, c in zip(read.arrays, windows, chip_ids)]
    labels = [str(c) for c in chip_ids] if all(c is not None for c in chip_ids) else list(range(len(rows)))
    stacked = xr.DataArray(
        read.block, dims=("chip", "band", "y", "x"), name=read.name,
        coords={"chip": labels, "band": list(assets),
                "row_off": ("chip", np.array([w[0] for w in windows], dtype=np.int64)),
                "col_off": ("chip", np.array([w[1] for w in windows], dtype=np.int64)),
                "spatial_ref": read.ref.spatial_ref()},
        attrs={"item_id": d["id"]})
    stacked.encoding["grid_mapping"] = "spatial_ref"
    return stacked

