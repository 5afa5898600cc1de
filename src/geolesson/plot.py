"""Quick looks for the book: contrast stretches, RGB composites, footprints and COG block grids.

Everything here draws on a matplotlib ``Axes`` the caller owns and returns it, so a chapter
can combine panels freely. Nothing here fetches data: pass arrays, GeoDataFrames or a
``geolesson.cog.CogInfo``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from geolesson._checks import check_fraction

if TYPE_CHECKING:  # pragma: no cover
    import geopandas as gpd
    from matplotlib.axes import Axes

    from geolesson.cog import CogInfo

# Colours used across the book (colour-blind safe, Okabe-Ito).
TILE_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")
AOI_STYLE = dict(facecolor="none", edgecolor="#D55E00", linewidth=2.0, linestyle="--")
OUTLINE_STYLE = dict(facecolor="#eeeeee", edgecolor="#555555", linewidth=0.8)


def stretch(array, lo: float = 2.0, hi: float = 98.0, nodata: float | None = 0) -> np.ndarray:
    """Percentile contrast stretch of a ``(bands, H, W)`` or ``(H, W)`` array to floats in 0..1.

    Each band is stretched on its own between its ``lo`` and ``hi`` percentiles, ignoring
    ``nodata`` and NaN pixels; those come out as NaN (transparent in ``imshow`` of one band,
    black in an RGB image once ``rgb_image`` has filled them).

    Raises:
        TypeError: ``array`` does not hold numbers.
        ValueError: ``lo`` is not below ``hi``, or either is outside 0..100 (or not a number);
            ``array`` is not 2-D ``(H, W)`` or 3-D ``(bands, H, W)``, or has no pixels.
    """
    for name, value in (("lo", lo), ("hi", hi)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or np.isnan(value):
            raise ValueError(f"{name}={value!r} must be a percentile, a number in 0..100")
    if not 0 <= lo < hi <= 100:
        raise ValueError(f"need 0 <= lo < hi <= 100, got lo={lo}, hi={hi}")
    raw = np.asarray(array)
    if raw.dtype.kind not in "biuf":
        raise TypeError(f"array must hold numbers (an image), not dtype {raw.dtype} (shape {raw.shape})")
    if raw.ndim not in (2, 3) or 0 in raw.shape:
        raise ValueError(f"array must be an image, (H, W) or (bands, H, W) with pixels, not shape {raw.shape}")
    data = raw.astype("float64")
    squeeze = data.ndim == 2
    if squeeze:
        data = data[None]
    out = np.full(data.shape, np.nan)
    for i, band in enumerate(data):
        valid = np.isfinite(band)
        if nodata is not None:
            valid &= band != nodata
        if not valid.any():
            continue
        p_lo, p_hi = np.percentile(band[valid], [lo, hi])
        scale = p_hi - p_lo if p_hi > p_lo else 1.0
        out[i] = np.where(valid, np.clip((band - p_lo) / scale, 0.0, 1.0), np.nan)
    return out[0] if squeeze else out


def rgb_image(array, lo: float = 2.0, hi: float = 98.0, nodata: float | None = 0) -> np.ndarray:
    """A ``(3, H, W)`` array (red, green, blue) as an ``(H, W, 3)`` image for ``imshow``.

    Stretched with ``stretch``; pixels that are nodata in any band are black.

    Raises:
        ValueError: the array does not have three bands first.
    """
    data = np.asarray(array)
    if data.ndim != 3 or data.shape[0] != 3:
        raise ValueError(f"array must be a (3, H, W) array (red, green, blue first), not shape {data.shape}")
    img = stretch(data, lo, hi, nodata)
    return np.nan_to_num(np.moveaxis(img, 0, -1), nan=0.0)


def show_rgb(ax: "Axes", array, extent: Sequence[float] | None = None, title: str | None = None,
             lo: float = 2.0, hi: float = 98.0, nodata: float | None = 0) -> "Axes":
    """Draw a ``(3, H, W)`` array as a stretched RGB image.

    ``extent`` is ``(left, right, bottom, top)`` in map units (as ``imshow`` wants); an
    ``xarray.DataArray`` with ``x``/``y`` coordinates gets its extent from them.
    """
    if extent is not None and len(extent) != 4:
        raise ValueError(f"extent={extent!r} must be (left, right, bottom, top) in map units")
    if extent is None and hasattr(array, "rio"):
        left, bottom, right, top = array.rio.bounds()
        extent = (left, right, bottom, top)
    ax.imshow(rgb_image(np.asarray(array), lo, hi, nodata), extent=extent, interpolation="nearest")
    if title:
        ax.set_title(title)
    return ax


def footprints(ax: "Axes", items: "gpd.GeoDataFrame", by: str | None = None,
               aoi: "gpd.GeoDataFrame | None" = None, outline: "gpd.GeoDataFrame | None" = None,
               alpha: float = 0.25) -> "Axes":
    """Map item footprints (a GeoDataFrame of item geometries), coloured by the column ``by``.

    ``outline`` (e.g. a coastline) is drawn underneath in grey and ``aoi`` on top as a dashed
    line; all layers must share one CRS. Adds a legend with one entry per value of ``by``.

    Raises:
        TypeError: ``items``, ``aoi`` or ``outline`` is not a GeoDataFrame.
        ValueError: ``by`` is not a column of ``items``; ``alpha`` not in [0, 1].
    """
    import geopandas as gpd
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    for name, frame, optional in (("items", items, False), ("aoi", aoi, True), ("outline", outline, True)):
        if not isinstance(frame, gpd.GeoDataFrame) and not (optional and frame is None):
            raise TypeError(f"{name} must be a geopandas GeoDataFrame{' or None' if optional else ''} (e.g. "
                            f"geopandas.GeoDataFrame.from_features(items) for items), not "
                            f"{type(frame).__name__}: {frame!r}"[:200])
    if alpha is None:
        raise ValueError("alpha must be a fraction in [0, 1], not None")
    check_fraction("alpha", alpha)
    if by is not None and by not in items.columns:
        raise ValueError(f"by={by!r} is not a column of items; its columns are: {', '.join(map(str, items.columns))}")
    handles = []
    if outline is not None:
        outline.plot(ax=ax, **OUTLINE_STYLE)
        handles.append(Patch(facecolor=OUTLINE_STYLE["facecolor"], edgecolor=OUTLINE_STYLE["edgecolor"], label="land"))
    groups = [(None, items)] if by is None else list(items.groupby(by, sort=True))
    for i, (value, group) in enumerate(groups):
        colour = TILE_COLOURS[i % len(TILE_COLOURS)]
        # fill the union once (overlapping fills of many items would turn opaque), then
        # outline every item so that footprints cut short by the swath edge stand out
        union = group.geometry.union_all()
        type(group.geometry)([union], crs=group.crs).plot(ax=ax, facecolor=colour, edgecolor="none", alpha=alpha)
        group.boundary.plot(ax=ax, color=colour, linewidth=1.0, alpha=0.8)
        label = f"{by} = {value} ({len(group)} items)" if by else f"{len(group)} items"
        handles.append(Patch(facecolor=colour, edgecolor=colour, alpha=0.5, label=label))
    if aoi is not None:
        aoi.plot(ax=ax, **AOI_STYLE)
        handles.append(Line2D([], [], color=AOI_STYLE["edgecolor"], linestyle="--", linewidth=2,
                              label="area of interest"))
    ax.legend(handles=handles, loc="upper left", fontsize="small")
    return ax


def km_axes(ax: "Axes", crs_name: str | None = None, decimals: int = 0) -> "Axes":
    """Label the axes of a map in metres (e.g. UTM) in kilometres, without offset notation."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    km = FuncFormatter(lambda v, _: f"{v / 1000:,.{decimals}f}")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 5, 10]))
        axis.set_major_formatter(km)
    suffix = f", {crs_name}" if crs_name else ""
    ax.set_xlabel(f"x (km{suffix})")
    ax.set_ylabel(f"y (km{suffix})")
    return ax


