"""The Sentinel-1 part of the mirror's scenario: areas, tracks and passes, from ``[sentinel1]``
in ``data/mirror_scenario.toml``.

Orbit numbers follow Sentinel-1A's reference orbit: 175 orbits in a 12-day repeat cycle, so
an orbit lasts 12 d / 175 = 98.743 min, and the relative orbit (track) of absolute orbit
``n`` is ``(n - 73) % 175 + 1`` (ESA, Sentinel-1 User Handbook, section "Orbit"; the formula
reproduces Planetary Computer's items, e.g. absolute 53498 -> relative 51). Absolute orbits
are counted from the ascending-node crossing of a real one (orbit 53498, 2024-04-19
04:18:06 UTC, read from a Planetary Computer sentinel-1-rtc item's sensing time).
"""

from __future__ import annotations

import datetime as dt
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from affine import Affine

from geolesson._home import SCENARIO_FILE, data_dir

PIXEL_SPACING = 10.0  # metres: Sentinel-1 IW GRDH pixel spacing, kept by the RTC product
ORBITS_PER_CYCLE = 175
REPEAT_DAYS = 12
ORBIT_PERIOD = dt.timedelta(days=REPEAT_DAYS) / ORBITS_PER_CYCLE
REFERENCE_ORBIT = 53498
REFERENCE_ANX = dt.datetime(2024, 4, 19, 4, 18, 6, tzinfo=dt.timezone.utc)
INCLINATION_DEG = 98.18  # Sentinel-1's sun-synchronous orbit
SLICE_SECONDS = 24.997  # a GRD slice spans about 25 s of azimuth time (~170 km)


def relative_orbit(absolute: int) -> int:
    """Sentinel-1A's relative orbit (1-175) of an absolute orbit number."""
    return (absolute - 73) % ORBITS_PER_CYCLE + 1


def absolute_orbit(when: dt.datetime, orbit_state: str, latitude: float) -> int:
    """Sentinel-1A's absolute orbit number of a pass over ``latitude`` (degrees) at ``when`` (UTC).

    The time since the ascending node is the satellite's argument of latitude over 360 degrees
    times the orbital period: ``u = asin(sin(lat) / sin(i))`` ascending, ``180 - u`` descending.
    """
    u = math.degrees(math.asin(math.sin(math.radians(latitude)) / math.sin(math.radians(INCLINATION_DEG))))
    if orbit_state == "descending":
        u = 180.0 - u
    anx = when - ORBIT_PERIOD * (u / 360.0)
    return REFERENCE_ORBIT + math.floor((anx - REFERENCE_ANX) / ORBIT_PERIOD + 1e-6)


