"""STAC items as the helpers take them: a ``pystac.Item`` or a STAC item dict, one or many.

Every helper that takes items accepts either form (what a search returns, or the JSON of
an item), alone or in a list, an ``ItemCollection`` or a search's result, and works on the
item's dict: :func:`item_dict` makes it, with absolute asset hrefs. Metadata only: nothing
here opens a file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, Union

if TYPE_CHECKING:
    import pandas as pd


class PystacItem(Protocol):
    """A ``pystac.Item``, as far as the helpers use it (pystac is not imported for it)."""

    id: str
    assets: Mapping[str, Any]

    def to_dict(self, include_self_link: bool = True, transform_hrefs: bool = True) -> dict:
        """The item as a STAC dict."""


class ItemSearchLike(Protocol):
    """A ``pystac_client.ItemSearch`` (or ``pystac.ItemCollection``), as far as the helpers use it."""

    def items(self) -> Iterable[PystacItem]:
        """The items found."""


#: One STAC item, a ``pystac.Item`` or its dict (a GeoJSON Feature with ``id``,
#: ``properties`` and ``assets``, as a STAC API returns it).
ItemLike = Union[PystacItem, Mapping[str, Any]]
#: Items, as one :data:`ItemLike`, an iterable of them (a list, a ``pystac.ItemCollection``)
#: or a search whose ``items()`` gives them (``pystac_client.ItemSearch``).
ItemsLike = Union[ItemLike, Iterable[ItemLike], ItemSearchLike]


def item_dict(item: ItemLike) -> dict:
    """The item as a STAC dict, with absolute asset hrefs where pystac knows them.

    A dict is returned as a shallow copy; a ``pystac.Item`` is converted with ``to_dict``
    (no self link, hrefs as pystac resolves them against the item's own location).

    Raises:
        TypeError: ``item`` is neither a ``pystac.Item`` nor a mapping.
    """
    if isinstance(item, Mapping):
        return dict(item)
    if hasattr(item, "to_dict") and hasattr(item, "assets"):  # pystac.Item
        d = item.to_dict(include_self_link=False, transform_hrefs=False)
        for key, asset in item.assets.items():
            href = asset.get_absolute_href() or asset.href
            d["assets"][key] = {**d["assets"].get(key, {}), "href": href}
        return d
    raise TypeError(f"items must be pystac.Item objects or STAC item dicts, not {type(item).__name__}")


def item_id(item: ItemLike) -> str:
    """The item's ``id``.

    Raises:
        ValueError: the item has no ``id`` (or an empty or non-string one).
    """
    value = item.get("id") if isinstance(item, Mapping) else getattr(item, "id", None)
    if not isinstance(value, str) or not value:
        raise ValueError(f"an item has no 'id' (got {value!r})")
    return value


def item_asset(item: dict, key: str, role: str) -> dict:
    """The asset ``key`` of an item dict.

    Args:
        item: a STAC item dict (:func:`item_dict`).
        key: the asset key, e.g. ``"red"``.
        role: the name of the argument that chose ``key`` (e.g. ``"reference_asset"``), for
            the error message.

    Raises:
        ValueError: the item has no asset ``key``; the message lists the assets it has.
    """
    assets = item.get("assets") or {}
    if key not in assets:
        raise ValueError(f"item {item.get('id')!r} has no asset {key!r} ({role}={key!r}); "
                         f"its assets are {sorted(assets)}")
    return assets[key]


def item_datetime(item: dict) -> pd.Timestamp:
    """The item's ``datetime`` (else its ``start_datetime``) as a UTC ``pandas.Timestamp``
    (a time without a zone is taken as UTC, as STAC requires).

    Raises:
        ValueError: the item has neither field.
    """
    import pandas as pd

    props = item.get("properties") or {}
    value = props.get("datetime") or props.get("start_datetime")
    if value is None:
        raise ValueError(f"item {item.get('id')!r} has neither datetime nor start_datetime")
    ts = pd.Timestamp(value)
    return ts.tz_convert("UTC") if ts.tzinfo else ts.tz_localize("UTC")


def item_list(items: ItemsLike) -> list:
    """``items`` as a list of items (not converted: each stays a ``pystac.Item`` or a dict).

    Raises:
        TypeError: ``items`` is not an item or an iterable of items (e.g. ``None``, which a
            search that found nothing or ``get_item`` of a missing id gives).
    """
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


def items_by_id(items: ItemsLike | Mapping[str, ItemLike]) -> dict[str, dict]:
    """``{item id: item dict}`` of ``items`` (anything :func:`item_list` takes, or a mapping
    ``{item_id: item}``); a later item with the same id replaces an earlier one.

    Raises:
        TypeError: as :func:`item_list`.
    """
    if isinstance(items, Mapping) and "assets" not in items:
        values = list(items.values())
    else:
        values = item_list(items)
    out = {}
    for item in values:
        d = item_dict(item)
        out[d["id"]] = d
    return out


def find_item(items: ItemsLike | Mapping[str, ItemLike], item_id: str) -> dict:
    """The dict of the item ``item_id`` among ``items`` (as :func:`items_by_id` takes them).

    Raises:
        KeyError: no item has that id.
        TypeError: as :func:`item_list`.
    """
    if isinstance(items, Mapping) and "assets" not in items:  # {item_id: item}
        if item_id not in items:
            raise KeyError(f"item {item_id!r} is not in items (a mapping of {len(items)} item ids)")
        return item_dict(items[item_id])
    for item in item_list(items):
        d = item_dict(item)
        if d.get("id") == item_id:
            return d
    raise KeyError(f"item {item_id!r} is not among the items given")
