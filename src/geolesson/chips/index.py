"""Chip indexes: one row per chip of an item's grid, without overlap and with statistics
(:func:`~geolesson.chips.chip_index`), or overlapping and without
(:func:`~geolesson.chips.overlap_grid`), built by one table builder
(:func:`~geolesson.chips.index.chip_table`)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from geolesson._checks import check_fraction, check_int
from geolesson.chips import statistics as stats
from geolesson.grid import ItemGrid
from geolesson.indices import DEFAULT_CLOUD_CLASSES, SCL_CLASSES, SCL_NODATA
from geolesson.items import ItemLike, ItemsLike, item_asset, item_datetime, item_dict, item_list

#: Columns of a chip index, in order (plus ``geometry``, the chip footprint in EPSG:4326).
INDEX_COLUMNS: tuple[str, ...] = (
    "chip_id", "item_id", "collection", "datetime", "crs", "chip_size", "reference_asset",
    "col", "row", "col_off", "row_off", "width", "height", "nodata_fraction", "cloud_fraction",
)
#: Where the statistics come from (the SCL band, the nodata of a data band, or whichever the
#: item has, ``"auto"``, which is SCL if the item has ``scl_asset``, else nodata).
STATISTICS: tuple[str, ...] = ("auto", "scl", "nodata")

_INT_COLUMNS = ("crs", "chip_size", "col", "row", "col_off", "row_off", "width", "height")
_STR_COLUMNS = ("chip_id", "item_id", "collection", "reference_asset")
_PARTIAL = ("drop", "keep")


def _nodata_value(asset: dict, item_id: str, key: str) -> float:
    bands = asset.get("raster:bands") or [{}]
    nodata = bands[0].get("nodata")
    if nodata is None:
        raise ValueError(f"item {item_id!r}, asset {key!r} has no raster:bands nodata: statistics="
                         "'nodata' needs it to count the empty pixels (or use statistics='scl')")
    return float(nodata)  # "nan", "inf", "-inf" are allowed by the raster extension


def chip_id(collection: str, item_id: str, chip_size: int, row: int, col: int) -> str:
    """The id of chip ``(row, col)`` of a ``chip_size`` grid of an item:
    ``"<collection>_<item id>_<chip size>px_<row>_<col>"`` (without ``"<collection>_"``
    when the item names no collection). Collection and chip size are part of it, so ids stay
    unique when indexes of several collections or chip sizes are concatenated; every
    character is one an item id already holds, so an id is a valid file name where the
    item id is."""
    prefix = f"{collection}_" if collection else ""
    return f"{prefix}{item_id}_{chip_size}px_{row}_{col}"


@dataclass(frozen=True)
class IndexSettings:
    """The arguments of :func:`~geolesson.chips.chip_index` that decide its output, checked (:meth:`check`);
    :func:`~geolesson.chips.index_archive` records them in every part it writes."""

    chip_size: int
    partial: str
    cloud_classes: tuple[int, ...]
    max_nodata: float | None
    max_cloud: float | None
    statistics: str
    scl_asset: str
    nodata_asset: str | None
    reference_asset: str | None


    @classmethod
    def check(cls, chip_size: Any, partial: Any, cloud_classes: Any, max_nodata: Any, max_cloud: Any,
              statistics: Any, scl_asset: str, nodata_asset: str | None,
              reference_asset: str | None) -> IndexSettings:
        """The settings of :func:`~geolesson.chips.chip_index`'s arguments of the same names, checked.

        Raises:
            ValueError: as :func:`~geolesson.chips.chip_index` documents for its arguments (names the one
                that is wrong).
            TypeError: ``cloud_classes`` not class numbers, an asset key not a str.
        """
        return _check_settings(cls, chip_size, partial, cloud_classes, max_nodata, max_cloud, statistics,
                               scl_asset, nodata_asset, reference_asset)


def _check_settings(cls, chip_size: Any, partial: Any, cloud_classes: Any, max_nodata: Any, max_cloud: Any,
                    statistics: Any, scl_asset: str, nodata_asset: str | None,
                    reference_asset: str | None) -> IndexSettings:
    if isinstance(chip_size, bool) or not isinstance(chip_size, (int, np.integer)) or chip_size <= 0:
        raise ValueError(f"chip_size must be a positive integer number of pixels, not {chip_size!r}")
    if partial not in _PARTIAL:
        raise ValueError(f"partial must be one of {_PARTIAL}, not {partial!r}")
    if statistics not in STATISTICS:
        raise ValueError(f"statistics must be one of {STATISTICS}, not {statistics!r}")
    if isinstance(cloud_classes, bool) or not isinstance(cloud_classes, (int, np.integer, Iterable)) \
            or isinstance(cloud_classes, (str, bytes)):
        raise TypeError(f"cloud_classes must be SCL class numbers, e.g. (3, 8, 9, 10), not {cloud_classes!r}")
    for name, value, optional in (("scl_asset", scl_asset, False), ("nodata_asset", nodata_asset, True),
                                  ("reference_asset", reference_asset, True)):
        if not (isinstance(value, str) and value) and not (optional and value is None):
            raise TypeError(f"{name} must be an asset key (a non-empty str){' or None' if optional else ''}, "
                            f"not {value!r}")
    classes = [cloud_classes] if isinstance(cloud_classes, (int, np.integer)) else list(cloud_classes)
    unknown = [c for c in classes if c not in SCL_CLASSES]
    if unknown:
        raise ValueError(f"cloud_classes: {unknown} are not SCL classes (0..{max(SCL_CLASSES)})")
    if SCL_NODATA in classes:
        raise ValueError(f"cloud_classes must not contain the no-data class {SCL_NODATA}")
    check_fraction("max_nodata", max_nodata)
    check_fraction("max_cloud", max_cloud)
    return cls(int(chip_size), partial, tuple(sorted({int(c) for c in classes})),
                     None if max_nodata is None else float(max_nodata),
                     None if max_cloud is None else float(max_cloud),
                     statistics, scl_asset, nodata_asset, reference_asset)


@dataclass(frozen=True)
class IndexPlan:
    """What indexing one item needs, read from its metadata alone (no pixels): :func:`plan_index`."""

    item: dict
    item_id: str
    ref: ItemGrid  # the grid the chips follow
    statistics: str  # "scl" or "nodata", resolved from "auto"
    band: ItemGrid  # the statistics band's grid
    nodata: float
    classes: tuple[int, ...]
    s: int  # statistics-band pixels per chip side
    band_h: int  # statistics-band rows and columns the reference grid touches
    band_w: int


def plan_index(item: ItemLike, st: IndexSettings) -> IndexPlan:
    """Check that ``item`` can be indexed with these settings, from its metadata only.

    Raises:
        ValueError: as :func:`~geolesson.chips.chip_index` documents for a single item.
    """
    chip_size, statistics, scl_asset = st.chip_size, st.statistics, st.scl_asset
    d = item_dict(item)
    ref = ItemGrid.from_item(d, st.reference_asset)
    item_id, reference_asset = ref.item_id, ref.asset
    if statistics == "auto":
        statistics = "scl" if scl_asset in (d.get("assets") or {}) else "nodata"
    if statistics == "scl":
        key, role, nodata, classes = scl_asset, "scl_asset", SCL_NODATA, st.cloud_classes
    else:
        if st.max_cloud is not None:
            raise ValueError(f"max_cloud={st.max_cloud!r} needs cloud statistics from an SCL band, but "
                             f"item {item_id!r} gets statistics='nodata' (no {scl_asset!r} asset): its "
                             "cloud_fraction is NaN (not measured); drop max_cloud")
        key, role = st.nodata_asset or reference_asset, "nodata_asset"
        nodata, classes = _nodata_value(item_asset(d, key, role), item_id, key), ()
    band = ItemGrid.from_item(d, key, role=role)
    band.scale_to(ref)  # the grids start at one corner
    ratio = ref.resolution / band.resolution  # band pixels per reference pixel (0.5 for 10 m / 20 m SCL)
    if chip_size > ref.height or chip_size > ref.width:
        raise ValueError(f"chip_size={chip_size} is larger than the scene: item {item_id!r} asset "
                         f"{reference_asset!r} is {ref.height} x {ref.width} pixels; use chip_size <= "
                         f"{min(ref.height, ref.width)}")
    s = chip_size * ratio
    if not math.isclose(s, round(s), abs_tol=1e-9) or round(s) < 1:
        raise ValueError(f"chip_size={chip_size} at {ref.resolution:g} m ({reference_asset!r}) is {s:g} "
                         f"{key!r} pixels at {band.resolution:g} m: it must be a whole number; choose "
                         f"chip_size a multiple of {stats.chip_size_step(ratio)}")
    # band pixels touched by the reference grid
    band_h = math.ceil(ref.height * ratio - 1e-9)
    band_w = math.ceil(ref.width * ratio - 1e-9)
    if band.height < band_h or band.width < band_w:
        raise ValueError(f"item {item_id!r}: asset {key!r} ({band.height} x {band.width} at "
                         f"{band.resolution:g} m) does not cover the {reference_asset!r} grid "
                         f"({ref.height} x {ref.width} at {ref.resolution:g} m)")
    return IndexPlan(d, item_id, ref, statistics, band, nodata, classes, round(s), band_h, band_w)


def chip_table(grid: ItemGrid, item: dict, chip_size: int, row: np.ndarray, col: np.ndarray,
               row_off: np.ndarray, col_off: np.ndarray, height: np.ndarray, width: np.ndarray,
               chip_ids: list[str], **columns: Any):
    """The rows of chips of one item's grid: ``(frame, footprints)``.

    Args:
        grid: the item's reference grid (the chips' windows are on it).
        item: the item's dict (``collection``, ``datetime`` are read from it).
        chip_size: the grid's chip size (pixels), a column of every row.
        row, col, row_off, col_off, height, width: int arrays, one value per chip: its
            position in chip units and its window in pixels.
        chip_ids: one id per chip.
        columns: further columns (arrays of one value per chip), after the window columns.

    Returns:
        ``pandas.DataFrame`` with the columns of :data:`INDEX_COLUMNS` up to ``height`` (int64
        windows, ``datetime64[us, UTC]``), then ``columns``; and the footprints (EPSG:4326
        polygons, :meth:`geolesson.grid.ItemGrid.footprints`) in the same order.
    """
    import pandas as pd

    n = len(chip_ids)
    frame = pd.DataFrame({
        "chip_id": chip_ids,
        "item_id": [grid.item_id] * n,
        "collection": [item.get("collection") or ""] * n,
        "datetime": pd.DatetimeIndex([item_datetime(item)] * n).as_unit("us") if n else
        pd.DatetimeIndex([], tz="UTC").as_unit("us"),
        "crs": np.full(n, grid.epsg, dtype=np.int64),
        "chip_size": np.full(n, chip_size, dtype=np.int64),
        "reference_asset": [grid.asset] * n,
        "col": np.asarray(col, dtype=np.int64), "row": np.asarray(row, dtype=np.int64),
        "col_off": np.asarray(col_off, dtype=np.int64), "row_off": np.asarray(row_off, dtype=np.int64),
        "width": np.asarray(width, dtype=np.int64), "height": np.asarray(height, dtype=np.int64),
        **columns,
    })
    return frame, grid.footprints(row_off, col_off, height, width)


def _item_chips(plan: IndexPlan, st: IndexSettings):
    """One item's chips: ``(frame, footprints)``; reads and counts its statistics band."""
    chip_size, partial, max_nodata, max_cloud = st.chip_size, st.partial, st.max_nodata, st.max_cloud
    d, item_id, ref, band, s = plan.item, plan.item_id, plan.ref, plan.band, plan.s
    if partial == "drop":
        nrows, ncols = ref.height // chip_size, ref.width // chip_size
    else:
        nrows, ncols = -(-ref.height // chip_size), -(-ref.width // chip_size)

    # the band rows and columns the chips cover, in strips of whole chip rows
    h, w = min(plan.band_h, nrows * s), min(plan.band_w, ncols * s)
    strips = stats.read_strips(band.href, (band.height, band.width), s * max(1, round(stats.STRIP_ROWS / s)), h, w,
                               f"item {item_id!r}, asset {band.asset!r},")
    total, n_nodata, cloud = stats.chip_counts(strips, s, h, w, nrows, ncols, plan.classes, plan.nodata)
    valid = total - n_nodata
    nodata_fraction = (n_nodata / total).ravel()
    if plan.statistics == "scl":
        cloud_fraction = np.divide(cloud, valid, out=np.zeros(valid.shape, dtype=np.float64),
                                   where=valid > 0).ravel()
    else:
        cloud_fraction = np.full(nodata_fraction.shape, np.nan)

    row_idx, col_idx = np.divmod(np.arange(nrows * ncols, dtype=np.int64), ncols)
    keep = np.ones(row_idx.shape, dtype=bool)
    if max_nodata is not None:
        keep &= nodata_fraction <= max_nodata
    if max_cloud is not None:
        keep &= cloud_fraction <= max_cloud
    row_idx, col_idx = row_idx[keep], col_idx[keep]
    row_off, col_off = row_idx * chip_size, col_idx * chip_size
    collection = d.get("collection") or ""
    ids = [chip_id(collection, item_id, chip_size, r, c) for r, c in zip(row_idx.tolist(), col_idx.tolist())]
    return chip_table(ref, d, chip_size, row_idx, col_idx, row_off, col_off,
                      np.minimum(chip_size, ref.height - row_off), np.minimum(chip_size, ref.width - col_off),
                      ids, nodata_fraction=nodata_fraction[keep], cloud_fraction=cloud_fraction[keep])


def index_plans(plans: list[IndexPlan], st: IndexSettings):
    """The chip index of planned items (:func:`plan_index`): reads each item's statistics band.

    Returns and raises as :func:`~geolesson.chips.chip_index` (``OSError`` for a band that cannot be read).
    """
    return _to_geodataframe([_item_chips(plan, st) for plan in plans])


def chip_index(items: ItemsLike, chip_size: int = 256, *, partial: str = "drop",
               cloud_classes: Iterable[int] = DEFAULT_CLOUD_CLASSES, max_nodata: float | None = None,
               max_cloud: float | None = None, statistics: str = "auto", scl_asset: str = "scl",
               nodata_asset: str | None = None, reference_asset: str | None = None):
    """The chip index of STAC items: one row per ``chip_size`` x ``chip_size`` chip, with statistics.

    Chips tile each item's native grid of ``reference_asset`` (from its ``proj:transform``
    and ``proj:shape``: 10 m for Sentinel-2 ``red`` and Sentinel-1 RTC ``vv``) from the
    top-left corner, without overlap. The statistics come from one band of the item, read
    once, whole, at its native resolution, and counted per chip with vectorised masks and
    sums, one row of chips at a time (no resampling, no per-chip loop):

    - ``statistics="scl"`` (Sentinel-2 L2A): the Scene Classification layer
      (``scl_asset``, 20 m): nodata is class 0, cloud the ``cloud_classes``;
    - ``statistics="nodata"`` (any collection without an SCL, e.g. Sentinel-1 RTC): the
      pixels of ``nodata_asset`` (default: the reference asset, e.g. ``vv``) equal to its
      ``raster:bands`` ``nodata`` (-32768 for Planetary Computer's RTC), or NaN in a float
      band. Radar has no cloud statistics: ``cloud_fraction`` is NaN (not measured);
    - ``statistics="auto"`` (default), per item: ``"scl"`` if the item has ``scl_asset``,
      else ``"nodata"``. So one call indexes Sentinel-2 and Sentinel-1 items alike.

    A chip counts the band pixels its footprint touches: ``chip_size * ref_res / band_res``
    per side (128 for 256 chips at 10 m over a 20 m SCL), fewer for partial edge chips.

    Args:
        items: a ``pystac.Item``, a STAC item dict, or a non-empty iterable of them (list,
            ``ItemCollection``). Each needs ``proj:shape``/``proj:transform`` for the
            reference and statistics assets and ``proj:epsg`` or ``proj:code`` (asset or item
            properties), in a projected CRS in metres.
        chip_size: chip side in reference pixels (positive int, at most the scene size);
            ``chip_size * ref_res / band_res`` must be whole (even, for 10 m over 20 m SCL).
        partial: what to do with the chips at the right and bottom edges when the scene
            is not a multiple of ``chip_size``: ``"drop"`` them (every chip is full size)
            or ``"keep"`` them with their real ``width``/``height`` (smaller).
        cloud_classes: SCL classes that count as cloud; default
            :data:`geolesson.indices.DEFAULT_CLOUD_CLASSES` (3 cloud shadows, 8 and 9 cloud
            medium/high probability, 10 thin cirrus). Ignored by ``"nodata"`` statistics.
        max_nodata, max_cloud: keep only chips with ``nodata_fraction <= max_nodata`` /
            ``cloud_fraction <= max_cloud`` (None: keep all). ``max_cloud`` needs SCL
            statistics.
        statistics: ``"auto"``, ``"scl"`` or ``"nodata"`` (:data:`~geolesson.chips.index.STATISTICS`), as above.
        scl_asset: asset key of the SCL band.
        nodata_asset: asset whose nodata is counted by ``"nodata"`` statistics (None: the
            reference asset).
        reference_asset: the band whose grid the chips follow; None: the first of
            :data:`~geolesson.grid.DEFAULT_REFERENCE_ASSETS` (``red``, ``vv``) that
            the item has.

    Returns:
        ``geopandas.GeoDataFrame`` in EPSG:4326, columns :data:`~geolesson.chips.index.INDEX_COLUMNS` + geometry:

        - ``chip_id`` (str, :func:`chip_id`: ``"<collection>_<item id>_<chip_size>px_<row>_<col>"``),
          ``item_id``, ``collection`` (str);
        - ``datetime``: ``datetime64[us, UTC]``, the item's ``datetime`` (else its
          ``start_datetime``);
        - ``crs`` (int64): the item's EPSG code (e.g. 32635), i.e. the CRS of the windows.
          Select it as ``idx["crs"]``: the attribute ``idx.crs`` is the GeoDataFrame's
          geometry CRS (EPSG:4326);
        - ``chip_size`` (int64) and ``reference_asset`` (str): the grid the chip belongs
          to, so that indexes of several sizes or collections can be merged and read;
        - ``row``, ``col`` (int64): chip position in chip units (0-based);
        - ``row_off``, ``col_off``, ``height``, ``width`` (int64): the pixel window on the
          reference asset's grid (``row_off = row * chip_size``);
        - ``nodata_fraction`` (float64, 0-1): nodata pixels / pixels of the chip in the
          statistics band;
        - ``cloud_fraction`` (float64, 0-1): SCL pixels in ``cloud_classes`` / SCL pixels
          *with data* (class != 0), i.e. the cloudiness of what was observed. A chip
          with no data at all has ``cloud_fraction = 0.0`` (never NaN; it is told apart
          by ``nodata_fraction == 1``). NaN for ``"nodata"`` statistics (not measured);
        - ``geometry``: footprint polygon in EPSG:4326, the exact projected window corners
          plus 3 points per edge, reprojected (lon/lat order).

        Rows are in item order, then row-major chip order. An empty frame (same columns)
        if the filters keep nothing. Indexes of several calls (collections, CRSs, chip
        sizes) merge with ``pd.concat([a, b], ignore_index=True)``.

    Raises:
        ValueError: ``items`` is empty (usually a search that found nothing);
            ``chip_size`` not a positive int or larger than a scene, or not whole in
            statistics-band pixels; ``partial`` or ``statistics`` not one of their
            values; ``cloud_classes`` not SCL classes; ``max_nodata``/``max_cloud`` not in
            [0, 1], or ``max_cloud`` with ``"nodata"`` statistics; an item without the
            statistics or reference asset, without ``proj:shape``/``proj:transform``,
            without an EPSG code, in a CRS not in metres (geographic), or (``"nodata"``)
            without ``raster:bands`` nodata; the statistics band not aligned with or not
            covering the reference grid, or its file's size differs from ``proj:shape``.
        TypeError: ``items`` is not an item or an iterable of items (e.g. ``None``);
            ``cloud_classes`` not class numbers (e.g. None), an asset key not a str.
        OSError: the statistics file cannot be read (the message names its href).
    """
    st = IndexSettings.check(chip_size, partial, cloud_classes, max_nodata, max_cloud, statistics,
                             scl_asset, nodata_asset, reference_asset)
    found = item_list(items)
    if not found:
        raise ValueError("items is empty: there is nothing to index. The usual cause is a search "
                         "that matched no item (check its collections, bbox, datetime and query)")
    return index_plans([plan_index(item, st) for item in found], st)  # every item checked before any is read


def _starts(size: int, chip_size: int, stride: int) -> list[int]:
    """Window starts covering [0, size): every ``stride``, the last one moved back so that it
    ends at the edge (every chip full size, the edge covered, none outside the scene)."""
    last = size - chip_size
    starts = list(range(0, last + 1, stride))
    if starts[-1] != last:
        starts.append(last)
    return starts


def overlap_grid(item: ItemLike, chip_size: int = 256, overlap: int = 32, *,
                 reference_asset: str | None = None):
    """A chip index over one whole item with overlapping chips (stride < chip size).

    Chips of ``chip_size`` x ``chip_size`` reference pixels start every
    ``stride = chip_size - overlap`` pixels from the top-left corner; where the scene is not
    a whole number of strides, the last row and column of chips are moved back to end at the
    scene's edge (they overlap their neighbours more), so every pixel of the item is covered
    by at least one chip, every chip is full size and none reaches outside the scene. Rows
    come in row-major order (``row_off``, then ``col_off``), the order :class:`~geolesson.stitching.Stitcher`
    needs. No file is opened (metadata only). The columns are those of
    :func:`~geolesson.chips.chip_index` that :class:`geolesson.batching.ChipDataset` reads,
    without statistics; ``chip_id`` carries the overlap (``..._256px_o32_<row>_<col>``) so
    that it never equals the id of a chip of a non-overlapping index.

    Args:
        item: one ``pystac.Item`` or STAC item dict (``proj:shape``/``proj:transform`` of the
            reference asset, ``proj:epsg``/``proj:code``).
        chip_size: chip side in pixels, >= 1 and at most the scene's height and width.
        overlap: pixels shared by neighbouring chips, 0 <= overlap < chip_size.
        reference_asset: the band whose grid the chips follow (None: ``red``, else ``vv``).

    Returns:
        ``geopandas.GeoDataFrame`` in EPSG:4326: the columns of :func:`~geolesson.chips.chip_index` without
        the statistics (``chip_id, item_id, collection, datetime, crs, chip_size,
        reference_asset, col, row, col_off, row_off, width, height``), then ``overlap``
        (int64, pixels), and ``geometry`` (footprints).

    Raises:
        ValueError: ``chip_size`` not a positive int or larger than the scene; ``overlap``
            not an int in [0, chip_size); the item's grid or CRS unusable (see
            :func:`~geolesson.chips.chip_index`).
    """
    import geopandas as gpd

    chip_size = check_int("chip_size", chip_size, 1)
    overlap = check_int("overlap", overlap, 0)
    if overlap >= chip_size:
        raise ValueError(f"overlap must be smaller than chip_size ({chip_size}): 0 <= overlap < "
                         f"chip_size, not overlap={overlap} (the stride chip_size - overlap must be "
                         "at least 1 pixel)")
    d = item_dict(item)
    ref = ItemGrid.from_item(d, reference_asset)
    if chip_size > min(ref.height, ref.width):
        raise ValueError(f"chip_size={chip_size} is larger than item {ref.item_id!r} "
                         f"({ref.height} x {ref.width} pixels of {ref.asset!r}); at most "
                         f"{min(ref.height, ref.width)}")
    stride = chip_size - overlap
    rows, cols = _starts(ref.height, chip_size, stride), _starts(ref.width, chip_size, stride)
    row_off = np.repeat(np.asarray(rows, dtype=np.int64), len(cols))
    col_off = np.tile(np.asarray(cols, dtype=np.int64), len(rows))
    r = np.repeat(np.arange(len(rows), dtype=np.int64), len(cols))
    c = np.tile(np.arange(len(cols), dtype=np.int64), len(rows))
    size = np.full(r.size, chip_size, dtype=np.int64)
    base = chip_id(d.get("collection") or "", ref.item_id, chip_size, 0, 0)[:-len("_0_0")]
    ids = [f"{base}_o{overlap}_{i}_{j}" for i, j in zip(r.tolist(), c.tolist())]
    frame, footprints = chip_table(ref, d, chip_size, r, c, row_off, col_off, size, size, ids,
                                   overlap=np.full(r.size, overlap, dtype=np.int64))
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(footprints, crs="EPSG:4326"), crs="EPSG:4326")


def _to_geodataframe(results: list) -> Any:
    """Concatenate ``(frame, footprints)`` pairs into one chip index (EPSG:4326)."""
    import geopandas as gpd
    import pandas as pd

    frames = [frame for frame, _ in results]
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if frame.empty:
        frame = _empty_frame()
    geometry = np.concatenate([geometry for _, geometry in results])
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geometry, crs="EPSG:4326"), crs="EPSG:4326")


def _empty_frame():
    import pandas as pd

    cols = {c: pd.Series([], dtype="int64") for c in _INT_COLUMNS}
    cols.update({c: pd.Series([], dtype="str") for c in _STR_COLUMNS})
    cols["datetime"] = pd.Series(pd.DatetimeIndex([], tz="UTC").as_unit("us"))
    cols.update({c: pd.Series([], dtype="float64") for c in ("nodata_fraction", "cloud_fraction")})
    return pd.DataFrame({c: cols[c] for c in INDEX_COLUMNS})
