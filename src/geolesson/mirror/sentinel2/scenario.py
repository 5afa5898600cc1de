"""The mirror's scenario: tiles, calendar, weather, fire and farmland, read from ``data/mirror_scenario.toml``.

The file says which of its facts are real (Earth Search's calendar and identifiers over
Rhodes), derived or simulated; this module only reads and checks it.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path

from affine import Affine

from geolesson._home import SCENARIO_FILE, data_dir

GSD = 10.0  # metres, Sentinel-2 bands B02, B03, B04, B08
MGRS_TILE_PX = 10980  # a Sentinel-2 L1C/L2A tile is 109.8 km square
PLATFORMS = ("sentinel-2a", "sentinel-2b")


@dataclass(frozen=True)
class Tile:
    """One simulated scene footprint: a crop (``window``) of a real MGRS tile's 10 m grid."""

    mgrs: str
    x_min: float
    y_max: float
    width: int
    height: int
    origin_x: float  # the whole MGRS tile's upper-left corner
    origin_y: float
    sensing_offset_s: float = 0.0  # sensed this many seconds after the first tile of a datatake

    def full(self) -> "Tile":
        """The whole 10980 x 10980 pixel MGRS tile this crop lies in."""
        return Tile(self.mgrs, self.origin_x, self.origin_y, MGRS_TILE_PX, MGRS_TILE_PX, self.origin_x,
                    self.origin_y, self.sensing_offset_s)

    @property
    def is_full(self) -> bool:
        """Whether this is the whole 10980 x 10980 px MGRS tile rather than a crop of it."""
        return (self.width, self.height) == (MGRS_TILE_PX, MGRS_TILE_PX)

    @property
    def utm_zone(self) -> int:
        """The MGRS tile's UTM zone number (``35`` for ``35SNA``)."""
        return int(self.mgrs[:2])

    @property
    def latitude_band(self) -> str:
        """The MGRS latitude band letter (``"S"`` for ``35SNA``)."""
        return self.mgrs[2]

    @property
    def grid_square(self) -> str:
        """The MGRS 100 km grid square (``"NA"`` for ``35SNA``)."""
        return self.mgrs[3:]

    def transform(self, resolution: float = GSD) -> Affine:
        """The crop's north-up affine transform at ``resolution`` metres per pixel, in the
        scenario's UTM CRS, from its upper-left corner (``x_min``, ``y_max``)."""
        return Affine(resolution, 0.0, self.x_min, 0.0, -resolution, self.y_max)

    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` of the crop in metres of the scenario's UTM CRS (10 m grid)."""
        return (self.x_min, self.y_max - self.height * GSD, self.x_min + self.width * GSD, self.y_max)


@dataclass(frozen=True)
class Acquisition:
    """One overpass: a datatake imaging every tile, with its scene-wide cloud cover.

    ``datetime`` is when the first tile was sensed (a tile's item adds its
    ``sensing_offset_s``); ``datatake_start`` when the datatake (the imaging segment) began.
    """

    index: int
    datetime: dt.datetime
    platform: str
    cloud_cover: float  # percent, target for the union of the tiles
    datatake_start: dt.datetime

    def sensed(self, tile: Tile) -> dt.datetime:
        """When ``tile`` was sensed: the item's ``datetime``."""
        return self.datetime + dt.timedelta(seconds=tile.sensing_offset_s)


@dataclass(frozen=True)
class Fire:
    """The burn scar's spread and what a dNBR threshold gets wrong inside it (see the scenario file)."""

    ignition: tuple[float, float]  # lon, lat
    first_day: dt.date
    last_day: dt.date
    edge_m: float  # the fire's edge wanders this far (1 sigma) around the mapped perimeter
    edge_spacing_m: float
    fringe_m: float  # severity rises from 0 at the edge to full over this depth
    severity_mean: float
    severity_spread: float
    unburned_islands: float  # fraction of the burned area left unburned in patches
    island_spacing_m: float


@dataclass(frozen=True)
class Fields:
    """Farmland on the lowland grass whose NBR drops between dates without a fire."""

    parcel_m: tuple[float, float]  # east-west, north-south
    irrigated: float  # share of parcels cut every cut_cycle_days
    senescent: float  # share of parcels curing once in July or August
    cut_cycle_days: int


@dataclass(frozen=True)
class Scenario:
    """The Sentinel-2 scenario as :func:`load_scenario` reads it from ``data/mirror_scenario.toml``:
    the tiles (UTM, EPSG ``epsg``), the calendar (``acquisitions``, in time order), Earth Search's
    relative orbit and processing baseline, the swath edges, and the simulated fire and fields.
    Date lists of the file become indices into ``acquisitions``."""
    seed: int
    collection: str
    epsg: int
    tiles: tuple[Tile, ...]
    acquisitions: tuple[Acquisition, ...]
    relative_orbit: int
    processing_baseline: str
    generation_after: dt.timedelta  # the product's generation time after its datatake's start
    swath_west_edge: tuple[tuple[float, float], tuple[float, float]] | None  # (lon, lat) x 2
    partial_orbit: dict[str, tuple[int, ...]]  # tile -> acquisition indices (simulated partial swaths)
    full_size: dict[str, tuple[int, ...]]  # tile -> acquisition indices whose item covers the whole MGRS tile
    fire: Fire
    fields: Fields | None

    def tile_for(self, acq: "Acquisition", tile: Tile) -> Tile:
        """The crop, or the whole MGRS tile on the dates listed in ``full_size``."""
        return tile.full() if acq.index in self.full_size.get(tile.mgrs, ()) else tile

    @property
    def region(self) -> tuple[float, float, float, float]:
        """Union of the whole MGRS tiles' bounds (metres)."""
        b = [t.full().bounds() for t in self.tiles]
        return (min(x[0] for x in b), min(x[1] for x in b), max(x[2] for x in b), max(x[3] for x in b))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """Union of the tiles' bounds in the scenario CRS (metres)."""
        b = [t.bounds() for t in self.tiles]
        return (min(x[0] for x in b), min(x[1] for x in b), max(x[2] for x in b), max(x[3] for x in b))


def _duration(text: str) -> dt.timedelta:
    t = dt.time.fromisoformat(text)
    return dt.timedelta(hours=t.hour, minutes=t.minute, seconds=t.second, microseconds=t.microsecond)


def _date_indices(name: str, table: dict, dates: list[dt.date]) -> dict[str, tuple[int, ...]]:
    """``{tile: [ISO dates]}`` -> ``{tile: acquisition indices}`` (ValueError naming a date off the calendar)."""
    out = {}
    for tile, days in table.items():
        indices = []
        for day in days:
            d = dt.date.fromisoformat(day)
            if d not in dates:
                raise ValueError(f"{name}: {tile} {day} is not an acquisition date "
                                 f"({dates[0]} to {dates[-1]} every {(dates[1] - dates[0]).days} days)")
            indices.append(dates.index(d))
        out[tile] = tuple(indices)
    return out


def load_scenario(path: Path | None = None) -> Scenario:
    """Read the scenario file (default ``data/mirror_scenario.toml``).

    Raises:
        ValueError: the file is inconsistent (cloud cover list length, windows off the 10 m grid,
            an unknown platform, a date in ``partial_orbit`` or ``full_size`` off the calendar).
    """
    path = path or data_dir() / SCENARIO_FILE
    cfg = tomllib.loads(Path(path).read_text())
    tiles = []
    for t in cfg["tiles"]:
        x_min, y_max, width, height = t["window"]
        ox, oy = t["tile_origin"]
        if (x_min - ox) % GSD or (oy - y_max) % GSD:
            raise ValueError(f"tile {t['mgrs']}: window {t['window']} is not on the tile's 10 m grid")
        tiles.append(Tile(t["mgrs"], float(x_min), float(y_max), int(width), int(height), float(ox), float(oy),
                          float(t.get("sensing_offset_s", 0.0))))

    season = cfg["season"]
    start = dt.date.fromisoformat(season["start"])
    stop = dt.date.fromisoformat(season["stop"])
    dates = []
    day = start
    while day <= stop:
        dates.append(day)
        day += dt.timedelta(days=season["revisit_days"])
    cover = season["cloud_cover"]
    if len(cover) != len(dates):
        raise ValueError(f"season.cloud_cover has {len(cover)} values for {len(dates)} dates")
    first = season["first_platform"]
    if first not in PLATFORMS:
        raise ValueError(f"season.first_platform={first!r}: use one of {PLATFORMS}")
    # Sentinel-2A and 2B alternate on the grid, each revisiting every 2 x revisit_days
    order = PLATFORMS if first == PLATFORMS[0] else PLATFORMS[::-1]
    sensing, datatake = _duration(season["sensing_utc"]), _duration(season["datatake_utc"])
    midnight = [dt.datetime.combine(d, dt.time(), tzinfo=dt.timezone.utc) for d in dates]
    acquisitions = tuple(
        Acquisition(index=i, datetime=m + sensing, platform=order[i % 2], cloud_cover=float(c),
                    datatake_start=m + datatake)
        for i, (m, c) in enumerate(zip(midnight, cover))
    )
    edge = season.get("swath_west_edge")
    f = cfg["fire"]
    fire = Fire(ignition=tuple(f["ignition"]), first_day=dt.date.fromisoformat(f["first_day"]),
                last_day=dt.date.fromisoformat(f["last_day"]), edge_m=float(f["edge_m"]),
                edge_spacing_m=float(f["edge_spacing_m"]), fringe_m=float(f["fringe_m"]),
                severity_mean=float(f["severity_mean"]), severity_spread=float(f["severity_spread"]),
                unburned_islands=float(f["unburned_islands"]), island_spacing_m=float(f["island_spacing_m"]))
    fl = cfg.get("fields")
    fields = None if fl is None else Fields(
        parcel_m=(float(fl["parcel_m"][0]), float(fl["parcel_m"][1])), irrigated=float(fl["irrigated"]),
        senescent=float(fl["senescent"]), cut_cycle_days=int(fl["cut_cycle_days"]))
    return Scenario(
        seed=int(cfg["seed"]),
        collection=cfg["collection"],
        epsg=int(cfg["epsg"]),
        tiles=tuple(tiles),
        acquisitions=acquisitions,
        relative_orbit=int(season["relative_orbit"]),
        processing_baseline=str(season["processing_baseline"]),
        generation_after=_duration(season["generation_after"]),
        swath_west_edge=None if edge is None else (tuple(edge[0]), tuple(edge[1])),
        partial_orbit=_date_indices("season.partial_orbit", season.get("partial_orbit", {}), dates),
        full_size=_date_indices("full_size", cfg.get("full_size", {}), dates),
        fire=fire,
        fields=fields,
    )
