"""Simulate Sentinel-2 L2A surface reflectance, SCL, aerosol and water vapour over the scenario, deterministically.

The simulation is a small physical caricature, not a radiative-transfer model:

* land and sea come from a hand-digitised coastline (``data/rhodes_island.geojson``);
* land cover (pine forest, shrub, dry grass and fields, bare soil, villages) comes
  from seeded smooth noise, with the burn perimeter's area forced to forest or shrub;
* each cover type has a green (early June) and a dry (late September) spectrum;
  a date's spectrum is interpolated by the season's dryness;
* farmland on the lowland grass is cut or cures on its own days (:mod:`.farmland`);
* the fire (:mod:`.fire`) turns pixels into char and ash on their burn day, which spreads
  from the ignition point between the fire's first and last day, by each pixel's severity,
  with a wandering edge, a low-severity fringe and unburned islands;
* clouds are thresholded smooth noise reaching the date's cloud cover, mixed over
  the surface by their opacity, with shadows cast to the north-west (sun in the
  south-east at the 09:00 UTC overpass), lit by bluish skylight;
* aerosol optical thickness and water vapour are smooth fields, with the fire's smoke
  over the island while it burns;
* no data west of the swath's edge (:mod:`.geometry`);
* SCL follows the ESA L2A classes: 0 nodata, 3 cloud shadow, 4 vegetation,
  5 not vegetated, 6 water, 7 unclassified, 8/9 cloud medium/high probability,
  10 thin cirrus.

Spectra are typical surface reflectances (0-1) of Mediterranean cover types, chosen so
that NDVI, NBR and dNBR land in the ranges reported for the 2023 Rhodes fire.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
import rasterio.features
import shapely
from pyproj import Transformer
from scipy import ndimage

from geolesson.mirror.noise import Y_REF, approximate_normals, fractal_noise, position_hash, value_noise
from geolesson.mirror.sentinel2 import farmland
from geolesson.mirror.sentinel2.fire import fire_grid
from geolesson.mirror.sentinel2.geometry import nodata_mask, read_polygon
from geolesson.mirror.sentinel2.scenario import GSD, Acquisition, Scenario, Tile

BANDS = ("blue", "green", "red", "nir", "nir08", "swir16", "swir22")

# cover type -> (green spectrum, dry spectrum), reflectance 0-1 in BANDS order. B8A (nir08)
# reads 3-4 % above B08 (nir) over vegetation and soil (B08's wide band reaches down the red
# edge). Open water: the clear, oligotrophic Aegean (remote-sensing reflectance of a few
# thousandths per steradian in the blue, a tenth of that in the red), plus what a bottom-of-
# atmosphere correction leaves of skylight: dark beyond the blue.
WATER, FOREST, SHRUB, GRASS, BARE, BUILT = range(6)
SPECTRA = {
    WATER: ((0.030, 0.015, 0.006, 0.004, 0.0035, 0.002, 0.0015), (0.030, 0.015, 0.006, 0.004, 0.0035, 0.002, 0.0015)),
    FOREST: ((0.030, 0.055, 0.032, 0.290, 0.300, 0.150, 0.070), (0.034, 0.058, 0.040, 0.250, 0.258, 0.170, 0.085)),
    SHRUB: ((0.045, 0.070, 0.060, 0.250, 0.258, 0.210, 0.120), (0.055, 0.080, 0.085, 0.220, 0.228, 0.260, 0.165)),
    GRASS: ((0.055, 0.085, 0.080, 0.260, 0.268, 0.250, 0.150), (0.080, 0.110, 0.150, 0.220, 0.228, 0.330, 0.250)),
    BARE: ((0.100, 0.140, 0.180, 0.240, 0.250, 0.320, 0.260), (0.105, 0.145, 0.185, 0.245, 0.255, 0.330, 0.270)),
    BUILT: ((0.120, 0.130, 0.150, 0.180, 0.184, 0.220, 0.200), (0.120, 0.130, 0.150, 0.180, 0.184, 0.220, 0.200)),
}
CHAR = np.array((0.035, 0.040, 0.045, 0.070, 0.074, 0.150, 0.150), dtype="float32")  # fresh burn, high severity
CLOUD = np.array((0.45, 0.46, 0.47, 0.52, 0.52, 0.38, 0.28), dtype="float32")
# Light left in a cloud's shadow, per band: the diffuse skylight (and light from the cloud and
# its surroundings) that still reaches the ground is bluer than direct sunlight, as scattering
# falls with wavelength, so a shadow darkens the SWIR more than the visible: NBR rises in it.
SHADOW_LIGHT = np.array((0.45, 0.40, 0.36, 0.31, 0.31, 0.24, 0.22), dtype="float32")
SHADOW_SHIFT_PX = (-36, -48)  # rows, cols (north-west) for a sun ~25 deg off zenith in the south-east

# Per-pixel texture within a cover type (multiplicative): smooth "canopy gap" noise with
# features 6 px apart plus white speckle. Kept moderate: real 10 m scenes have more, but
# it is what the DEFLATE-compressed COGs (and so the mirror's size) are made of.
GAP_TEXTURE, PIXEL_TEXTURE = 0.04, 0.01

# Sensor noise grows with the signal like photon (shot) noise: sigma = 0.001 reflectance at
# reflectance 0.25, i.e. SNR ~ 250 near the reference radiance, about the in-flight SNR of the
# 10 m bands (Sentinel-2 MSI L1C Data Quality Report; the requirement is >= 142 for B04).
# Dark water is thus quieter than bright land, as in real scenes.
NOISE_AT_REFERENCE, REFERENCE_REFLECTANCE = 0.001, 0.25


def sensor_noise_std(reflectance: np.ndarray) -> np.ndarray:
    """(H, W) float32 noise standard deviation (reflectance) for a band's (H, W) reflectance."""
    return NOISE_AT_REFERENCE * np.sqrt(np.clip(reflectance, 0, None) / REFERENCE_REFLECTANCE)


