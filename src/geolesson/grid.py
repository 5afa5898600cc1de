"""An item's pixel grid: the model that chips, batching, stitching and cog all speak.

A STAC item's raster assets lie on pixel grids that its projection extension describes
(``proj:shape``, ``proj:transform``, ``proj:epsg`` or ``proj:code``, on the asset or in the
item's properties). :class:`ItemGrid` is one such grid, read from the metadata alone (no
file is opened), as odc-geo's ``GeoBox`` is for odc-stac: its shape ``(height, width)`` in
pixels, its north-up affine ``transform`` (metres of its CRS), its EPSG code. Chips are
*windows* of an item's grid: ``(row_off, col_off, height, width)`` in its pixels, which
may overlap the grid's edges; the grid gives each window's transform, footprint and
xarray coordinates, and :class:`ItemGrid` of a coarser asset (a 20 m band beside a 10 m
one) says how it lines up.

The grid chips follow is the item's *reference asset*: ``red`` (10 m) for Sentinel-2 L2A,
``vv`` for Sentinel-1 RTC (:data:`DEFAULT_REFERENCE_ASSETS`), or the one a caller names.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from affine import Affine

from geolesson.items import ItemLike, item_asset, item_dict, item_id

#: The reference asset used when none is given is the first of these that an item has
#: (``red`` for Sentinel-2 L2A, ``vv`` for Sentinel-1 RTC). Chips follow its grid.
DEFAULT_REFERENCE_ASSETS: tuple[str, ...] = ("red", "vv")
#: Points per footprint edge, corners included once. A UTM window's edges are curved in
#: EPSG:4326, so each edge gets a few intermediate points.
FOOTPRINT_DENSIFY = 4

#: A window of a grid, ``(row_off, col_off, height, width)`` in its pixels.
GridWindow = tuple[int, int, int, int]


def reference_asset(item: dict, asset: str | None = None) -> str:
    """``asset`` if given, else the first of :data:`DEFAULT_REFERENCE_ASSETS` the item has.

    Args:
        item: a STAC item dict (``geolesson.items.item_dict``).
        asset: the asset key a caller chose, or None.

    Raises:
        ValueError: ``asset`` is None and the item has none of the default reference assets
            (the message lists its assets).
    """
    if asset is not None:
        return asset
    assets = item.get("assets") or {}
    for key in DEFAULT_REFERENCE_ASSETS:
        if key in assets:
            return key
    raise ValueError(f"item {item.get('id')!r} has none of the default reference assets "
                     f"{list(DEFAULT_REFERENCE_ASSETS)}; pass reference_asset= one of its assets "
                     f"{sorted(assets)}")


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


@functools.lru_cache(maxsize=16)
def _crs_attrs(epsg: int) -> dict:
    """The CF grid-mapping attributes rioxarray writes for ``EPSG:<epsg>`` (``spatial_ref``
    coordinate), computed once: ``rio.write_crs`` per chip would cost about 1 ms."""
    import rioxarray  # noqa: F401  (registers .rio)
    import xarray as xr

    return dict(xr.DataArray(0).rio.write_crs(f"EPSG:{epsg}").spatial_ref.attrs)


@dataclass(frozen=True)
class ItemGrid:
    """The pixel grid of one asset of a STAC item: shape, north-up transform and CRS.

    Made from the item's metadata (:meth:`from_item`); no file is opened. Windows of the
    grid (chips) are ``(row_off, col_off, height, width)`` tuples in its pixels, row 0 at
    the top (north).

    Attributes:
        item_id: the item's id.
        asset: the key of the asset whose grid this is (e.g. ``"red"``).
        href: that asset's href (None if it has none).
        height, width: the grid's size in pixels (``proj:shape`` is ``[height, width]``).
        transform: ``affine.Affine`` from pixel (col, row) to the CRS's x, y in metres:
            north-up (no rotation), square pixels.
        epsg: EPSG code of the CRS, a projected CRS in metres (e.g. 32635, UTM zone 35N).
    """

    item_id: str
    asset: str
    href: str | None
    height: int
    width: int
    transform: Affine
    epsg: int

    @classmethod
    def from_item(cls, item: ItemLike, asset: str | None = None, *,
                  role: str = "reference_asset") -> ItemGrid:
        """The grid of ``asset`` of ``item``, from ``proj:shape``, ``proj:transform`` and
        ``proj:epsg``/``proj:code`` (asset first, then the item's properties).

        Args:
            item: a ``pystac.Item`` or STAC item dict.
            asset: the asset key; None: the item's reference asset (the first of
                :data:`DEFAULT_REFERENCE_ASSETS` it has).
            role: the argument that chose ``asset`` (e.g. ``"reference_asset"``,
                ``"scl_asset"``), named in the errors.

        Raises:
            ValueError: the item has no such asset (or, with ``asset=None``, none of the
                default reference assets); ``proj:shape``/``proj:transform`` are missing or
                malformed; the grid is rotated or flipped or its pixels are not square; no
                EPSG code, an unknown one, or a CRS not in metres (geographic).
            TypeError: ``item`` is not a ``pystac.Item`` or a mapping.
        """
        d = item_dict(item)
        key = reference_asset(d, asset)
        a = item_asset(d, key, role)
        shape, transform = _proj(d, a, "shape"), _proj(d, a, "transform")
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
        if not math.isclose(t.a, -t.e, rel_tol=1e-9):
            raise ValueError(f"item {d.get('id')!r}, asset {key!r}: pixels are not square "
                             f"({t.a} x {-t.e} m); not supported")
        return cls(item_id(d), key, a.get("href"), int(shape[0]), int(shape[1]), t, _epsg(d, a))

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` in pixels."""
        return self.height, self.width

    @property
    def resolution(self) -> float:
        """The side of a pixel in metres (the ground sample distance of the grid)."""
        return self.transform.a

    @property
    def crs(self) -> str:
        """The CRS as ``"EPSG:<code>"``."""
        return f"EPSG:{self.epsg}"

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` of the whole grid in metres of its CRS."""
        t = self.transform
        return t.c, t.f + self.height * t.e, t.c + self.width * t.a, t.f

    def scale_to(self, ref: ItemGrid) -> float:
        """How many of ``ref``'s pixels one pixel of this grid spans per side (2.0 for a 20 m
        band over a 10 m reference), after checking that both grids start at one corner.

        Raises:
            ValueError: the grids' origins differ by more than a millionth of a pixel (names
                both assets and their origins).
        """
        tol = 1e-6 * ref.resolution
        if abs(self.transform.c - ref.transform.c) > tol or abs(self.transform.f - ref.transform.f) > tol:
            raise ValueError(f"item {ref.item_id!r}: asset {self.asset!r} starts at ({self.transform.c}, "
                             f"{self.transform.f}), the reference asset {ref.asset!r} at ({ref.transform.c}, "
                             f"{ref.transform.f}); assets must share the grid origin")
        return self.resolution / ref.resolution

    def window_transform(self, row_off: int, col_off: int) -> Affine:
        """The ``affine.Affine`` of the window whose top-left pixel is (row_off, col_off)."""
        t = self.transform
        return Affine(t.a, 0, t.c + col_off * t.a, 0, t.e, t.f + row_off * t.e)

    def check_window(self, window: GridWindow) -> None:
        """Check that ``window`` = (row_off, col_off, height, width) can be read from this grid.

        A window over an edge is fine (its outside reads as NaN); an empty one, or one wholly
        outside the grid, is not.

        Raises:
            ValueError: ``height`` or ``width`` is not positive, or the window lies wholly
                outside the grid (the message gives the grid's size).
        """
        row_off, col_off, height, width = window
        for name, value in (("height", height), ("width", width)):
            if value <= 0:
                raise ValueError(f"{name}={value}: a chip window needs a positive height and width "
                                 f"(row_off={row_off}, col_off={col_off}, height={height}, width={width})")
        if row_off >= self.height or row_off + height <= 0 or col_off >= self.width or col_off + width <= 0:
            raise ValueError(f"row_off={row_off}, col_off={col_off}: the window rows [{row_off}, "
                             f"{row_off + height}) x cols [{col_off}, {col_off + width}) lies wholly "
                             f"outside item {self.item_id!r}, whose {self.asset!r} grid is {self.height} x "
                             f"{self.width} pixels; a chip must overlap rows [0, {self.height}) and cols "
                             f"[0, {self.width}) (one that overlaps an edge is padded with NaN)")

    def footprints(self, row_off: Any, col_off: Any, height: Any, width: Any) -> np.ndarray:
        """EPSG:4326 polygons of windows, vectorised: a ``shapely`` polygon per window.

        Each is the window's exact corners in the grid's CRS with
        ``FOOTPRINT_DENSIFY - 1`` more points per edge (a UTM window's edges are curved in
        longitude/latitude), reprojected with pyproj (x = longitude, y = latitude).

        Args:
            row_off, col_off, height, width: equal-length 1-D arrays (pixels; may be float).

        Returns:
            object array of ``shapely.Polygon``, one per window, in the order given.
        """
        import shapely
        from pyproj import Transformer

        row_off, col_off = np.asarray(row_off), np.asarray(col_off)
        height, width = np.asarray(height), np.asarray(width)
        n = len(col_off)
        t = np.linspace(0.0, 1.0, FOOTPRINT_DENSIFY, endpoint=False)
        # walk the window boundary in window-pixel units: top, right, bottom, left (counter-clockwise
        # in map coordinates, since rows go down), then close the ring
        u = np.concatenate([t, np.ones_like(t), 1 - t, np.zeros_like(t), [0.0]])
        v = np.concatenate([np.zeros_like(t), t, np.ones_like(t), 1 - t, [0.0]])
        cols = col_off[:, None] + u[None, :] * width[:, None]
        rows = row_off[:, None] + v[None, :] * height[:, None]
        x = self.transform.c + cols * self.transform.a
        y = self.transform.f + rows * self.transform.e
        lon, lat = Transformer.from_crs(self.epsg, 4326, always_xy=True).transform(x.ravel(), y.ravel())
        coords = np.stack([np.asarray(lon).reshape(n, u.size), np.asarray(lat).reshape(n, u.size)], axis=-1)
        return shapely.polygons(coords)

    def spatial_ref(self, transform: Affine | None = None) -> tuple:
        """The ``spatial_ref`` coordinate of an xarray object on this grid, as rioxarray writes
        it and reads back with ``.rio.crs`` and ``.rio.transform()``: ``((), 0, attrs)`` with
        the CF grid-mapping attributes of the CRS, and ``GeoTransform`` (GDAL order
        ``c a b f d e``) when ``transform`` is given."""
        attrs = dict(_crs_attrs(self.epsg))
        if transform is not None:
            t = transform
            attrs["GeoTransform"] = " ".join(repr(float(v)) for v in (t.c, t.a, t.b, t.f, t.d, t.e))
        return ((), np.int64(0), attrs)

    def coords(self, window: GridWindow | None = None) -> dict:
        """xarray coordinates of ``window`` (None: the whole grid): ``y`` and ``x``, the
        pixel centres in metres of the CRS (float64, ``height`` and ``width`` values), and
        ``spatial_ref`` (:meth:`spatial_ref` with the window's transform)."""
        row_off, col_off, height, width = window or (0, 0, self.height, self.width)
        t = self.transform
        x = t.c + (col_off + np.arange(width) + 0.5) * t.a
        y = t.f + (row_off + np.arange(height) + 0.5) * t.e
        return {"y": y, "x": x, "spatial_ref": self.spatial_ref(self.window_transform(row_off, col_off))}
