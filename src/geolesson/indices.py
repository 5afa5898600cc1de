"""Spectral indices and Sentinel-2 L2A masks, alike on numpy, xarray and Dask.

Every function here takes a ``numpy.ndarray``, an ``xarray.DataArray`` (numpy- or
Dask-backed) or a bare ``dask.array.Array`` and returns the same kind of thing: shapes,
dims and coordinates are preserved, and a lazy (Dask) input stays lazy until you call
``.compute()``. Nothing is computed early, so the functions fit inside a Dask graph over a
full 10980 x 10980 Sentinel-2 tile.

The chain a lesson follows:

1. :func:`reflectance`: digital numbers (DN, ``uint16``) -> surface reflectance (0-1,
   ``float32``) with the asset's own STAC ``raster:bands`` ``scale`` and ``offset``.
2. :func:`cloud_mask`, :func:`nodata_mask`, :func:`valid_mask`: boolean masks from the
   Sentinel-2 L2A Scene Classification layer (SCL, :data:`SCL_CLASSES`).
3. :func:`ndvi`, :func:`nbr`, :func:`dnbr`: normalised-difference indices of reflectance.
4. :func:`burn_severity`, :func:`burned_area_ha`: dNBR classes and their area.

Sources are cited where each formula or constant is defined.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from geolesson.items import ItemLike

# ---------------------------------------------------------------------------------------
# array helpers: one code path for numpy, xarray and dask
# ---------------------------------------------------------------------------------------


def _is_xarray(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "xarray" and hasattr(x, "dims")


def _is_dask(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "dask" and hasattr(x, "map_blocks")


def _as_array(x: Any) -> Any:
    """Leave numpy/xarray/dask arrays alone; turn lists and scalars into numpy arrays."""
    if _is_xarray(x) or _is_dask(x) or isinstance(x, np.ndarray):
        return x
    return np.asarray(x)


def _where(cond: Any, x: Any, other: Any) -> Any:
    """``x`` where ``cond`` holds, else ``other``; keeps the container type of ``x``."""
    if _is_xarray(x):
        return x.where(cond, other)
    return np.where(cond, x, other)  # dispatches to dask.array.where for dask inputs


def _isnan(x: Any) -> Any:
    return x.isnull() if _is_xarray(x) else np.isnan(x)


def _isin(x: Any, values: list[int]) -> Any:
    return x.isin(values) if _is_xarray(x) else np.isin(x, values)


def _finish(result: Any, name: str, attrs: Mapping[str, Any] | None = None) -> Any:
    """Name an xarray result and replace its attrs (those of the inputs no longer apply)."""
    if _is_xarray(result):
        result = result.rename(name)
        result.attrs = dict(attrs or {})
    return result


# ---------------------------------------------------------------------------------------
# 1. reflectance from the asset's raster:bands
# ---------------------------------------------------------------------------------------

#: Attributes of a DN array that describe its encoding and are wrong once it is reflectance.
_ENCODING_ATTRS = ("_FillValue", "missing_value", "nodata", "scale_factor", "add_offset")


def _asset_dict_and_label(asset: Any) -> tuple[dict, str]:
    """The asset as a dict, and a label for error messages (its key in the item, title or href)."""
    if isinstance(asset, Mapping):
        d = dict(asset)
        label = d.get("title") or d.get("href") or "<asset dict>"
        return d, repr(label)
    if hasattr(asset, "to_dict"):  # pystac.Asset
        d = asset.to_dict()
        owner = getattr(asset, "owner", None)
        for key, other in (getattr(owner, "assets", None) or {}).items():
            if other is asset:
                return d, repr(key)
        return d, repr(d.get("title") or d.get("href") or "<pystac.Asset>")
    raise TypeError(f"asset must be a pystac.Asset or an asset dict, not {type(asset).__name__}")


def _raster_band(asset: Any, band: int | None) -> tuple[dict, str]:
    d, label = _asset_dict_and_label(asset)
    bands = d.get("raster:bands")
    if not isinstance(bands, list) or not bands:
        raise ValueError(
            f"asset {label} has no 'raster:bands' (STAC raster extension): its scale and offset are "
            "unknown, so DNs cannot be turned into reflectance. Look up the product's scale/offset "
            "and add them to the asset, e.g. {'raster:bands': [{'scale': 0.0001, 'offset': -0.1, 'nodata': 0}]}")
    if band is None:
        if len(bands) > 1:
            raise ValueError(f"asset {label} has {len(bands)} 'raster:bands'; choose one with band=0..{len(bands) - 1}")
        band = 0
    if not 0 <= band < len(bands):
        raise ValueError(f"band={band} is out of range: asset {label} has {len(bands)} 'raster:bands'")
    return bands[band], f"{label} raster:bands[{band}]"


def asset(item: ItemLike, key: str) -> Any:
    """The asset ``key`` of a STAC item (``pystac.Item`` or item dict), e.g. ``asset(item, "red")``.

    Raises:
        ValueError: the item has no such asset; the message names the item and lists the assets it has
            (Earth Search calls the bands ``red``, ``nir``, ``swir22``...; Planetary Computer ``B04``,
            ``B08``, ``B12``...).
    """
    if isinstance(item, Mapping):
        assets, item_id = item.get("assets") or {}, item.get("id", "<item dict>")
    elif hasattr(item, "assets"):
        assets, item_id = item.assets, getattr(item, "id", "<item>")
    else:
        raise TypeError(f"item must be a pystac.Item or an item dict, not {type(item).__name__}")
    if key not in assets:
        raise ValueError(f"item {item_id} has no asset {key!r}; its assets are: {', '.join(sorted(assets)) or 'none'}")
    return assets[key]


def reflectance(dn: Any, asset: Any, *, band: int | None = None) -> Any:
    """Turn digital numbers into surface reflectance with the asset's own ``scale`` and ``offset``.

    ``reflectance = DN * scale + offset``, the rule of the STAC raster extension v1.1
    (``raster:bands`` fields ``scale`` and ``offset``: "value = pixel * scale + offset";
    https://github.com/stac-extensions/raster). Nothing is hard-coded: the values come from
    the asset, because they change with the product. For Sentinel-2 L2A, processing
    baseline 04.00 (deployed 25 January 2022) introduced ``BOA_ADD_OFFSET = -1000`` with
    ``QUANTIFICATION_VALUE = 10000``, i.e. ``reflectance = (DN - 1000) / 10000``:
    Earth Search publishes ``scale 0.0001, offset -0.1`` for those scenes and
    ``offset 0`` for older ones. Using a fixed ``/ 10000`` on newer scenes biases every
    reflectance by +0.1 (ESA, "Sentinel-2 L2A processing baseline 04.00", Jan 2022).
    Dark pixels can come out slightly negative after the offset; that is the product,
    not an error, and they are kept.

    Args:
        dn: digital numbers, any shape and dims (e.g. ``(y, x)`` or ``(time, y, x)``), any
            numeric dtype (usually ``uint16``; a float array read with ``masked=True``, with
            NaN where the file had nodata, works too).
        asset: a ``pystac.Asset`` or an asset dict carrying ``raster:bands``.
        band: which entry of ``raster:bands`` to use; needed only when there are several.

    Returns:
        ``float32`` reflectance (unitless, nominally 0-1; computed in float64 and rounded
        once to float32, so DN 1000 -> exactly 0.0), same type/shape/dims/coords as
        ``dn`` (lazy if ``dn`` is), NaN where ``dn`` equals the band's ``nodata`` (0 for
        Sentinel-2) or was already NaN. An xarray result keeps ``dn``'s attrs minus its
        encoding attrs (``_FillValue``, ``scale_factor``, ``add_offset``, ...).

    Raises:
        ValueError: the asset has no ``raster:bands``, the chosen band has no ``scale``
            (or a non-numeric ``scale``/``offset``), or it has several bands and ``band`` is
            None or out of range; the message names the asset and the missing field.
        TypeError: ``asset`` is neither a ``pystac.Asset`` nor a dict.
    """
    rb, where = _raster_band(asset, band)
    if rb.get("scale") is None:
        raise ValueError(f"asset {where} has no 'scale': DN -> reflectance needs it (value = DN * scale + offset)")
    try:
        scale = float(rb["scale"])
        offset = float(rb.get("offset") or 0.0)  # absent offset means 0 (raster extension)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"asset {where} has a non-numeric scale/offset: "
                         f"scale={rb.get('scale')!r}, offset={rb.get('offset')!r}") from exc
    nodata = rb.get("nodata")
    if isinstance(nodata, str):  # the extension allows "nan", "inf", "-inf"
        nodata = float(nodata)

    dn = _as_array(dn)
    if not (np.issubdtype(dn.dtype, np.integer) or np.issubdtype(dn.dtype, np.floating)):
        raise ValueError(f"dn must hold numbers, not dtype {dn.dtype}")
    # float64 arithmetic, float32 result: DN 1000 with scale 0.0001, offset -0.1 gives
    # exactly 0.0 (in float32 arithmetic it would give -7.45e-09)
    out = (dn.astype(np.float64) * scale + offset).astype(np.float32)
    if nodata is not None and not math.isnan(nodata):
        out = _where(dn != nodata, out, np.float32(np.nan))
    if _is_xarray(out):
        out.attrs = {k: v for k, v in dn.attrs.items() if k not in _ENCODING_ATTRS}
    return out


# ---------------------------------------------------------------------------------------
# 2. Sentinel-2 L2A Scene Classification (SCL)
# ---------------------------------------------------------------------------------------

#: Sentinel-2 L2A Scene Classification values and their meaning.
#: Source: ESA Sentinel-2 Products Specification Document (Level-2A, SCL band) and the
#: Sen2Cor Software User Manual, "Scene Classification" (S2-PDGS-MPC-L2A-SUM); overview at
#: https://sentinels.copernicus.eu/web/sentinel/technical-guides/sentinel-2-msi/level-2a/algorithm-overview
#: Class 2 is called "topographic casted shadows" for data processed since baseline 04.00
#: (25 January 2022) and "dark features / shadows" before; the code is the same.
SCL_CLASSES: Mapping[int, str] = MappingProxyType({
    0: "no data",
    1: "saturated or defective",
    2: "dark area pixels",  # topographic shadow / dark features
    3: "cloud shadows",
    4: "vegetation",
    5: "not vegetated",
    6: "water",
    7: "unclassified",
    8: "cloud medium probability",
    9: "cloud high probability",
    10: "thin cirrus",
    11: "snow or ice",
})

#: SCL class of pixels outside the swath or without data.
SCL_NODATA = 0

#: Classes :func:`cloud_mask` flags by default: cloud shadows (3), cloud medium
#: probability (8), cloud high probability (9) and thin cirrus (10). Class 7
#: (unclassified, formerly "cloud low probability") is not included.
DEFAULT_CLOUD_CLASSES: tuple[int, ...] = (3, 8, 9, 10)

#: Classes :func:`valid_mask` rejects by default: no data (0), saturated or defective (1),
#: and the cloud classes above (3, 8, 9, 10). Snow (11), water (6) and dark areas (2) stay
#: valid: whether they are wanted depends on the application.
DEFAULT_INVALID_CLASSES: tuple[int, ...] = (0, 1, 3, 8, 9, 10)


def _check_scl_block(block: np.ndarray, where: str = "") -> np.ndarray:
    """``block`` unchanged, or ValueError naming its values outside 0..11."""
    bad = (block < 0) | (block > max(SCL_CLASSES))
    if bad.any():
        values = np.unique(block[bad])
        shown = ", ".join(str(v) for v in values[:10]) + (", ..." if values.size > 10 else "")
        raise ValueError(f"SCL values outside the Scene Classification classes 0..{max(SCL_CLASSES)}: "
                         f"{shown} ({int(bad.sum())} pixel(s){where}); is this really the 'scl' asset, "
                         "read without resampling?")
    return block


def _checked_scl(scl: Any) -> Any:
    """``scl`` after checking its dtype now and its values now (numpy) or at compute time (dask)."""
    scl = _as_array(scl)
    if not np.issubdtype(scl.dtype, np.integer):
        raise ValueError(
            f"SCL must have an integer dtype (the file is uint8), not {scl.dtype}: read it without "
            "masked=True / mask_and_scale=True, which turns class codes into floats with NaN")
    data = scl.data if _is_xarray(scl) else scl
    if _is_dask(data):
        checked = data.map_blocks(_check_scl_block, where=" in one Dask chunk", dtype=data.dtype)
        return scl.copy(data=checked) if _is_xarray(scl) else checked
    _check_scl_block(np.asarray(data))
    return scl


def _class_list(classes: int | Iterable[int], what: str) -> list[int]:
    values = [classes] if isinstance(classes, (int, np.integer)) else list(classes)
    unknown = [c for c in values if c not in SCL_CLASSES]
    if unknown:
        raise ValueError(f"{what}: {unknown} are not SCL classes (0..{max(SCL_CLASSES)}, see SCL_CLASSES)")
    return [int(c) for c in values]


def scl_mask(scl: Any, classes: int | Iterable[int]) -> Any:
    """True where the Scene Classification value is one of ``classes``.

    Args:
        scl: the SCL band, integer dtype (``uint8`` in the product), any shape/dims; values
            must be SCL classes 0..11 (:data:`SCL_CLASSES`).
        classes: one class code or several.

    Returns:
        ``bool`` array, same type/shape/dims/coords as ``scl`` (lazy if ``scl`` is).

    Raises:
        ValueError: ``scl`` has a non-integer dtype (raised at once); ``classes`` holds a code
            that is not an SCL class (at once); ``scl`` holds values outside 0..11 such as
            255 (message names them): at once for numpy, and for Dask when the result is
            computed (the check runs in each chunk, so it never forces a computation; the
            message names the offending values of the first bad chunk computed).
    """
    values = _class_list(classes, "classes")
    checked = _checked_scl(scl)
    return _finish(_isin(checked, values), "scl_mask", {"scl_classes": values})


def cloud_mask(scl: Any, classes: Iterable[int] = DEFAULT_CLOUD_CLASSES) -> Any:
    """True where SCL says cloud: by default shadows, medium and high probability, cirrus (3, 8, 9, 10).

    Same arguments, result and errors as :func:`scl_mask`.
    """
    values = _class_list(classes, "classes")
    return _finish(scl_mask(scl, values), "cloud_mask", {"scl_classes": values})


def nodata_mask(scl: Any) -> Any:
    """True where SCL is class 0 (no data: outside the swath or missing). See :func:`scl_mask`."""
    return _finish(scl_mask(scl, SCL_NODATA), "nodata_mask", {"scl_classes": [SCL_NODATA]})


def valid_mask(scl: Any, exclude: Iterable[int] = DEFAULT_INVALID_CLASSES) -> Any:
    """True where a pixel is usable: its SCL class is not in ``exclude``.

    ``exclude`` defaults to :data:`DEFAULT_INVALID_CLASSES` (0, 1, 3, 8, 9, 10). Class 0
    (no data) is always excluded, whether or not ``exclude`` lists it: a pixel without data
    is never valid. Same result and errors as :func:`scl_mask`.
    """
    rejected = sorted(set(_class_list(exclude, "exclude")) | {SCL_NODATA})
    return _finish(~scl_mask(scl, rejected), "valid_mask", {"excluded_scl_classes": rejected})


# ---------------------------------------------------------------------------------------
# 3. normalised-difference indices
# ---------------------------------------------------------------------------------------


class ReflectanceWarning(UserWarning):
    """An index got float values far above the reflectance range: digital numbers read as floats."""


#: Largest value a reflectance array can hold; the largest DN (65535) scaled by Sentinel-2's
#: raster:bands (scale 0.0001, offset -0.1) is 6.45, saturated pixels included. Floats above
#: it are digital numbers (0-10000 and more) read as floats, e.g. by ``masked=True``.
MAX_REFLECTANCE = 10.0


def _warn_if_dn(block: np.ndarray, what: str = "", where: str = "") -> np.ndarray:
    """``block`` unchanged; a ReflectanceWarning if it holds values above MAX_REFLECTANCE."""
    finite = block[np.isfinite(block)] if block.size else block
    if finite.size and (top := float(finite.max())) > MAX_REFLECTANCE:
        import warnings

        warnings.warn(
            f"{what} holds values up to {top:g}{where}, but surface reflectance is about 0-1 (at most "
            f"{MAX_REFLECTANCE:g} even for saturated pixels): these look like digital numbers (DN) read as "
            "floats (masked=True / mask_and_scale=True reads give 0-10000). Convert them with "
            f"geolesson.indices.reflectance({what}_dn, item.assets[...]) first; the index of DNs is wrong",
            ReflectanceWarning, stacklevel=2)
    return block


def _check_reflectance(name: str, x: Any) -> Any:
    """``x`` as an array after checking its dtype now and its range now (numpy) or at compute time (Dask)."""
    x = _as_array(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(
            f"{name} has dtype {x.dtype}, but indices need surface reflectance (float, 0-1). "
            "Integers are digital numbers (DN): scale them to reflectance with "
            f"geolesson.indices.reflectance({name}_dn, item.assets[...]) first; on DNs the "
            "offset is missing and the index is wrong")
    data = x.data if _is_xarray(x) else x
    if _is_dask(data):
        checked = data.map_blocks(_warn_if_dn, what=name, where=" in one Dask chunk", dtype=data.dtype)
        return x.copy(data=checked) if _is_xarray(x) else checked
    _warn_if_dn(np.asarray(data), what=name)
    return x


def _crs(x: Any) -> Any:
    try:
        import rioxarray  # noqa: F401  (registers the .rio accessor)
    except ImportError:  # pragma: no cover - rioxarray is a dependency
        return None
    try:
        return x.rio.crs
    except Exception:  # noqa: BLE001 - an unreadable CRS is treated as absent
        return None


def _check_aligned(a_name: str, a: Any, b_name: str, b: Any) -> None:
    """Same shape (and for two DataArrays: same dims, coordinates and CRS), else ValueError."""
    if _is_xarray(a) and _is_xarray(b):
        if a.dims != b.dims or a.shape != b.shape:
            raise ValueError(f"{a_name} and {b_name} differ: {a_name} has dims {a.dims} shape {a.shape}, "
                             f"{b_name} has dims {b.dims} shape {b.shape}; resample/reproject one onto "
                             "the other's grid first (e.g. rio.reproject_match)")
        for dim in a.dims:
            if dim in a.indexes and dim in b.indexes and not a.indexes[dim].equals(b.indexes[dim]):
                raise ValueError(f"{a_name} and {b_name} have different coordinates along {dim!r} "
                                 f"({a_name} starts at {a.indexes[dim][:1].tolist()}, "
                                 f"{b_name} at {b.indexes[dim][:1].tolist()}): they are not on the "
                                 "same grid, and xarray would silently keep only their overlap")
        crs_a, crs_b = _crs(a), _crs(b)
        if crs_a is not None and crs_b is not None and crs_a != crs_b:
            raise ValueError(f"{a_name} and {b_name} have different CRS: {a_name} is {crs_a}, "
                             f"{b_name} is {crs_b}; reproject one onto the other first")
    elif tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{a_name} and {b_name} have different shapes: {a_name} {tuple(a.shape)}, "
                         f"{b_name} {tuple(b.shape)}")


def _normalized_difference(a_name: str, a: Any, b_name: str, b: Any) -> Any:
    """(a - b) / (a + b), NaN where a + b == 0, without a division by zero (so no warnings, even lazily)."""
    a = _check_reflectance(a_name, a)
    b = _check_reflectance(b_name, b)
    _check_aligned(a_name, a, b_name, b)
    total = a + b
    return (a - b) / _where(total != 0, total, np.nan)


def ndvi(red: Any, nir: Any) -> Any:
    """Normalized Difference Vegetation Index: ``(nir - red) / (nir + red)``.

    Rouse, J. W., Haas, R. H., Schell, J. A. & Deering, D. W. (1974). Monitoring vegetation
    systems in the Great Plains with ERTS. Third ERTS Symposium, NASA SP-351, vol. 1, 309-317.
    Sentinel-2: red = B04 (asset ``red``), nir = B08 (asset ``nir``), both 10 m.

    Args:
        red, nir: surface reflectance (float, 0-1, e.g. from :func:`reflectance`), same
            shape; for DataArrays also the same dims, coordinates and CRS.

    Returns:
        NDVI, unitless, in [-1, 1] for non-negative reflectance (values outside can occur
        where offset-corrected reflectance is slightly negative), float dtype of the inputs,
        same type/shape/dims/coords (lazy if the inputs are); an xarray result is named
        ``"ndvi"``. NaN where ``nir + red == 0`` or an input is NaN; no warnings are emitted.

    Raises:
        ValueError: an input has an integer dtype (digital numbers: use :func:`reflectance`);
            shapes differ; for two DataArrays, dims, coordinates or CRS (``.rio.crs``, when
            both have one) differ. The message names both inputs.

    Warns:
        ReflectanceWarning: an input holds values above :data:`MAX_REFLECTANCE` (float DNs,
            such as ``masked=True`` reads give): at once for numpy, and for Dask when the
            result is computed (checked in each chunk, as the SCL check does; nothing is
            computed early). The result is still returned: the values are legal, but wrong.
    """
    out = _normalized_difference("nir", nir, "red", red)
    return _finish(out, "ndvi", {"long_name": "Normalized Difference Vegetation Index", "units": "1"})


def nbr(nir: Any, swir22: Any) -> Any:
    """Normalized Burn Ratio: ``(nir - swir22) / (nir + swir22)``.

    Key, C. H. & Benson, N. C. (2006). Landscape Assessment (LA): sampling and analysis
    methods. In: FIREMON: Fire Effects Monitoring and Inventory System, USDA Forest Service
    Gen. Tech. Rep. RMRS-GTR-164-CD, LA-1-LA-55 (Landsat TM bands 4 and 7). Sentinel-2:
    nir = B08 (10 m, asset ``nir``) or B8A (20 m, ``nir08``), swir22 = B12 (20 m, asset
    ``swir22``): bring both onto one grid first (see UN-SPIDER, Recommended Practice: Burn
    Severity Mapping).

    Args, returns and errors as :func:`ndvi` (result named ``"nbr"``): healthy vegetation
    has high NBR, freshly burned ground low or negative NBR.
    """
    out = _normalized_difference("nir", nir, "swir22", swir22)
    return _finish(out, "nbr", {"long_name": "Normalized Burn Ratio", "units": "1"})


def dnbr(nbr_pre: Any, nbr_post: Any) -> Any:
    """Differenced Normalized Burn Ratio: ``nbr_pre - nbr_post`` (Key & Benson 2006, FIREMON LA).

    Positive where vegetation was lost between the two dates (burned), negative where it
    grew back. Unscaled: some sources multiply by 1000 (thresholds -250 ... 660).

    Args:
        nbr_pre, nbr_post: NBR (float) before and after the fire, from :func:`nbr`, on the
            same grid. DataArrays must also share their coordinates: drop or squeeze a
            ``time`` dimension first (two different dates never align).

    Returns:
        dNBR, unitless, in [-2, 2], float, same type/shape/dims/coords as the inputs (lazy
        if they are); an xarray result is named ``"dnbr"``. NaN where either input is NaN.

    Raises:
        ValueError: as :func:`ndvi` (integer dtype, shape, dims, coordinates or CRS differ).
    """
    pre = _check_reflectance("nbr_pre", nbr_pre)
    post = _check_reflectance("nbr_post", nbr_post)
    _check_aligned("nbr_pre", pre, "nbr_post", post)
    return _finish(pre - post, "dnbr", {"long_name": "Differenced Normalized Burn Ratio", "units": "1"})


# ---------------------------------------------------------------------------------------
# 4. burn severity and burned area
# ---------------------------------------------------------------------------------------


class BurnSeverityClass(NamedTuple):
    """One dNBR class: pixels with ``lower <= dNBR < upper`` get ``code``."""

    code: int
    label: str
    lower: float
    upper: float


#: dNBR burn severity classes (USGS thresholds from Key & Benson 2006, FIREMON LA, as
#: tabulated by UN-SPIDER, Recommended Practice: Burn Severity Mapping,
#: https://un-spider.org/advisory-support/recommended-practices/recommended-practice-burn-severity).
#: Intervals are ``[lower, upper)``: a value on a boundary belongs to the class above it
#: (0.27 is moderate-low). The outer classes are open-ended (UN-SPIDER's table stops at
#: -0.5 and 1.3; values beyond are rare and usually artefacts).
BURN_SEVERITY_CLASSES: tuple[BurnSeverityClass, ...] = (
    BurnSeverityClass(1, "enhanced regrowth, high", -math.inf, -0.25),
    BurnSeverityClass(2, "enhanced regrowth, low", -0.25, -0.1),
    BurnSeverityClass(3, "unburned", -0.1, 0.1),
    BurnSeverityClass(4, "low severity", 0.1, 0.27),
    BurnSeverityClass(5, "moderate-low severity", 0.27, 0.44),
    BurnSeverityClass(6, "moderate-high severity", 0.44, 0.66),
    BurnSeverityClass(7, "high severity", 0.66, math.inf),
)

#: :func:`burn_severity` code for pixels whose dNBR is NaN (no data, clouds masked out).
BURN_SEVERITY_NODATA = 0


def burn_severity(dnbr: Any) -> Any:
    """Classify dNBR into the USGS burn severity classes of :data:`BURN_SEVERITY_CLASSES`.

    Thresholds are compared in the input's own float precision, so a ``float32`` 0.27 is
    moderate-low, as it reads.

    Args:
        dnbr: unscaled dNBR (float), from :func:`dnbr`; any shape/dims.

    Returns:
        ``uint8`` codes 1..7 (1 enhanced regrowth high ... 7 high severity), and
        :data:`BURN_SEVERITY_NODATA` (0) where ``dnbr`` is NaN; same type/shape/dims/coords
        (lazy if the input is). An xarray result is named ``"burn_severity"`` and carries
        CF ``flag_values``/``flag_meanings`` attrs.

    Raises:
        ValueError: ``dnbr`` has an integer dtype (e.g. dNBR x 1000: divide by 1000 first).
    """
    x = _as_array(dnbr)
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"dnbr must be unscaled float dNBR (e.g. 0.27), not dtype {x.dtype}; "
                         "if it was scaled by 1000, divide by 1000 first")
    codes = None
    for cls in BURN_SEVERITY_CLASSES[1:]:  # each lower bound passed adds one to the code
        step = (x >= cls.lower).astype(np.uint8)
        codes = step if codes is None else codes + step
    codes = codes + np.uint8(BURN_SEVERITY_CLASSES[0].code)
    codes = _where(~_isnan(x), codes, np.uint8(BURN_SEVERITY_NODATA)).astype(np.uint8)
    attrs = {
        "long_name": "burn severity class from dNBR (Key & Benson 2006; UN-SPIDER)",
        "flag_values": [BURN_SEVERITY_NODATA] + [c.code for c in BURN_SEVERITY_CLASSES],
        "flag_meanings": " ".join(["no_data"] + [c.label.replace(", ", "_").replace(" ", "_")
                                                 for c in BURN_SEVERITY_CLASSES]),
    }
    return _finish(codes, "burn_severity", attrs)


def burned_area_ha(mask: Any, resolution_m: float | tuple[float, float]) -> Any:
    """Area in hectares of the True pixels of a boolean mask: ``count * pixel_area_m2 / 10000``.

    1 ha = 10 000 m2, so with 10 m pixels (100 m2 each) 100 pixels make 1 ha. All True
    pixels are counted, over every dimension (select one date of a time series first).

    Args:
        mask: boolean array, e.g. ``burn_severity(d) >= 4`` (low severity or worse).
        resolution_m: pixel size in metres, one number for square pixels or ``(x, y)``;
            each must be positive (pass ``abs()`` of ``rio.resolution()``, whose y is negative).

    Returns:
        ``float`` for a numpy mask; for a DataArray a 0-d DataArray, for Dask a 0-d Dask
        array, lazy until computed (``float(result)`` works for all).

    Raises:
        ValueError: ``mask`` is not boolean, or a resolution is not positive and finite.
    """
    res = (resolution_m, resolution_m) if np.ndim(resolution_m) == 0 else tuple(resolution_m)
    if len(res) != 2:
        raise ValueError(f"resolution_m must be one number or (x, y), not {resolution_m!r}")
    for r in res:
        if isinstance(r, bool) or not (isinstance(r, (int, float, np.integer, np.floating))
                                       and math.isfinite(r) and r > 0):
            raise ValueError(f"resolution_m must be positive pixel size(s) in metres, not {resolution_m!r}")
    mask = _as_array(mask)
    if mask.dtype != bool:
        raise ValueError(f"mask must be boolean (True = burned), not dtype {mask.dtype}; "
                         "e.g. burned_area_ha(burn_severity(d) >= 4, 10)")
    pixel_ha = float(res[0]) * float(res[1]) / 10_000.0
    count = mask.sum()
    if isinstance(mask, np.ndarray):
        return float(count) * pixel_ha
    return _finish(count * pixel_ha, "burned_area_ha", {"units": "ha"})


# ---------------------------------------------------------------------------------------
# 5. radar backscatter in decibels
# ---------------------------------------------------------------------------------------


def to_db(power: Any, *, floor_db: float | None = None) -> Any:
    """Linear backscatter power (e.g. Sentinel-1 RTC gamma0) in decibels: ``10 * log10(power)``.

    The decibel of a power ratio is ``10 log10(P / P0)`` (ISO 80000-3:2006 / IEC 60027-3,
    "level of a power quantity"); backscatter coefficients are ratios to a unit reference
    (``P0 = 1``), so gamma0 0.01 is -20 dB and 1 is 0 dB (ESA, "Sentinel-1 Product
    Definition", S1-RS-MDA-52-7440, section on sigma0/gamma0 in dB; Small, D. 2011,
    "Flattening Gamma", IEEE TGRS 49(8), for terrain-flattened gamma0). Power is
    a ratio of intensities, hence the factor 10 (amplitudes would take 20).

    Zero and negative power have no logarithm. Zero occurs (radar shadow, fill), negative
    values only from processing noise; both are returned as NaN by default, so that they
    drop out of statistics like nodata instead of becoming ``-inf``. With ``floor_db``, every
    value below that level (zero and negative power included) is set to ``floor_db``
    instead: an explicit choice of the caller (e.g. -50 dB, below Sentinel-1's noise
    floor of about -22 to -28 dB NESZ), never applied silently. NaN stays NaN.

    Args:
        power: linear power, a float numpy/xarray/Dask array of any shape and dims
            (e.g. ``(y, x)`` or ``(band, y, x)``); nodata as NaN (as :func:`geolesson.chips.read_chip`
            returns it).
        floor_db: None (default: zero/negative -> NaN), or the lowest level in dB to keep.

    Returns:
        dB, same type/shape/dims/coords and float dtype as ``power`` (lazy if it is); an
        xarray result is named ``"db"`` with ``units: "dB"``.

    Raises:
        ValueError: ``power`` has an integer or non-numeric dtype (raw nodata such as
            -32768 must be masked to NaN first), or ``floor_db`` is not a finite number.
    """
    power = _as_array(power)
    if not np.issubdtype(power.dtype, np.floating):
        raise ValueError(f"power must be a float array of linear power (nodata as NaN), not dtype "
                         f"{power.dtype}")
    if floor_db is not None and (isinstance(floor_db, bool) or not isinstance(
            floor_db, (int, float, np.integer, np.floating)) or not math.isfinite(floor_db)):
        raise ValueError(f"floor_db must be None or a finite level in dB, not {floor_db!r}")
    positive = power > 0
    db = 10 * np.log10(_where(positive, power, 1.0))
    if floor_db is None:
        out = _where(positive, db, np.nan)
    else:
        filled = _where(positive, db, float(floor_db))
        out = _where(filled >= floor_db, filled, float(floor_db))
        out = _where(~_isnan(power), out, np.nan)
    return _finish(out, "db", {"units": "dB"})
