"""The chip index: one row per chip that an item could yield, with its statistics."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from geolesson.chips import statistics as _stats
from geolesson.chips.grid import (
    _as_item_list,
    _asset,
    _datetime,
    _epsg,
    _footprints,
    _Grid,
    _item_dict,
    _item_id,
    _reference_asset,
)
from geolesson.indices import DEFAULT_CLOUD_CLASSES, SCL_CLASSES, SCL_NODATA

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
class _Settings:
    """The arguments of :func:`chip_index` that decide its output, checked."""

    chip_size: int
    partial: str
    cloud_classes: tuple[int, ...]
    max_nodata: float | None
    max_cloud: float | None
    statistics: str
    scl_asset: str
    nodata_asset: str | None
    reference_asset: str | None


def _settings(chip_size: Any, partial: Any, cloud_classes: Any, max_nodata: Any, max_cloud: Any,
              statistics: Any, scl_asset: str, nodata_asset: str | None,
              reference_asset: str | None) -> _Settings:
    """Check :func:`chip_index`'s arguments (``ValueError`` naming the one that is wrong)."""
    if isinstance(chip_size, bool) or not isinstance(chip_size, (int, np.integer)) or chip_size <= 0:
        raise ValueError(f"chip_size must be a positive integer number of pixels, not {chip_size!r}")
    if partial not in _PARTIAL:
        raise ValueError(f"partial must be one of {_PARTIAL}, not {partial!r}")
    if statistics not in STATISTICS:
        raise ValueError(f"statistics must be one of {STATISTICS}, not {statistics!r}")
    classes = [cloud_classes] if isinstance(cloud_classes, (int, np.integer)) else list(cloud_classes)
    unknown = [c for c in classes if c not in SCL_CLASSES]
    if unknown:
        raise ValueError(f"cloud_classes: {unknown} are not SCL classes (0..{max(SCL_CLASSES)})")
    if SCL_NODATA in classes:
        raise ValueError(f"cloud_classes must not contain the no-data class {SCL_NODATA}")
    _stats._check_fraction("max_nodata", max_nodata)
    _stats._check_fraction("max_cloud", max_cloud)
    return _Settings(int(chip_size), partial, tuple(sorted({int(c) for c in classes})),
                     None if max_nodata is None else float(max_nodata),
                     None if max_cloud is None else float(max_cloud),
                     statistics, scl_asset, nodata_asset, reference_asset)


@dataclass(frozen=True)
class _Plan:
    """What indexing one item needs, read from its metadata alone (no pixels)."""

    item: dict
    item_id: str
    epsg: int
    ref: _Grid
    reference_asset: str
    statistics: str  # "scl" or "nodata", resolved from "auto"
    band: _Grid  # the statistics band
    key: str  # its asset key
    nodata: float
    classes: tuple[int, ...]
    s: int  # statistics-band pixels per chip side
    band_h: int  # statistics-band rows and columns the reference grid touches
    band_w: int


def _plan(item: Any, st: _Settings) -> _Plan:
    """Check that ``item`` can be indexed with these settings, from its metadata only.

    Raises:
        ValueError: as :func:`chip_index` documents for a single item.
    """
    chip_size, statistics, scl_asset = st.chip_size, st.statistics, st.scl_asset
    d = _item_dict(item)
    item_id = _item_id(d)
    reference_asset = _reference_asset(d, st.reference_asset)
    ref = _Grid(d, reference_asset, "reference_asset")
    epsg = _epsg(d, ref.asset)
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
        _asset(d, key, role)
        nodata, classes = _nodata_value(d["assets"][key], item_id, key), ()
    band = _Grid(d, key, role)
    band.check_origin(ref, item_id)
    if chip_size > ref.height or chip_size > ref.width:
        raise ValueError(f"chip_size={chip_size} is larger than the scene: item {item_id!r} asset "
                         f"{reference_asset!r} is {ref.height} x {ref.width} pixels; use chip_size <= "
                         f"{min(ref.height, ref.width)}")
    ratio = ref.res / band.res  # band pixels per reference pixel (0.5 for 10 m / 20 m SCL)
    s = chip_size * ratio
    if not math.isclose(s, round(s), abs_tol=1e-9) or round(s) < 1:
        raise ValueError(f"chip_size={chip_size} at {ref.res:g} m ({reference_asset!r}) is {s:g} "
                         f"{key!r} pixels at {band.res:g} m: it must be a whole number; choose "
                         f"chip_size a multiple of {_stats._step(ratio)}")
    # band pixels touched by the reference grid
    band_h = math.ceil(ref.height * ratio - 1e-9)
    band_w = math.ceil(ref.width * ratio - 1e-9)
    if band.height < band_h or band.width < band_w:
        raise ValueError(f"item {item_id!r}: asset {key!r} ({band.height} x {band.width} at "
                         f"{band.res:g} m) does not cover the {reference_asset!r} grid "
                         f"({ref.height} x {ref.width} at {ref.res:g} m)")
    return _Plan(d, item_id, epsg, ref, reference_asset, statistics, band, key, nodata, classes,
                 round(s), band_h, band_w)


