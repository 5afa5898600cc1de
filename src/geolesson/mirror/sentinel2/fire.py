"""The simulated fire on an absolute 10 m grid around its perimeter: where and when it burned, and how badly.

The truth is the mapped perimeter (``data/rhodes_burn_scar_true.geojson``). The fire itself
is less tidy, in the ways that make a dNBR threshold miss burned land inside a perimeter
(see the scenario file's ``[fire]`` section and its references):

- its **edge** wanders around the perimeter (smooth noise of ``edge_m``, features
  ``edge_spacing_m`` apart), so pixels along the outline are mixed or mislabelled;
- its **severity** (the fraction of a pixel turned to char and ash, 0-1) varies in patches
  (``severity_mean`` +- ``severity_spread``) and falls to nothing over the last ``fringe_m``
  towards the edge: a low-severity fringe;
- **unburned islands** (a share ``unburned_islands`` of the burned area, in patches about
  ``island_spacing_m`` across) did not burn at all.

Pixels burn on a day between the fire's first and last, spreading outwards from the ignition
point. Every field is computed once per process on one grid that covers the perimeter with a
margin, anchored to absolute positions like :mod:`geolesson.mirror.noise`; a tile, crop or
strip reads its part with :meth:`FireGrid.read`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import rasterio.features
from pyproj import Transformer
from scipy import ndimage

from geolesson.mirror.noise import Y_REF, fractal_noise
from geolesson.mirror.sentinel2.geometry import read_polygon
from geolesson.mirror.sentinel2.scenario import GSD, Fire

PERIMETER = "rhodes_burn_scar_true"
MARGIN_M = 1000.0  # the grid reaches this far beyond the perimeter (>> edge_m)


@dataclass(frozen=True)
class FireGrid:
    """The fire on a 10 m grid whose top-left pixel is at absolute (row0, col0) (rows counted
    south from :data:`geolesson.mirror.noise.Y_REF`, columns east from x = 0).

    Attributes:
        perimeter: (H, W) bool, pixel centres inside the mapped perimeter (the truth).
        severity: (H, W) float32 char fraction 0-1; 0 where nothing burned.
        burn_day: (H, W) float32 day of year the pixel burns; inf where nothing burned.
    """

    row0: int
    col0: int
    perimeter: np.ndarray
    severity: np.ndarray
    burn_day: np.ndarray

    def read(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(perimeter, severity, burn_day) at absolute ``rows`` x ``cols`` (consecutive ranges):
        False, 0 and inf off the grid."""
        shape = (len(rows), len(cols))
        perimeter = np.zeros(shape, bool)
        severity = np.zeros(shape, "float32")
        burn_day = np.full(shape, np.inf, "float32")
        h, w = self.perimeter.shape
        r0, r1 = max(rows[0] - self.row0, 0), min(rows[-1] + 1 - self.row0, h)
        c0, c1 = max(cols[0] - self.col0, 0), min(cols[-1] + 1 - self.col0, w)
        if r0 < r1 and c0 < c1:
            dst = (slice(r0 + self.row0 - rows[0], r1 + self.row0 - rows[0]),
                   slice(c0 + self.col0 - cols[0], c1 + self.col0 - cols[0]))
            perimeter[dst] = self.perimeter[r0:r1, c0:c1]
            severity[dst] = self.severity[r0:r1, c0:c1]
            burn_day[dst] = self.burn_day[r0:r1, c0:c1]
        return perimeter, severity, burn_day


@lru_cache(maxsize=2)
def fire_grid(seed: int, epsg: int, fire: Fire) -> FireGrid:
    """The fire of a scenario (its ``seed``, ``epsg`` and ``fire``), on land only."""
    polygon = read_polygon(PERIMETER, epsg)
    x0, y0, x1, y1 = polygon.bounds
    col0 = int(np.floor((x0 - MARGIN_M) / GSD))
    col1 = int(np.ceil((x1 + MARGIN_M) / GSD))
    row0 = int(np.floor((Y_REF - y1 - MARGIN_M) / GSD))
    row1 = int(np.ceil((Y_REF - y0 + MARGIN_M) / GSD))
    rows = np.arange(row0, row1, dtype=np.int64)
    cols = np.arange(col0, col1, dtype=np.int64)
    transform = rasterio.Affine(GSD, 0, col0 * GSD, 0, -GSD, Y_REF - row0 * GSD)
    shape = (len(rows), len(cols))
    land = rasterio.features.rasterize([read_polygon("rhodes_island", epsg)], out_shape=shape,
                                       transform=transform, dtype="uint8") == 1
    perimeter = rasterio.features.rasterize([polygon], out_shape=shape, transform=transform,
                                            dtype="uint8") == 1
    perimeter &= land
    # signed distance to the perimeter (metres, + inside), plus the wandering of the real edge
    inside = ndimage.distance_transform_edt(perimeter) * GSD - GSD / 2
    outside = ndimage.distance_transform_edt(~perimeter) * GSD - GSD / 2
    spacing_px = fire.edge_spacing_m / GSD
    depth = (np.where(perimeter, inside, -outside)
             + fire.edge_m * fractal_noise(seed, 11, rows, cols, spacing_px)).astype("float32")
    burned = (depth > 0) & land

    patches = np.clip(fire.severity_mean + fire.severity_spread * fractal_noise(seed, 7, rows, cols, 40), 0.03, 1.0)
    fringe = np.clip(depth / fire.fringe_m, 0, 1)
    islands = fractal_noise(seed, 13, rows, cols, fire.island_spacing_m / GSD)
    unburned = islands > np.quantile(islands[burned], 1 - fire.unburned_islands)
    severity = np.where(burned & ~unburned, patches * fringe, 0).astype("float32")

    to_utm = Transformer.from_crs(4326, epsg, always_xy=True)
    ix, iy = to_utm.transform(*fire.ignition)
    far = max(np.hypot(x - ix, y - iy) for x, y in polygon.exterior.coords) + fire.edge_m * 4
    xs = (cols + 0.5) * GSD
    ys = Y_REF - (rows + 0.5) * GSD
    spread = np.clip(np.hypot(xs[None, :] - ix, ys[:, None] - iy) / far, 0, 1)
    d0, d1 = fire.first_day.timetuple().tm_yday, fire.last_day.timetuple().tm_yday
    burn_day = np.where(severity > 0, d0 + (d1 - d0) * spread, np.inf).astype("float32")
    return FireGrid(row0, col0, perimeter, severity, burn_day)
