"""Where a scene has data, and the vectors the simulation draws on (coastline, burn perimeter).

A scene has no data west of its swath's edge (SCL 0, DN 0), as real Sentinel-2 tiles at the
edge of an orbit's swath do: the real west edge of the scenario's orbit
(``season.swath_west_edge``, which cuts the north-west corner of tile 35SNA) on every date,
and the simulated partial swaths of ``season.partial_orbit`` on theirs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import shapely
from pyproj import Transformer

from geolesson._home import data_dir
from geolesson.mirror.sentinel2.scenario import GSD, Acquisition, Scenario, Tile

# The simulated partial swaths: an edge through this fraction of the crop's width at its top,
# running about 12 degrees east of north, as Sentinel-2's descending swath edges do over Rhodes
# (the real edge of orbit 107 runs 12.8 degrees east of north across tile 35SNA).
PARTIAL_EDGE_AT, PARTIAL_EDGE_SLOPE = 0.35, -0.21


@lru_cache(maxsize=8)
def read_polygon(name: str, epsg: int) -> shapely.Geometry:
    """A polygon from ``data/<name>.geojson`` (EPSG:4326), projected to ``epsg``."""
    gj = json.loads((data_dir() / f"{name}.geojson").read_text())
    geom = shapely.geometry.shape(gj["features"][0]["geometry"])
    to_utm = Transformer.from_crs(4326, epsg, always_xy=True)
    return shapely.transform(geom, lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1])))


@dataclass(frozen=True)
class SwathEdge:
    """A swath's west edge, ``x = x_top + slope * (y_top - y)`` in metres: no data west of it."""

    x_top: float
    y_top: float
    slope: float  # metres east per metre south

    def x_at(self, y: np.ndarray) -> np.ndarray:
        """The edge's easting (metres) at northings ``y`` (metres, any shape); no data west of it."""
        return self.x_top + self.slope * (self.y_top - y)


def swath_edges(scenario: Scenario, acq: Acquisition, tile: Tile) -> list[SwathEdge]:
    """The swath edges that may cut ``tile`` on this date (real and simulated)."""
    edges = []
    if scenario.swath_west_edge is not None:
        to_utm = Transformer.from_crs(4326, scenario.epsg, always_xy=True)
        (xa, ya), (xb, yb) = (to_utm.transform(*p) for p in scenario.swath_west_edge)
        edges.append(SwathEdge(xa, ya, (xb - xa) / (ya - yb)))
    if acq.index in scenario.partial_orbit.get(tile.mgrs, ()):
        edges.append(SwathEdge(tile.x_min + PARTIAL_EDGE_AT * tile.width * GSD, tile.y_max, PARTIAL_EDGE_SLOPE))
    return edges


def nodata_mask(scenario: Scenario, acq: Acquisition, tile: Tile, rows: tuple[int, int] | None = None) -> np.ndarray:
    """(H, W) bool, True where the tile (its rows ``rows = (start, stop)`` only, if given) lies
    outside the swath on this date."""
    start, stop = rows or (0, tile.height)
    mask = np.zeros((stop - start, tile.width), dtype=bool)
    y = tile.y_max - (np.arange(start, stop) + 0.5) * GSD
    x = tile.x_min + (np.arange(tile.width) + 0.5) * GSD
    for edge in swath_edges(scenario, acq, tile):
        mask |= x[None, :] < edge.x_at(y)[:, None]
    return mask


def footprint(scenario: Scenario, acq: Acquisition, tile: Tile) -> shapely.Polygon:
    """The scene's valid-data footprint in the scenario CRS (metres)."""
    x0, y0, x1, y1 = tile.bounds()
    shape = shapely.box(x0, y0, x1, y1)
    for edge in swath_edges(scenario, acq, tile):
        top, bottom = edge.x_at(np.array([y1 + 1, y0 - 1]))
        east = shapely.Polygon([(top, y1 + 1), (x1 + 1, y1 + 1), (x1 + 1, y0 - 1), (bottom, y0 - 1)])
        shape = shape.intersection(east)
    return shape
