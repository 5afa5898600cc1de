"""Spatial train/validation/test splits of a chip index, with a gap between the splits.

Neighbouring chips look alike (spatial autocorrelation), and chips of one place on several
dates look more alike still: a random chip split puts near-copies of training chips in the
test set and overestimates accuracy (Roberts et al. 2017, "Cross-validation strategies for
data with temporal, spatial, hierarchical, or phylogenetic structure", Ecography 40(8);
Ploton et al. 2020, Nature Communications 11, 4540). A spatial split assigns whole blocks of
ground to one split, and leaves a gap between splits.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from geolesson._checks import check_columns, check_int, check_number

#: The split names, in order.
SPLITS: tuple[str, ...] = ("train", "val", "test")
#: Distances are compared to the gap with this tolerance in metres: footprints are stored in
#: EPSG:4326 and reprojected, which moves corners by far less than a millimetre.
_TOLERANCE_M = 1e-3


#: Columns a chip index needs to be split (besides its footprints)
_COLUMNS = ("crs", "width", "height")


def _check_index(name: str, index: Any) -> None:
    import geopandas as gpd

    check_columns(name, index, _COLUMNS)
    if not isinstance(index, gpd.GeoDataFrame) or index.crs is None:
        raise ValueError(f"{name} must be a chip index with footprints (a GeoDataFrame with a geometry "
                         f"column and a CRS, as chip_index and read_index give), not a "
                         f"{type(index).__name__}" + ("" if isinstance(index, gpd.GeoDataFrame) else
                                                      " without geometry"))


def _check_fractions(fractions: Any) -> dict[str, float]:
    if isinstance(fractions, Mapping):
        values = {k: fractions.get(k) for k in SPLITS}
        extra = sorted(set(fractions) - set(SPLITS))
        if extra:
            raise ValueError(f"fractions: unknown split(s) {extra}; the splits are {list(SPLITS)}")
    else:
        if isinstance(fractions, (str, bytes)) or not isinstance(fractions, Iterable):
            raise ValueError(f"fractions must be three numbers (train, val, test) or a mapping of "
                             f"them, not {fractions!r}")
        fractions = tuple(fractions)
        if len(fractions) != 3:
            raise ValueError(f"fractions must be three numbers (train, val, test), not {fractions!r}")
        values = dict(zip(SPLITS, fractions))
    for name, f in values.items():
        if isinstance(f, bool) or not isinstance(f, (int, float, np.integer, np.floating)) \
                or not 0 < float(f) < 1:
            raise ValueError(f"fractions: the {name} fraction must be in (0, 1), not {f!r}")
    total = sum(float(f) for f in values.values())
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise ValueError(f"fractions must add up to 1, not {total:g} ({values})")
    return {k: float(v) for k, v in values.items()}


def _projected(frame) -> dict[int, Any]:
    """Per EPSG code of the chips: every footprint of ``frame`` in that CRS (GeoSeries)."""
    return {int(epsg): frame.geometry.to_crs(epsg=int(epsg)) for epsg in sorted(set(frame["crs"]))}


def _chip_side_m(frame, projected) -> np.ndarray:
    """Each chip's nominal side in metres: chip_size (else its width) x its pixel size."""
    side = np.empty(len(frame))
    crs = np.asarray(frame["crs"])
    size = np.asarray(frame["chip_size"] if "chip_size" in frame.columns else
                      np.maximum(frame["width"], frame["height"]), dtype=float)
    width = np.asarray(frame["width"], dtype=float)
    for epsg, geoms in projected.items():
        own = crs == epsg
        b = geoms.bounds.to_numpy()[own]
        side[own] = (b[:, 2] - b[:, 0]) / width[own] * size[own]
    return side


def _close(candidates: np.ndarray, others: np.ndarray, frame, projected, distance_m: float):
    """Boolean over ``candidates`` (positions): within ``distance_m`` of any of ``others``,
    measured in each candidate's own CRS (the others reprojected into it)."""
    import shapely

    hit = np.zeros(len(candidates), dtype=bool)
    if len(others) == 0 or len(candidates) == 0:
        return hit
    crs = np.asarray(frame["crs"])
    for epsg, geoms in projected.items():
        own = np.flatnonzero(crs[candidates] == epsg)
        if len(own) == 0:
            continue
        tree = shapely.STRtree(geoms.values[others])
        found = tree.query(geoms.values[candidates[own]], predicate="dwithin", distance=distance_m)
        hit[own[np.unique(found[0])]] = True
    return hit


