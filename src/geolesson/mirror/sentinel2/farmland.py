"""Farmland on the lowland grass: parcels whose NBR drops between two dates without any fire.

The commission errors of a dNBR threshold in Mediterranean landscapes come mostly from
agriculture (see the scenario file's ``[fields]`` section and its references). Two kinds of
parcel, each on its own day:

- **irrigated** fodder or vegetable plots, cut every ``cut_cycle_days`` and regrown: green
  (NBR about 0.6) just before a cut, bare stubble and soil (NBR about 0) just after;
- **senescent** annual grass and stubble fields that cure within about a week, once, on a
  day in July or August: NBR falls from about 0.3 to about -0.05.

Either looks like neither char nor ash on any single date: bright in the red and the SWIR.
Parcels are ``parcel_m`` rectangles on the absolute 10 m grid, with a one-pixel margin of
the surrounding cover between them; a parcel's kind and day come from a hash of its position.
"""

from __future__ import annotations

import numpy as np

from geolesson.mirror.noise import position_hash
from geolesson.mirror.sentinel2.scenario import GSD, Fields

NONE, IRRIGATED, SENESCENT = 0, 1, 2
# surface reflectance 0-1 in simulation.BANDS order (blue, green, red, nir, nir08, swir16, swir22)
IRRIGATED_GREEN = (0.035, 0.075, 0.040, 0.400, 0.410, 0.220, 0.100)
IRRIGATED_CUT = (0.085, 0.115, 0.150, 0.230, 0.240, 0.300, 0.240)
SENESCENT_GREEN = (0.055, 0.085, 0.075, 0.290, 0.300, 0.250, 0.150)
SENESCENT_CURED = (0.090, 0.120, 0.165, 0.240, 0.250, 0.335, 0.265)
CURING_DAYS = 6.0
CURING_FIRST_DAY, CURING_DAYS_SPAN = 182, 62  # 1 July, for two months
REGROWTH_LAG = 0.15  # of a cycle: bare before the crop shows again


def parcels(seed: int, fields: Fields, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(kind, phase) at absolute ``rows`` x ``cols``: the parcel kind (NONE, IRRIGATED, SENESCENT)
    before it is restricted to lowland grass, and each parcel's day as a fraction 0-1."""
    pc, pr = (max(1, round(m / GSD)) for m in fields.parcel_m)
    prow, pcol = (rows // pr)[:, None], (cols // pc)[None, :]
    u = (position_hash(seed, 21, prow, pcol) >> np.uint64(11)).astype(np.float64) / 2**53
    kind = np.where(u < fields.irrigated, IRRIGATED,
                    np.where(u < fields.irrigated + fields.senescent, SENESCENT, NONE)).astype("uint8")
    margin = ((rows % pr) == 0)[:, None] | ((cols % pc) == 0)[None, :]
    kind[margin] = NONE
    phase = ((position_hash(seed, 22, prow, pcol) >> np.uint64(11)).astype(np.float64) / 2**53).astype("float32")
    return kind, np.broadcast_to(phase, kind.shape)


def reflectance(kind: np.ndarray, phase: np.ndarray, day_of_year: int, fields: Fields) -> tuple[np.ndarray, np.ndarray]:
    """(mask, spectra): the farmland pixels (kind != NONE) and their (bands, n) reflectance on the day."""
    mask = kind != NONE
    k, p = kind[mask], phase[mask]
    cycle = fields.cut_cycle_days
    growth = ((day_of_year + p * cycle) % cycle) / cycle  # 0 just cut .. 1 about to be cut
    grown = np.clip((growth - REGROWTH_LAG) / (1 - REGROWTH_LAG), 0, 1)
    cured = np.clip((day_of_year - (CURING_FIRST_DAY + p * CURING_DAYS_SPAN)) / CURING_DAYS + 0.5, 0, 1)
    irrigated = k == IRRIGATED
    out = np.empty((len(IRRIGATED_GREEN), len(k)), dtype="float32")
    for b in range(len(IRRIGATED_GREEN)):
        out[b] = np.where(irrigated,
                          IRRIGATED_CUT[b] + (IRRIGATED_GREEN[b] - IRRIGATED_CUT[b]) * grown,
                          SENESCENT_GREEN[b] + (SENESCENT_CURED[b] - SENESCENT_GREEN[b]) * cured)
    return mask, out
