"""The mirror's scenario: tiles, dates, weather and fire, read from ``data/mirror_scenario.toml``."""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path

from affine import Affine

from geolesson._home import SCENARIO_FILE, data_dir

GSD = 10.0  # metres, Sentinel-2 bands B02, B03, B04, B08
MGRS_TILE_PX = 10980  # a Sentinel-2 L1C/L2A tile is 109.8 km square


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

    def full(self) -> "Tile":
        """The whole 10980 x 10980 pixel MGRS tile this crop lies in."""
        return Tile(self.mgrs, self.origin_x, self.origin_y, MGRS_TILE_PX, MGRS_TILE_PX, self.origin_x, self.origin_y)

    @property
    def utm_zone(self) -> int:
        return int(self.mgrs[:2])

    @property
    def latitude_band(self) -> str:
        return self.mgrs[2]

    @property
    def grid_square(self) -> str:
        return self.mgrs[3:]

    def transform(self, resolution: float = GSD) -> Affine:
        return Affine(resolution, 0.0, self.x_min, 0.0, -resolution, self.y_max)

    def bounds(self) -> tuple[float, float, float, float]:
        return (self.x_min, self.y_max - self.height * GSD, self.x_min + self.width * GSD, self.y_max)


@dataclass(frozen=True)
class Acquisition:
    """One overpass: a date with its scene-wide cloud cover, imaging every tile."""

    index: int
    datetime: dt.datetime
    platform: str
    cloud_cover: float  # percent, target for the union of the tiles


@dataclass(frozen=True)
class Scenario:
    seed: int
    collection: str
    epsg: int
    tiles: tuple[Tile, ...]
    acquisitions: tuple[Acquisition, ...]
    relative_orbit: int
    partial_orbit: dict[str, tuple[int, ...]]
    fire_ignition: tuple[float, float]  # lon, lat
    fire_first_day: dt.date
    fire_last_day: dt.date
    full_size: dict[str, tuple[int, ...]]  # tile -> date indices whose item covers the whole MGRS tile

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


def load_scenario(path: Path | None = None) -> Scenario:
    """Read the scenario file (default ``data/mirror_scenario.toml``).

    Raises:
        ValueError: the file is inconsistent (cloud cover list length, windows off the 10 m grid).
    """
    path = path or data_dir() / SCENARIO_FILE
    cfg = tomllib.loads(Path(path).read_text())
    tiles = []
    for t in cfg["tiles"]:
        x_min, y_max, width, height = t["window"]
        ox, oy = t["tile_origin"]
        if (x_min - ox) % GSD or (oy - y_max) % GSD:
            raise ValueError(f"tile {t['mgrs']}: window {t['window']} is not on the tile's 10 m grid")
        tiles.append(Tile(t["mgrs"], float(x_min), float(y_max), int(width), int(height), float(ox), float(oy)))

    season = cfg["season"]
    start = dt.date.fromisoformat(season["start"])
    stop = dt.date.fromisoformat(season["stop"])
    overpass = dt.time.fromisoformat(season["overpass_utc"])
    dates = []
    day = start
    while day <= stop:
        dates.append(day)
        day += dt.timedelta(days=season["revisit_days"])
    cover = season["cloud_cover"]
    if len(cover) != len(dates):
        raise ValueError(f"season.cloud_cover has {len(cover)} values for {len(dates)} dates")
    acquisitions = tuple(
        Acquisition(
            index=i,
            datetime=dt.datetime.combine(d, overpass, tzinfo=dt.timezone.utc),
            # Sentinel-2A and 2B alternate, each revisiting every 10 days
            platform="sentinel-2a" if i % 2 == 0 else "sentinel-2b",
            cloud_cover=float(c),
        )
        for i, (d, c) in enumerate(zip(dates, cover))
    )
    fire = cfg["fire"]
    return Scenario(
        seed=int(cfg["seed"]),
        collection=cfg["collection"],
        epsg=int(cfg["epsg"]),
        tiles=tuple(tiles),
        acquisitions=acquisitions,
        relative_orbit=int(season["relative_orbit"]),
        partial_orbit={k: tuple(v) for k, v in season.get("partial_orbit", {}).items()},
        fire_ignition=tuple(fire["ignition"]),
        fire_first_day=dt.date.fromisoformat(fire["first_day"]),
        fire_last_day=dt.date.fromisoformat(fire["last_day"]),
        full_size={k: tuple(v) for k, v in cfg.get("full_size", {}).items()},
    )