def spatial_split(index: Any, fractions: Any = (0.7, 0.15, 0.15), *, gap: float = 1,
                  block: int = 4, seed: int = 0, regions: Mapping[str, Any] | None = None) -> dict:
    """Split a chip index into train/val/test by blocks of ground, with a gap between splits.

    1. **Blocks** (default): the ground is cut into squares of ``block`` x ``block`` chips
       in each chip's own CRS (origin at the CRS's 0, 0), so every chip of one place,
       whatever its date or item, lands in the same square. The squares are shuffled with
       ``numpy.random.default_rng(seed)`` and dealt to train, then val, then test, until
       each has its ``fractions`` of the chips.
       **Regions** (``regions={"train": osaka, "test": tokyo}``): each chip goes to the split
       whose region holds its footprint's centre: a region is a shapely geometry in the
       index's CRS (EPSG:4326, longitude/latitude, for a chip index) or a boolean mask over
       the index rows; chips in no region are excluded. Regions must not overlap, and each
       must hold at least one chip.
    2. **Gap**: no chip of one split lies closer than ``gap`` chips to a chip of another
       (footprint to footprint, in metres of the chip's own CRS, to 1 mm). Chips that would
       are moved to ``"excluded"``: those of val next to test first, then those of train next
       to val or test, so the smaller splits stay whole and train gives up its border.

    Args:
        index: a chip index (:func:`geolesson.chips.chip_index`): a GeoDataFrame with
            footprints, ``crs``, ``width``, ``height`` (``chip_size`` where present).
        fractions: ``(train, val, test)`` or a mapping with those keys, each in (0, 1),
            adding up to 1 (blocks only; shares of chips, met to within one block).
        gap: the gap in chips (>= 0; 1 = one chip side, e.g. 2560 m for 256 chips of 10 m).
        block: block side in chips (>= 1).
        seed: seed of the block shuffle (an int >= 0): the same seed, the same split.
        regions: None (blocks), or a mapping of split names to regions.

    Returns:
        ``{"train", "val", "test", "excluded"}`` -> subsets of ``index`` (its rows, in index
        order, labels kept). Every chip is in exactly one of them.

    Raises:
        TypeError: ``index`` is not a DataFrame; ``regions`` is not a mapping, or a region is
            neither a geometry nor a mask.
        ValueError: a fraction outside (0, 1), fractions not adding up to 1, ``gap < 0``,
            ``block < 1``, a negative or non-int ``seed``, an unknown split name in
            ``regions``, a mask that is not boolean or of the wrong length, a region that
            holds no chip (e.g. one drawn in another CRS than the index's), regions that
            overlap, or an index without footprints, ``crs``, ``width`` or ``height``.
    """
    import shapely

    gap = check_number("gap", gap, minimum=0)
    check_int("block", block, 1)
    check_int("seed", seed, 0)
    _check_index("index", index)
    if regions is not None and not isinstance(regions, Mapping):
        raise TypeError(f"regions must be None or a mapping of split names to regions (e.g. "
                        f"{{'train': polygon, 'test': polygon}}), not a {type(regions).__name__}")
    frame = index.reset_index(drop=True)
    n = len(frame)
    projected = _projected(frame)
    assigned = np.full(n, "excluded", dtype=object)
    if regions is None:
        shares = _check_fractions(fractions)
        side = _chip_side_m(frame, projected)
        keys = np.empty((n, 3), dtype=np.int64)
        crs = np.asarray(frame["crs"])
        for epsg, geoms in projected.items():
            own = crs == epsg
            c = geoms.values[own]
            xy = shapely.get_coordinates(shapely.centroid(c))
            size = block * side[own]
            keys[own] = np.column_stack([np.full(own.sum(), epsg), np.floor(xy[:, 0] / size),
                                         np.floor(xy[:, 1] / size)]).astype(np.int64)
        blocks, inverse = np.unique(keys, axis=0, return_inverse=True)
        inverse = inverse.ravel()
        counts = np.bincount(inverse, minlength=len(blocks))
        order = np.random.default_rng(seed).permutation(len(blocks))
        targets = np.cumsum([shares[s] * n for s in SPLITS])
        block_split = np.empty(len(blocks), dtype=object)
        done = 0
        for b in order:
            k = int(np.searchsorted(targets, done, side="right"))
            block_split[b] = SPLITS[min(k, 2)]
            done += counts[b]
        assigned = block_split[inverse].astype(object)
    else:
        assigned = _by_region(frame, regions, assigned)
    if gap > 0 and n:
        side = _chip_side_m(frame, projected)
        distance = float(gap * np.nanmax(side)) - _TOLERANCE_M
        for split, higher in (("val", ("test",)), ("train", ("val", "test"))):
            candidates = np.flatnonzero(assigned == split)
            others = np.flatnonzero(np.isin(assigned, higher))
            close = _close(candidates, others, frame, projected, distance)
            assigned[candidates[close]] = "excluded"
    return {name: index.iloc[np.flatnonzero(assigned == name)] for name in (*SPLITS, "excluded")}