def block_grid(ax: "Axes", info: "CogInfo", level: int | None = None, window=None,
               image=None, colour: str = "#0072B2", highlight: str = "#D55E00") -> "Axes":
    """Draw the internal block grid of a COG (full resolution, or overview ``level``), in pixels.

    ``level`` indexes ``info.overviews`` (0 = the first overview); ``None`` is full resolution.
    ``image`` (an ``(H, W)`` or ``(H, W, 3)`` array) is drawn underneath, stretched to the
    level's pixel grid. ``window`` (a ``rasterio.windows.Window`` in full-resolution pixels)
    is outlined, and the blocks it touches at that level are shaded.

    Raises:
        TypeError: ``info`` is not a :class:`~geolesson.cog.CogInfo`; ``window`` not a
            ``rasterio.windows.Window``.
        ValueError: ``level`` is not an overview of the file.
    """
    from matplotlib.patches import Rectangle
    from rasterio.windows import Window

    from geolesson.cog import CogInfo

    if not isinstance(info, CogInfo):
        raise TypeError(f"info must be a CogInfo (geolesson.cog.inspect(href) gives one), not {info!r}"[:200])
    if window is not None and not isinstance(window, Window):
        raise TypeError(f"window must be a rasterio.windows.Window (Window(col_off, row_off, width, height)), "
                        f"not {window!r}")

    if level is not None and not (isinstance(level, (int, np.integer)) and 0 <= level < len(info.overviews)):
        raise ValueError(f"level={level!r} is not an overview of {info.href}: use None (full resolution) or "
                         f"0..{len(info.overviews) - 1} (its {len(info.overviews)} overviews)" if info.overviews
                         else f"level={level!r}: {info.href} has no overviews, use level=None")
    if level is None:
        height, width, factor = info.height, info.width, 1
    else:
        (height, width), factor = info.overview_shapes[level], info.overviews[level]
    brows, bcols = info.block_shape
    if image is not None:
        ax.imshow(image, extent=(0, width, height, 0), interpolation="nearest")
    nrows, ncols = -(-height // brows), -(-width // bcols)
    if window is not None:
        r0, c0 = window.row_off / factor, window.col_off / factor
        r1, c1 = (window.row_off + window.height) / factor, (window.col_off + window.width) / factor
        for br in range(int(r0 // brows), int(np.ceil(r1 / brows))):
            for bc in range(int(c0 // bcols), int(np.ceil(c1 / bcols))):
                ax.add_patch(Rectangle((bc * bcols, br * brows), bcols, brows, facecolor=highlight, alpha=0.3))
        ax.add_patch(Rectangle((c0, r0), c1 - c0, r1 - r0, facecolor="none", edgecolor=highlight, linewidth=2))
    # blocks may extend past the image edge (padding): draw the full block extent dashed
    for r in range(nrows + 1):
        ax.plot([0, ncols * bcols], [r * brows] * 2, color=colour, linewidth=1)
    for c in range(ncols + 1):
        ax.plot([c * bcols] * 2, [0, nrows * brows], color=colour, linewidth=1)
    ax.add_patch(Rectangle((0, 0), width, height, facecolor="none", edgecolor="black", linewidth=1.5))
    ax.set_xlim(-0.02 * ncols * bcols, 1.02 * ncols * bcols)
    ax.set_ylim(1.02 * nrows * brows, -0.02 * nrows * brows)
    ax.set_aspect("equal")
    name = "full resolution" if level is None else f"overview 1/{factor}"
    # three short lines: the title stays as narrow as a one-block overview's panel
    ax.set_title(f"{name}\n{width}×{height} px\n{nrows}×{ncols} block{'s' if nrows * ncols > 1 else ''}",
                 fontsize="medium")
    ax.set_xlabel("column (px)")
    ax.set_ylabel("row (px)")
    return ax