def _item_chips(plan: _Plan, st: _Settings):
    """One item's chips: ``(frame, footprints)``; reads and counts its statistics band."""
    import pandas as pd

    chip_size, partial, max_nodata, max_cloud = st.chip_size, st.partial, st.max_nodata, st.max_cloud
    d, item_id, ref, band, s = plan.item, plan.item_id, plan.ref, plan.band, plan.s
    epsg, key, reference_asset, statistics = plan.epsg, plan.key, plan.reference_asset, plan.statistics
    band_h, band_w = plan.band_h, plan.band_w
    if partial == "drop":
        nrows, ncols = ref.height // chip_size, ref.width // chip_size
    else:
        nrows, ncols = -(-ref.height // chip_size), -(-ref.width // chip_size)

    # the band rows and columns the chips cover, in strips of whole chip rows
    h, w = min(band_h, nrows * s), min(band_w, ncols * s)
    strips = _stats._read_strips(band.href, (band.height, band.width),
                                 s * max(1, round(_stats._STRIP_ROWS / s)), h, w,
                                 f"item {item_id!r}, asset {key!r},")
    total, n_nodata, cloud = _stats._chip_counts(strips, s, h, w, nrows, ncols, plan.classes,
                                                 plan.nodata)
    valid = total - n_nodata
    nodata_fraction = (n_nodata / total).ravel()
    if statistics == "scl":
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
    height = np.minimum(chip_size, ref.height - row_off)
    width = np.minimum(chip_size, ref.width - col_off)
    geometry = _footprints(ref.transform, epsg, col_off, row_off, width, height)
    n = int(keep.sum())
    collection = d.get("collection") or ""
    frame = pd.DataFrame({
        "chip_id": [chip_id(collection, item_id, chip_size, r, c)
                    for r, c in zip(row_idx.tolist(), col_idx.tolist())],
        "item_id": [item_id] * n,
        "collection": [collection] * n,
        "datetime": pd.DatetimeIndex([_datetime(d)] * n).as_unit("us") if n else
        pd.DatetimeIndex([], tz="UTC").as_unit("us"),
        "crs": np.full(n, epsg, dtype=np.int64),
        "chip_size": np.full(n, chip_size, dtype=np.int64),
        "reference_asset": [reference_asset] * n,
        "col": col_idx, "row": row_idx, "col_off": col_off, "row_off": row_off,
        "width": width.astype(np.int64), "height": height.astype(np.int64),
        "nodata_fraction": nodata_fraction[keep], "cloud_fraction": cloud_fraction[keep],
    })
    return frame, geometry


def chip_index(items: Any, chip_size: int = 256, *, partial: str = "drop",
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
            :data:`~geolesson.chips.grid.DEFAULT_REFERENCE_ASSETS` (``red``, ``vv``) that
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
        TypeError: ``items`` is not an item or an iterable of items (e.g. ``None``).
        OSError: the statistics file cannot be read (the message names its href).
    """
    st = _settings(chip_size, partial, cloud_classes, max_nodata, max_cloud, statistics,
                   scl_asset, nodata_asset, reference_asset)
    item_list = _as_item_list(items)
    if not item_list:
        raise ValueError("items is empty: there is nothing to index. The usual cause is a search "
                         "that matched no item (check its collections, bbox, datetime and query)")
    plans = [_plan(item, st) for item in item_list]  # every item checked before any is read
    return _to_geodataframe([_item_chips(plan, st) for plan in plans])


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
