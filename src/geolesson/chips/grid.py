"""Items, assets and their pixel grids: metadata read from STAC, chip footprints.

Everything here reads only item metadata (``proj:*``, ``raster:bands``, ``datetime``);
no file is opened.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

#: The reference asset used when none is given is the first of these that an item has
#: (``red`` for Sentinel-2 L2A, ``vv`` for Sentinel-1 RTC). Chips follow its grid.
DEFAULT_REFERENCE_ASSETS: tuple[str, ...] = ("red", "vv")
#: Points per footprint edge (corners included once): the UTM window's edges are curved in
#: EPSG:4326, so each edge gets a few intermediate points.
_DENSIFY = 4


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
    problem = _crs_problem(epsg)
    if problem:
        raise ValueError(f"item {d.get('id')!r}: {problem}")
    return int(epsg)


@functools.lru_cache(maxsize=64)
def _crs_problem(epsg: Any) -> str:
    """Why ``epsg`` cannot hold chips ("" if it can); cached per code.

    rasterio's CRS (GDAL's, over the same PROJ database) answers for a good code, so a
    training process that only reads chips never imports pyproj: that import was 60-80 ms
    of a DataLoader's first batch (and of each worker's), and 10 MB. pyproj words a problem.
    """
    import rasterio
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        with rasterio.Env():  # GDAL's message for an unknown code goes to logging, not stderr
            crs = CRS.from_epsg(int(epsg))
    except (CRSError, ValueError, TypeError):
        return f"EPSG code {epsg!r} is not a known CRS"
    if crs.is_projected and crs.linear_units in ("metre", "meter"):
        return ""
    return _crs_units_problem(int(epsg))


def _crs_units_problem(epsg: int) -> str:
    from pyproj import CRS

    crs = CRS.from_epsg(epsg)
    units = {axis.unit_name for axis in crs.axis_info}
    if crs.is_geographic or not units <= {"metre", "meter"}:
        return (f"has CRS EPSG:{epsg} ({crs.name}) with units {sorted(units)}: chips need a "
                "projected CRS in metres (e.g. UTM), so that chip_size pixels have a fixed "
                "size on the ground")
    return ""


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



def _reference_asset(d: dict, reference_asset: str | None) -> str:
    """``reference_asset`` if given, else the first of :data:`DEFAULT_REFERENCE_ASSETS`
    the item has; ValueError naming the item's assets if it has none of them."""
    if reference_asset is not None:
        return reference_asset
    assets = d.get("assets") or {}
    for key in DEFAULT_REFERENCE_ASSETS:
        if key in assets:
            return key
    raise ValueError(f"item {d.get('id')!r} has none of the default reference assets "
                     f"{list(DEFAULT_REFERENCE_ASSETS)}; pass reference_asset= one of its assets "
                     f"{sorted(assets)}")


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