# Whole-tile simulation in strips: rows per strip (about 0.5 GB of working arrays for a
# 10980-pixel-wide tile), and the largest tile whose surface is kept between dates.
STRIP_ROWS = 512
CACHED_TILE_PIXELS = 4096 * 4096

SCL_NODATA, SCL_SHADOW, SCL_VEG, SCL_NOTVEG, SCL_WATER, SCL_UNCLASSIFIED = 0, 3, 4, 5, 6, 7
SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH, SCL_CIRRUS = 8, 9, 10

# villages of south-east Rhodes (lon, lat, radius in metres)
VILLAGES = (
    (27.962, 36.160, 450),  # Laerma
    (28.010, 36.080, 600),  # Lardos
    (27.968, 36.048, 400),  # Kiotari
    (27.920, 36.020, 550),  # Gennadi
    (27.990, 36.110, 350),  # Asklipio area
    (27.895, 35.990, 350),  # Lachania
    (28.050, 36.140, 400),  # Kalathos
    (27.870, 36.100, 300),  # Istrios
    (27.940, 36.215, 350),  # Archipoli
)


@dataclass(frozen=True)
class Scene:
    """One simulated acquisition of one tile, at 10 m (aerosol and water vapour at 20 m).

    Attributes:
        reflectance: (7, H, W) float32 surface reflectance 0-1 in ``BANDS`` order, NaN for nodata.
        scl: (H, W) uint8 scene classification at 10 m (the writer decimates it to 20 m).
        aot: (H / 2, W / 2) float32 aerosol optical thickness at 550 nm (unitless), NaN for nodata.
        wvp: (H / 2, W / 2) float32 water vapour column in cm, NaN for nodata.
    """

    reflectance: np.ndarray
    scl: np.ndarray
    aot: np.ndarray
    wvp: np.ndarray


INLAND_RES = 50.0  # metres: distance to the sea is computed on this coarser grid over the whole region