@dataclass(frozen=True)
class Area:
    """One simulated scene footprint on a UTM 10 m grid (a crop of a real ~250 x 170 km slice)."""

    index: int
    name: str
    epsg: int
    x_min: float
    y_max: float
    width: int
    height: int
    labels: str  # file name in data/: the land-cover truth the simulation rasterizes
    swath_edge: tuple[int, ...]  # pass indices (date order) whose scene the swath edge crosses

    def transform(self) -> Affine:
        """The area's north-up affine transform at :data:`PIXEL_SPACING` metres (UTM, EPSG ``epsg``)."""
        return Affine(PIXEL_SPACING, 0.0, self.x_min, 0.0, -PIXEL_SPACING, self.y_max)

    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` of the area in metres of its UTM CRS."""
        return (self.x_min, self.y_max - self.height * PIXEL_SPACING,
                self.x_min + self.width * PIXEL_SPACING, self.y_max)

    @property
    def utm_zone(self) -> int:
        """The UTM zone number of the area's CRS (EPSG 326xx)."""
        return self.epsg % 100


@dataclass(frozen=True)
class Pass:
    """One Sentinel-1A acquisition of one area: a slice's sensing interval and its orbit."""

    index: int  # position among the area's passes, in date order
    area: Area
    start: dt.datetime  # UTC, the slice's first line
    end: dt.datetime
    orbit_state: str  # "ascending" or "descending"
    absolute_orbit: int
    slice_number: int
    total_slices: int

    @property
    def datetime(self) -> dt.datetime:
        """The middle of the sensing interval (Planetary Computer's ``datetime``)."""
        return self.start + (self.end - self.start) / 2

    @property
    def relative_orbit(self) -> int:
        """Sentinel-1A's relative orbit (1-175) of this pass."""
        return relative_orbit(self.absolute_orbit)


@dataclass(frozen=True)
class S1Scenario:
    """The Sentinel-1 scenario as :func:`load_s1_scenario` reads it from the scenario file: the
    areas (each in its own UTM CRS), every pass of each, and the leaf-out interval."""
    seed: int
    collection: str
    areas: tuple[Area, ...]
    passes: tuple[Pass, ...]  # every area's passes, area by area, each in date order
    leaf_out: tuple[dt.date, dt.date]

    def passes_of(self, area: Area) -> tuple[Pass, ...]:
        """The passes over ``area``, in date order."""
        return tuple(p for p in self.passes if p.area == area)


def _area_latitude(epsg: int, bounds: tuple[float, float, float, float]) -> float:
    from pyproj import Transformer

    x0, y0, x1, y1 = bounds
    return Transformer.from_crs(epsg, 4326, always_xy=True).transform((x0 + x1) / 2, (y0 + y1) / 2)[1]


def load_s1_scenario(path: Path | None = None) -> S1Scenario | None:
    """Read ``[sentinel1]`` from the scenario file (default ``data/mirror_scenario.toml``); None
    when the file has no such section (the mirror then holds no Sentinel-1 collection).

    Raises:
        ValueError: a window off the 10 m grid, an unknown orbit state, a swath-edge index
            beyond the area's passes, or a label file that does not exist.
    """
    path = path or data_dir() / SCENARIO_FILE
    cfg = tomllib.loads(Path(path).read_text()).get("sentinel1")
    if cfg is None:
        return None
    repeat = dt.timedelta(days=int(cfg["repeat_days"]))
    n_per_track = int(cfg["passes_per_track"])
    areas, passes = [], []
    for i, a in enumerate(cfg["areas"]):
        x_min, y_max, width, height = a["window"]
        if x_min % PIXEL_SPACING or y_max % PIXEL_SPACING:
            raise ValueError(f"sentinel1 area {a['name']}: window {a['window']} is not on the 10 m grid")
        if not (data_dir() / a["labels"]).is_file():
            raise ValueError(f"sentinel1 area {a['name']}: labels file data/{a['labels']} does not exist")
        n_passes = n_per_track * len(a["tracks"])
        edges = tuple(int(k) for k in a.get("swath_edge", ()))
        if any(not 0 <= k < n_passes for k in edges):
            raise ValueError(f"sentinel1 area {a['name']}: swath_edge {list(edges)} "
                             f"must be pass indices 0..{n_passes - 1}")
        area = Area(i, a["name"], int(a["epsg"]), float(x_min), float(y_max), int(width), int(height),
                    a["labels"], edges)
        areas.append(area)
        latitude = _area_latitude(area.epsg, area.bounds())
        raw = []
        for t in a["tracks"]:
            if t["orbit_state"] not in ("ascending", "descending"):
                raise ValueError(f"sentinel1 area {a['name']}: orbit_state {t['orbit_state']!r} is not "
                                 "'ascending' or 'descending'")
            first = dt.datetime.fromisoformat(t["first_start"]).replace(tzinfo=dt.timezone.utc)
            for k in range(n_per_track):
                start = first + k * repeat
                raw.append((start, t))
        for j, (start, t) in enumerate(sorted(raw, key=lambda r: r[0])):
            end = start + dt.timedelta(seconds=SLICE_SECONDS)
            mid = start + (end - start) / 2
            passes.append(Pass(j, area, start, end, t["orbit_state"],
                               absolute_orbit(mid, t["orbit_state"], latitude),
                               int(t["slice_number"]), int(t["total_slices"])))
    leaf0, leaf1 = (dt.date.fromisoformat(d) for d in cfg["leaf_out"])
    return S1Scenario(int(cfg["seed"]), cfg["collection"], tuple(areas), tuple(passes), (leaf0, leaf1))
