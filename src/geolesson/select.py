"""Choose items and dates from search results by their metadata, never by typed ids or dates.

The chapters call these helpers on the items a STAC search returned, so the same cells
pick the right scenes on the offline mirror and on the live services, whose acquisition
dates differ. Every helper takes ``pystac.Item`` objects or plain item dicts (GeoJSON
features) and reads only STAC metadata: ``datetime``, ``eo:cloud_cover``,
``s2:nodata_pixel_percentage``, the MGRS tile (``grid:code`` on Earth Search,
``s2:mgrs_tile`` on Planetary Computer) and an asset's ``proj:shape``.

Dates are UTC calendar dates of the acquisitions (``datetime.date``). A date's cloud cover
is the *largest* ``eo:cloud_cover`` of its items (the worst tile), so a date called clear
is clear on every tile that imaged it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import pandas as pd

from geolesson.items import ItemLike

__all__ = [
    "tile_of", "acquired", "pixel_count", "date_table", "largest_clearest",
    "clearest_date", "first_date", "item_on", "interval",
]


def _fields(item: ItemLike) -> tuple[str, dict, dict]:
    """(id, properties, assets) of a pystac.Item or an item dict."""
    if isinstance(item, dict):
        return item.get("id", "?"), item.get("properties", {}), item.get("assets", {})
    assets = {key: {**a.extra_fields} for key, a in item.assets.items()}
    return item.id, item.properties, assets


def tile_of(item: ItemLike) -> str:
    """The item's MGRS tile, e.g. ``"35SNA"``.

    Read from ``grid:code`` (``"MGRS-35SNA"``, Earth Search v1), ``s2:mgrs_tile``
    (Planetary Computer) or the ``mgrs:*`` properties, in that order.

    Raises:
        ValueError: the item carries none of these properties.
    """
    iid, props, _ = _fields(item)
    if str(props.get("grid:code", "")).startswith("MGRS-"):
        return props["grid:code"].removeprefix("MGRS-")
    if "s2:mgrs_tile" in props:
        return str(props["s2:mgrs_tile"])
    if {"mgrs:utm_zone", "mgrs:latitude_band", "mgrs:grid_square"} <= props.keys():
        return f"{props['mgrs:utm_zone']}{props['mgrs:latitude_band']}{props['mgrs:grid_square']}"
    raise ValueError(f"item {iid!r} has no MGRS tile (grid:code, s2:mgrs_tile or mgrs:* properties)")


def acquired(item: ItemLike) -> dt.datetime:
    """The item's acquisition time (``properties.datetime``) as an aware UTC datetime.

    Raises:
        ValueError: the item has no ``datetime``.
    """
    iid, props, _ = _fields(item)
    value = props.get("datetime")
    if value is None:
        raise ValueError(f"item {iid!r} has no properties.datetime")
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.to_pydatetime()


def pixel_count(item: ItemLike, asset: str = "red") -> int:
    """Pixels (rows × columns, from ``proj:shape``) of one asset of the item.

    Raises:
        KeyError: the item has no such asset, or the asset has no ``proj:shape``.
    """
    iid, props, assets = _fields(item)
    if asset not in assets:
        raise KeyError(f"item {iid!r} has no asset {asset!r}; it has {', '.join(assets) or 'none'}")
    shape = assets[asset].get("proj:shape") or props.get("proj:shape")
    if not shape:
        raise KeyError(f"asset {asset!r} of item {iid!r} has no proj:shape")
    return int(shape[0]) * int(shape[1])


def date_table(items: Iterable[ItemLike]) -> pd.DataFrame:
    """One row per acquisition date (UTC), sorted by date.

    Columns: ``items`` (count), ``tiles`` (sorted MGRS tiles, comma-separated),
    ``cloud_cover`` (largest ``eo:cloud_cover`` of the date's items, percent) and
    ``nodata`` (largest ``s2:nodata_pixel_percentage``, percent; 0 where not published).
    The index is ``date`` (``datetime.date``).

    Raises:
        ValueError: ``items`` is empty, or an item has no ``eo:cloud_cover``.
    """
    rows = []
    for item in items:
        iid, props, _ = _fields(item)
        if "eo:cloud_cover" not in props:
            raise ValueError(f"item {iid!r} has no eo:cloud_cover")
        rows.append({"date": acquired(item).date(), "tile": tile_of(item),
                     "cloud_cover": float(props["eo:cloud_cover"]),
                     "nodata": float(props.get("s2:nodata_pixel_percentage", 0.0))})
    if not rows:
        raise ValueError("items is empty: nothing to choose from")
    df = pd.DataFrame(rows)
    return df.groupby("date").agg(
        items=("tile", "size"), tiles=("tile", lambda t: ", ".join(sorted(set(t)))),
        cloud_cover=("cloud_cover", "max"), nodata=("nodata", "max")).sort_index()


def largest_clearest(items: Iterable[ItemLike], asset: str = "red") -> ItemLike:
    """The item with the most pixels in ``asset`` (a full tile rather than a crop), clearest first.

    Ties on size are broken by the lowest ``eo:cloud_cover``, then the earliest datetime.
    On a live catalogue, where every item is a full tile, this is the clearest item.

    Raises:
        ValueError: ``items`` is empty.
        KeyError: an item lacks ``asset`` or its ``proj:shape``.
    """
    items = list(items)
    if not items:
        raise ValueError("items is empty: nothing to choose from")
    return min(items, key=lambda it: (-pixel_count(it, asset),
                                      float(_fields(it)[1].get("eo:cloud_cover", 100.0)), acquired(it)))


def _as_date(value: Any, name: str) -> dt.date:
    try:
        return pd.Timestamp(value).date()
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}={value!r} is not a date") from error


def clearest_date(items: Iterable[ItemLike], *, before: Any = None, after: Any = None,
                  max_cloud: float = 1.0) -> dt.date:
    """The acquisition date nearest an event whose every item is at most ``max_cloud`` % cloudy.

    Give exactly one of ``before`` (dates strictly earlier; the latest qualifying one is
    returned) or ``after`` (dates strictly later; the earliest is returned). "Nearest the
    event" matters for change detection: the closer the two dates, the less else changes.

    Raises:
        ValueError: neither or both of ``before``/``after`` given, ``max_cloud`` outside
            0-100, or no date qualifies (the message lists the candidates' cloud cover).
    """
    if (before is None) == (after is None):
        raise ValueError("give exactly one of before= or after=")
    if not 0 <= max_cloud <= 100:
        raise ValueError(f"max_cloud={max_cloud!r} is outside 0-100 (percent)")
    table = date_table(items)
    if before is not None:
        side = table[table.index < _as_date(before, "before")]
    else:
        side = table[table.index > _as_date(after, "after")]
    ok = side[side["cloud_cover"] <= max_cloud]
    if ok.empty:
        where = f"before {before}" if before is not None else f"after {after}"
        raise ValueError(f"no date {where} has every item at most {max_cloud} % cloudy; "
                         f"candidates: {side['cloud_cover'].round(1).to_dict()}")
    return ok.index[-1] if before is not None else ok.index[0]


def first_date(items: Iterable[ItemLike], *, after: Any, min_cloud: float = 0.0,
               max_cloud: float = 100.0, partial: bool | None = None) -> dt.date:
    """The first acquisition date strictly after ``after`` whose cloud cover is within a range.

    ``min_cloud`` <= cloud cover (largest of the date's items, percent) <= ``max_cloud``.
    With ``partial=True`` only dates where some item has no-data pixels
    (``s2:nodata_pixel_percentage`` > 0, the edge of the swath) qualify; ``False``, only
    dates without.

    Raises:
        ValueError: the range is empty or outside 0-100, or no date qualifies.
    """
    if not 0 <= min_cloud <= max_cloud <= 100:
        raise ValueError(f"min_cloud={min_cloud!r}, max_cloud={max_cloud!r}: need 0 <= min <= max <= 100")
    table = date_table(items)
    ok = table[(table.index > _as_date(after, "after")) & table["cloud_cover"].between(min_cloud, max_cloud)]
    if partial is not None:
        ok = ok[(ok["nodata"] > 0) == partial]
    if ok.empty:
        raise ValueError(f"no date after {after} is {min_cloud}-{max_cloud} % cloudy"
                         + ("" if partial is None else f" with partial={partial}"))
    return ok.index[0]


def item_on(items: Iterable[ItemLike], date: Any, tile: str) -> ItemLike:
    """The item of ``tile`` (e.g. ``"35SNA"``) acquired on ``date`` (UTC).

    If several match (a live catalogue may hold reprocessed copies), the clearest, then
    the last listed, is returned.

    Raises:
        ValueError: no item matches; the message lists the tiles found on that date.
    """
    day = _as_date(date, "date")
    items = list(items)
    same_day = [it for it in items if acquired(it).date() == day]
    matches = [it for it in same_day if tile_of(it) == tile]
    if not matches:
        raise ValueError(f"no item of tile={tile!r} on date={day}; tiles that day: "
                         f"{sorted({tile_of(it) for it in same_day}) or 'none'}")
    return min(reversed(matches), key=lambda it: float(_fields(it)[1].get("eo:cloud_cover", 100.0)))


def interval(text: str) -> tuple[dt.date, dt.date]:
    """The first and last day of an RFC 3339 date interval ``"start/end"``, e.g. an event's dates.

    Raises:
        ValueError: ``text`` is not two dates joined by ``/`` with start <= end.
    """
    parts = str(text).split("/")
    if len(parts) != 2:
        raise ValueError(f"interval={text!r} is not 'start/end' (two dates joined by '/')")
    start, end = (_as_date(p, "interval") for p in parts)
    if end < start:
        raise ValueError(f"interval={text!r} ends before it starts")
    return start, end