@lru_cache(maxsize=2)
def _inland_distance(epsg: int, region: tuple[float, float, float, float]) -> tuple[np.ndarray, float, float]:
    """(rows, cols) float32 metres to the nearest sea on a 50 m grid over ``region``, with its origin."""
    x0, y0, x1, y1 = region
    shape = (round((y1 - y0) / INLAND_RES), round((x1 - x0) / INLAND_RES))
    transform = rasterio.Affine(INLAND_RES, 0, x0, 0, -INLAND_RES, y1)
    land = rasterio.features.rasterize([read_polygon("rhodes_island", epsg)], out_shape=shape,
                                       transform=transform, dtype="uint8")
    return (ndimage.distance_transform_edt(land) * INLAND_RES).astype("float32"), x0, y1


class TileSurface:
    """The static surface (land, cover, texture, fire) on one tile's 10 m grid, or on the rows
    ``rows = (start, stop)`` of it (a strip): the strip's arrays equal those rows of the whole
    tile's, element for element, since every field is anchored to absolute positions and
    windows around points are located on the whole tile's grid.

    Off the island's bounding box the surface is open sea, so the land's fields are computed
    only on the part of the surface inside that box (by a surface of that part: the same
    values, as every field is anchored to absolute positions) and filled in elsewhere. A whole
    MGRS tile is five-sixths sea.
    """

    def __init__(self, scenario: Scenario, tile: Tile, rows: tuple[int, int] | None = None):
        self.scenario, self.tile = scenario, tile
        self.row_start, self.row_stop = rows or (0, tile.height)
        if not 0 <= self.row_start < self.row_stop <= tile.height:
            raise ValueError(f"rows={rows!r} is not a row range inside the tile's 0..{tile.height}")
        self.shape = (self.row_stop - self.row_start, tile.width)
        self.transform = tile.transform(GSD)  # the whole tile's grid: local windows are located on it
        self.rows = np.arange(self.row_start, self.row_stop, dtype=np.int64) + round((Y_REF - tile.y_max) / GSD)
        self.cols = np.arange(tile.width, dtype=np.int64) + round(tile.x_min / GSD)
        self._island_part = self._find_island_part()

    def _find_island_part(self) -> tuple[tuple[slice, slice], "TileSurface"] | str | None:
        """``"all"`` when the whole surface lies in the island's bounding box; None when none of it
        does; else the (rows, cols) slices of the part that does and a surface of that part."""
        x0, y0, x1, y1 = read_polygon("rhodes_island", self.scenario.epsg).bounds
        tile = self.tile
        c0 = max(0, int(np.floor((x0 - tile.x_min) / GSD)))
        c1 = min(tile.width, int(np.ceil((x1 - tile.x_min) / GSD)))
        r0 = max(self.row_start, int(np.floor((tile.y_max - y1) / GSD)))
        r1 = min(self.row_stop, int(np.ceil((tile.y_max - y0) / GSD)))
        if r0 >= r1 or c0 >= c1:
            return None
        if (r0, r1, c0, c1) == (self.row_start, self.row_stop, 0, tile.width):
            return "all"
        part = Tile(tile.mgrs, tile.x_min + c0 * GSD, tile.y_max - r0 * GSD, c1 - c0, r1 - r0,
                    tile.origin_x, tile.origin_y, tile.sensing_offset_s)
        box = (slice(r0 - self.row_start, r1 - self.row_start), slice(c0, c1))
        return box, TileSurface(self.scenario, part)

    def _sea_and(self, field: str, sea_value, dtype: str) -> np.ndarray:
        """``field`` of the island's part of this surface, ``sea_value`` elsewhere."""
        out = np.full(self.shape, sea_value, dtype=dtype)
        if self._island_part is not None:
            box, part = self._island_part
            out[box] = getattr(part, field)
        return out

    @property
    def _all_island(self) -> bool:
        return self._island_part == "all"

    def noise(self, key: int, spacing: float) -> np.ndarray:
        """Seeded fractal noise (:func:`~geolesson.mirror.noise.fractal_noise`) on this strip's
        pixels: (rows, cols) float32, unit variance, features ``spacing`` pixels apart; the same ``key``
        gives the same field on every strip and date."""
        return fractal_noise(self.scenario.seed, key, self.rows, self.cols, spacing)

    def rasterize(self, geom: shapely.Geometry) -> np.ndarray:
        """(rows, cols) bool: the strip's pixels whose centres lie in ``geom`` (scenario CRS, metres)."""
        transform = self.transform @ rasterio.Affine.translation(0, self.row_start)
        return rasterio.features.rasterize([geom], out_shape=self.shape, transform=transform, dtype="uint8") == 1

    def local_window(self, x: float, y: float, radius: float) -> tuple[slice, slice, np.ndarray, np.ndarray]:
        """Row/col slices (of this surface's arrays) of the pixels within ``radius`` metres of (x, y),
        and their centres' offsets in metres; located on the whole tile, then cut to the strip."""
        c, r = ~self.transform @ (x, y)
        n = int(np.ceil(radius / GSD)) + 1
        height, width = self.tile.height, self.tile.width
        r0, c0 = min(max(0, int(r) - n), height), min(max(0, int(c) - n), width)
        r1 = max(r0, min(height, int(r) + n + 1))  # empty when (x, y) is far off the tile
        cs = slice(c0, max(c0, min(width, int(c) + n + 1)))
        dy = (np.arange(r0, r1) + 0.5 - r) * GSD
        dx = (np.arange(cs.start, cs.stop) + 0.5 - c) * GSD
        lo = min(max(r0, self.row_start), self.row_stop)
        hi = max(lo, min(r1, self.row_stop))
        return slice(lo - self.row_start, hi - self.row_start), cs, dy[lo - r0:hi - r0], dx

    @cached_property
    def land(self) -> np.ndarray:
        """(rows, cols) bool: the strip's land pixels (Rhodes only: the rest of a tile is sea)."""
        if not self._all_island:
            return self._sea_and("land", False, "bool")
        return self.rasterize(read_polygon("rhodes_island", self.scenario.epsg))

    @cached_property
    def _fire(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sc = self.scenario
        return fire_grid(sc.seed, sc.epsg, sc.fire).read(self.rows, self.cols)

    @cached_property
    def burn_scar(self) -> np.ndarray:
        """(H, W) bool: inside the mapped perimeter (the truth), on land."""
        return self._fire[0]

    @cached_property
    def severity(self) -> np.ndarray:
        """(H, W) float32 burn severity 0-1 (fraction of the pixel turned to char); 0 unburned."""
        return self._fire[1]

    @cached_property
    def burn_day(self) -> np.ndarray:
        """(H, W) float32 day of year each pixel burns (inf where nothing burns)."""
        return self._fire[2]

    @cached_property
    def farmland_kind(self) -> np.ndarray:
        """(H, W) uint8 :mod:`.farmland` parcel kind, on the lowland grass outside the perimeter only."""
        if not self._all_island:
            return self._sea_and("farmland_kind", farmland.NONE, "uint8")
        fields = self.scenario.fields
        if fields is None:
            return np.zeros(self.shape, "uint8")
        kind = farmland.parcels(self.scenario.seed, fields, self.rows, self.cols)[0]
        return np.where((self.cover == GRASS) & ~self.burn_scar, kind, farmland.NONE).astype("uint8")

    @cached_property
    def farmland_phase(self) -> np.ndarray:
        """(H, W) float32 each parcel's day, a fraction 0-1 (:func:`farmland.parcels`)."""
        if not self._all_island:
            return self._sea_and("farmland_phase", 0, "float32")
        fields = self.scenario.fields
        if fields is None:
            return np.zeros(self.shape, "float32")
        return np.ascontiguousarray(farmland.parcels(self.scenario.seed, fields, self.rows, self.cols)[1])

    @cached_property
    def cover(self) -> np.ndarray:
        """(H, W) uint8 cover type (WATER, FOREST, SHRUB, GRASS, BARE, BUILT)."""
        if not self._all_island:
            return self._sea_and("cover", WATER, "uint8")
        dist, x0, y1 = _inland_distance(self.scenario.epsg, self.scenario.region)
        ri = ((y1 - self.tile.y_max) / INLAND_RES
              + (np.arange(self.row_start, self.row_stop) + 0.5) * GSD / INLAND_RES).astype(np.int64)
        ci = ((self.tile.x_min - x0) / INLAND_RES
              + (np.arange(self.shape[1]) + 0.5) * GSD / INLAND_RES).astype(np.int64)
        inland = dist[ri[:, None], ci[None, :]]  # metres from the sea
        upland = np.clip(inland / 6000.0, 0, 1) + 0.35 * self.noise(1, 150)
        texture = self.noise(3, 25)
        cover = np.full(self.shape, GRASS, dtype="uint8")
        cover[upland > 0.55] = SHRUB
        cover[(upland > 0.75) | ((upland > 0.45) & (texture > 0.6))] = FOREST
        cover[(texture < -1.3) & (upland < 0.9)] = BARE
        scar = self.burn_scar
        cover[scar] = np.where(texture[scar] > -0.4, FOREST, SHRUB)
        to_utm = Transformer.from_crs(4326, self.scenario.epsg, always_xy=True)
        for lon, lat, radius in VILLAGES:
            rs, cs, dy, dx = self.local_window(*to_utm.transform(lon, lat), 1.5 * radius)
            dist_v = np.hypot(dy[:, None], dx[None, :])
            village = (dist_v < radius * (1 + 0.3 * texture[rs, cs])) & ~scar[rs, cs]
            cover[rs, cs][village] = BUILT
        cover[~self.land] = WATER
        return cover

    @cached_property
    def brightness(self) -> np.ndarray:
        """(H, W) multiplicative texture within cover types (canopy gaps, soils, roofs); 1 on open
        water, whose pixels vary by the sensor's noise only (a calm sea)."""
        if not self._all_island:
            return self._sea_and("brightness", 1, "float32")
        (white,) = approximate_normals(self.scenario.seed, 5, self.rows, self.cols, 1)
        texture = GAP_TEXTURE * value_noise(self.scenario.seed, 6, self.rows, self.cols, 6) + PIXEL_TEXTURE * white
        return (1 + np.where(self.land, texture, 0)).astype("float32")


class World:
    """The scenario's surface and weather; ``scene`` renders one acquisition of one tile.

    All randomness is anchored to absolute positions and dates, so every tile, crop or full,
    sees the same ground and the same clouds where they overlap.
    """

    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        self._surfaces: dict[tuple[Tile, tuple[int, int] | None], TileSurface] = {}

    def surface_of(self, tile: Tile, rows: tuple[int, int] | None = None) -> TileSurface:
        """The tile's surface (of the strip ``rows`` only, if given); kept for reuse across dates
        unless the tile is larger than ``CACHED_TILE_PIXELS`` (a whole MGRS tile's would be GBs)."""
        key = (tile, rows)
        if key in self._surfaces:
            return self._surfaces[key]
        surface = TileSurface(self.scenario, tile, rows)
        if tile.width * tile.height <= CACHED_TILE_PIXELS:
            self._surfaces[key] = surface
        return surface

    def strips(self, acq: Acquisition, tile: Tile, strip_rows: int = STRIP_ROWS,
               rows: tuple[int, int] | None = None) -> Iterator[tuple[int, Scene]]:
        """The scene (of its ``rows = (start, stop)`` only, if given) in strips of ``strip_rows`` rows
        (the last one shorter): (first row, Scene) pairs whose arrays, stacked, equal
        ``scene(acq, tile, rows)``. Peak memory follows the strip, not the tile.

        Raises:
            ValueError: ``strip_rows`` is not a positive even number (20 m pixels pair 10 m rows).
        """
        if isinstance(strip_rows, bool) or not isinstance(strip_rows, int) or strip_rows <= 0 or strip_rows % 2:
            raise ValueError(f"strip_rows={strip_rows!r} must be a positive even number of rows")
        first, stop = rows or (0, tile.height)
        for start in range(first, stop, strip_rows):
            yield start, self.scene(acq, tile, (start, min(stop, start + strip_rows)))

    def rng(self, *key: int) -> np.random.Generator:
        """A NumPy generator seeded by the scenario's seed and the integers ``key``: the same key
        gives the same draws in every build and process."""
        return np.random.default_rng([self.scenario.seed, *key])

    def dryness(self, when: dt.datetime) -> float:
        """0 in early June, 1 at the end of September: the Mediterranean summer drought."""
        doy = when.timetuple().tm_yday
        return float(np.clip((doy - 152) / (273 - 152), 0, 1))

    def reflectance(self, acq: Acquisition, tile: Tile, rows: tuple[int, int] | None = None) -> np.ndarray:
        """(7, H, W) float32 clear-sky surface reflectance on the acquisition date (of ``rows`` only, if given)."""
        s = self.surface_of(tile, rows)
        d = self.dryness(acq.datetime)
        n = len(BANDS)
        table = np.array([(1 - d) * np.array(g) + d * np.array(y) for g, y in (SPECTRA[k] for k in range(6))],
                         dtype="float32")
        # a small per-date radiometric wobble (aerosol, sun angle)
        gain = 1 + 0.015 * self.rng(4, acq.index).standard_normal(n).astype("float32")
        day = acq.datetime.timetuple().tm_yday
        fields = self.scenario.fields
        farm, farm_spectra = (farmland.reflectance(s.farmland_kind, s.farmland_phase, day, fields)
                              if fields is not None else (np.zeros(s.shape, bool), None))
        burnt = s.burn_day <= day
        refl = np.empty((n, *s.shape), dtype="float32")
        for b in range(n):
            band = table[:, b][s.cover]
            if farm.any():
                band[farm] = farm_spectra[b]
            band *= s.brightness
            if burnt.any():
                sev = s.severity[burnt]
                band[burnt] = band[burnt] * (1 - sev) + CHAR[b] * sev * s.brightness[burnt]
            refl[b] = band * gain[b]
        return refl

    def atmosphere(self, acq: Acquisition, tile: Tile,
                   rows: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(aot, wvp) on the 20 m grid of the tile (of ``rows`` only, if given): float32 aerosol optical
        thickness at 550 nm and water vapour in cm, as Sen2Cor retrieves them: smooth fields, with
        a summer Aegean's clean air (AOT about 0.1-0.2, 2-3 cm of water vapour) and the fire's smoke
        over it while it burns (AOT up to about 0.6 south of the ignition point, downwind of the
        north wind)."""
        s = self.surface_of(tile, rows)
        seed, r, c = self.scenario.seed, s.rows[::2], s.cols[::2]
        rng = self.rng(8, acq.index)
        # features about 50 km apart: Sen2Cor's maps are smoothed over kilometres, and clean
        # maritime air varies little across a tile
        aot = 0.10 + 0.05 * abs(rng.standard_normal()) + 0.01 * value_noise(seed, 300 + acq.index, r, c, 2400)
        wvp = 2.4 + 0.3 * rng.standard_normal() + 0.08 * value_noise(seed, 400 + acq.index, r, c, 2400)
        fire = self.scenario.fire
        if fire.first_day <= acq.datetime.date() <= fire.last_day:
            x, y = Transformer.from_crs(4326, self.scenario.epsg, always_xy=True).transform(*fire.ignition)
            dx = (c + 1.0) * GSD - x
            dy = (Y_REF - (r + 1.0) * GSD) - (y - 6000.0)
            aot = aot + 0.45 * np.exp(-(dx[None, :] ** 2 + dy[:, None] ** 2) / (2 * 7000.0**2))
        return aot.astype("float32"), np.broadcast_to(wvp, aot.shape).astype("float32")

    def _cloud_field(self, acq: Acquisition, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        seed = self.scenario.seed
        return (fractal_noise(seed, 100 + 2 * acq.index, rows, cols, 90)
                + 0.25 * value_noise(seed, 500 + acq.index, rows, cols, 12))

    @lru_cache(maxsize=64)
    def _cloud_threshold(self, acq: Acquisition) -> float:
        """The field value above which the date's cloud cover is reached over the union of the crops."""
        x0, y0, x1, y1 = self.scenario.bounds
        rows = np.arange(round((Y_REF - y1) / GSD), round((Y_REF - y0) / GSD), 4, dtype=np.int64)
        cols = np.arange(round(x0 / GSD), round(x1 / GSD), 4, dtype=np.int64)
        return float(np.quantile(self._cloud_field(acq, rows, cols), 1 - acq.cloud_cover / 100.0))

    def clouds(self, acq: Acquisition, tile: Tile, shift: tuple[int, int] = (0, 0),
               rows: tuple[int, int] | None = None) -> np.ndarray:
        """(H, W) float32 cloud opacity 0-1 (optionally at positions shifted by ``shift`` pixels; of
        ``rows`` only, if given); the cloudy fraction (opacity > 0.05) over the crops is the date's cloud cover."""
        s = self.surface_of(tile, rows)
        if acq.cloud_cover <= 0:
            return np.zeros(s.shape, dtype="float32")
        if acq.cloud_cover >= 100:
            return np.ones(s.shape, dtype="float32")
        field = self._cloud_field(acq, s.rows + shift[0], s.cols + shift[1])
        threshold = self._cloud_threshold(acq)
        return (np.clip(0.05 + (field - threshold) / 1.2, 0, 1) * (field > threshold)).astype("float32")

    def scene(self, acq: Acquisition, tile: Tile, rows: tuple[int, int] | None = None) -> Scene:
        """The acquisition over the tile (over its rows ``rows = (start, stop)`` only, if given),
        with clouds, shadows, nodata and SCL.

        Raises:
            ValueError: ``rows`` is not a range inside the tile.
        """
        s = self.surface_of(tile, rows)
        refl = self.reflectance(acq, tile, rows)
        alpha = self.clouds(acq, tile, rows=rows)
        # a shadow falls where the cloud SHADOW_SHIFT_PX away (towards the sun) is thick
        caster = self.clouds(acq, tile, shift=(-SHADOW_SHIFT_PX[0], -SHADOW_SHIFT_PX[1]), rows=rows)
        shadow = (caster > 0.3) & (alpha <= 0.05)
        noise = approximate_normals(self.scenario.seed, 1000 + 50 * acq.index, s.rows, s.cols, len(BANDS))
        # clouds and shadows cover a small part of most scenes: touch only their pixels
        shaded, cloudy = np.flatnonzero(shadow), np.flatnonzero(alpha)
        opacity = alpha.reshape(-1)[cloudy]
        for b in range(len(BANDS)):
            band = refl[b]
            flat = band.reshape(-1)
            flat[shaded] *= SHADOW_LIGHT[b]
            flat[cloudy] = flat[cloudy] * (1 - opacity) + CLOUD[b] * opacity
            band += sensor_noise_std(band) * noise[b]
            np.clip(band, -0.0999, 1.5, out=band)

        red, nir = refl[2], refl[3]
        with np.errstate(invalid="ignore", divide="ignore"):
            ndvi = (nir - red) / (nir + red)
        scl = np.where(ndvi > 0.4, SCL_VEG, SCL_NOTVEG).astype("uint8")
        scl[s.cover == WATER] = SCL_WATER
        unclassified = position_hash(self.scenario.seed, 2000 + acq.index, s.rows[:, None], s.cols[None, :])
        scl[(unclassified >> np.uint64(40)) < np.uint64(int(0.0005 * 2**24))] = SCL_UNCLASSIFIED
        classes = scl.reshape(-1)
        classes[shaded] = SCL_SHADOW
        classes[cloudy] = np.select([opacity > 0.6, opacity > 0.3, opacity > 0.05],
                                    [np.uint8(c) for c in (SCL_CLOUD_HIGH, SCL_CLOUD_MEDIUM, SCL_CIRRUS)],
                                    classes[cloudy])

        aot, wvp = self.atmosphere(acq, tile, rows)
        nodata = nodata_mask(self.scenario, acq, tile, rows)
        if nodata.any():
            refl[:, nodata] = np.nan
            scl[nodata] = SCL_NODATA
            aot[nodata[::2, ::2]] = np.nan
            wvp[nodata[::2, ::2]] = np.nan
        return Scene(refl, scl, aot, wvp)