def _by_region(frame, regions: Mapping[str, Any], assigned: np.ndarray) -> np.ndarray:
    """Each chip's split by the region holding its centre; every region must hold a chip and
    no chip may lie in two regions (both would be silent mistakes: an empty split, or a
    chip that trains and tests)."""
    import shapely

    unknown = sorted(set(regions) - set(SPLITS))
    if unknown:
        raise ValueError(f"regions: unknown split(s) {unknown}; the splits are {list(SPLITS)}")
    centres = shapely.centroid(frame.geometry.values)
    owner: dict[str, np.ndarray] = {}
    for name, region in regions.items():
        if isinstance(region, shapely.Geometry):
            inside = shapely.contains(region, centres)
        elif isinstance(region, (np.ndarray, list, tuple)) or hasattr(region, "dtype"):
            inside = np.asarray(region)
            if inside.dtype != bool:
                raise ValueError(f"regions[{name!r}]: a mask must be boolean (one True/False per "
                                 f"index row), not dtype {inside.dtype}")
            if inside.shape != (len(frame),):
                raise ValueError(f"regions[{name!r}]: a mask needs one value per index row "
                                 f"({len(frame)}), not shape {inside.shape}")
        else:
            raise TypeError(f"regions[{name!r}] must be a shapely geometry (in the index's CRS) or a "
                            f"boolean mask over the index rows, not {region!r}")
        if not inside.any():
            raise ValueError(_empty_region(name, region, frame))
        for other, theirs in owner.items():
            both = int((inside & theirs).sum())
            if both:
                raise ValueError(f"regions[{other!r}] and regions[{name!r}] overlap: {both} chip centres "
                                 "lie in both; a chip belongs to one split, so the regions must not overlap")
        owner[name] = inside
        assigned = np.where(inside, name, assigned)
    return assigned


def _empty_region(name: str, region: Any, frame) -> str:
    import shapely

    epsg = frame.crs.to_epsg() if frame.crs is not None else None
    crs = f"EPSG:{epsg}" if epsg else str(frame.crs)
    if not isinstance(region, shapely.Geometry):
        return (f"regions[{name!r}] holds no chip: its mask is False for every row, so the {name} "
                f"split would be empty")
    bounds = ", ".join(f"{v:.6g}" for v in region.bounds)
    chips = ", ".join(f"{v:.6g}" for v in frame.total_bounds)
    hint = ""
    if frame.crs is not None and frame.crs.is_geographic and max(map(abs, region.bounds)) > 360:
        hint = " (its coordinates look like metres: reproject it to longitude/latitude first)"
    return (f"regions[{name!r}] holds no chip centre: the region's bounds ({bounds}) do not reach the "
            f"chips' ({chips}). A region must be a geometry in the index's CRS, {crs}{hint}")


def leakage(train: Any, other: Any, *, gap: float = 1) -> float:
    """Share of the chips of ``other`` that lie closer than ``gap`` chips to a chip of
    ``train`` (0-1): 0 for a :func:`spatial_split`; high for a random chip split, whose
    test chips sit beside (or on, on another date) training chips.

    Raises:
        TypeError: ``train`` or ``other`` is not a DataFrame.
        ValueError: ``gap < 0`` (or not a finite number); ``train`` or ``other`` without
            footprints, ``crs``, ``width`` or ``height``.
    """
    import pandas as pd

    gap = check_number("gap", gap, minimum=0)
    _check_index("train", train)
    _check_index("other", other)
    if len(other) == 0 or gap == 0:
        return 0.0
    both = pd.concat([train, other], ignore_index=True)
    projected = _projected(both)
    side = _chip_side_m(both, projected)
    candidates = np.arange(len(train), len(both))
    close = _close(candidates, np.arange(len(train)), both, projected,
                   float(gap * np.nanmax(side)) - _TOLERANCE_M)
    return float(close.mean())
