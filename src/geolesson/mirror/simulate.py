"""Simulate Sentinel-2 L2A surface reflectance and SCL over the scenario, deterministically.

The simulation is a small physical caricature, not a radiative-transfer model:

* land and sea come from a hand-digitised coastline (``data/rhodes_island.geojson``);
* land cover (pine forest, shrub, dry grass and fields, bare soil, villages) comes
  from seeded smooth noise, with the burn scar's area forced to forest or shrub;
* each cover type has a green (early June) and a dry (late September) spectrum;
  a date's spectrum is interpolated by the season's dryness;
* pixels inside ``data/rhodes_burn_scar_true.geojson`` turn into char and ash on
  their burn day, which spreads from the ignition point between the fire's first
  and last day, with a per-pixel severity;
* clouds are thresholded smooth noise reaching the date's cloud cover, mixed over
  the surface by their opacity, with shadows cast to the north-west (sun in the
  south-east at the 09:06 UTC overpass);
* SCL follows the ESA L2A classes: 0 nodata, 3 cloud shadow, 4 vegetation,
  5 not vegetated, 6 water, 7 unclassified, 8/9 cloud medium/high probability,
  10 thin cirrus.

Spectra are typical surface reflectances (0-1) of Mediterranean cover types, chosen so
that NDVI, NBR and dNBR land in the ranges reported for the 2023 Rhodes fire.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import rasterio.features
import shapely
from pyproj import Transformer
from scipy import ndimage

from geolesson._home import data_dir
from geolesson.mirror.scenario import GSD, Acquisition, Scenario, Tile

BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")

# cover type -> (green spectrum, dry spectrum), reflectance 0-1 in BANDS order
WATER, FOREST, SHRUB, GRASS, BARE, BUILT = range(6)
SPECTRA = {
    WATER: ((0.060, 0.045, 0.025, 0.015, 0.008, 0.005), (0.060, 0.045, 0.025, 0.015, 0.008, 0.005)),
    FOREST: ((0.030, 0.055, 0.032, 0.290, 0.150, 0.070), (0.034, 0.058, 0.040, 0.250, 0.170, 0.085)),
    SHRUB: ((0.045, 0.070, 0.060, 0.250, 0.210, 0.120), (0.055, 0.080, 0.085, 0.220, 0.260, 0.165)),
    GRASS: ((0.055, 0.085, 0.080, 0.260, 0.250, 0.150), (0.080, 0.110, 0.150, 0.220, 0.330, 0.250)),
    BARE: ((0.100, 0.140, 0.180, 0.240, 0.320, 0.260), (0.105, 0.145, 0.185, 0.245, 0.330, 0.270)),
    BUILT: ((0.120, 0.130, 0.150, 0.180, 0.220, 0.200), (0.120, 0.130, 0.150, 0.180, 0.220, 0.200)),
}
CHAR = np.array((0.035, 0.040, 0.045, 0.070, 0.150, 0.150), dtype="float32")  # fresh burn, high severity
CLOUD = np.array((0.45, 0.46, 0.47, 0.52, 0.38, 0.28), dtype="float32")
SHADOW_FACTOR = 0.35
SHADOW_SHIFT_PX = (-36, -48)  # rows, cols (north-west) for a sun ~25 deg off zenith in the south-east

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
    """One simulated acquisition of one tile, at 10 m.

    Attributes:
        reflectance: (6, H, W) float32 surface reflectance 0-1 in ``BANDS`` order, NaN for nodata.
        scl: (H, W) uint8 scene classification at 10 m (the writer decimates it to 20 m).
    """

    reflectance: np.ndarray
    scl: np.ndarray


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale_px: float) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian random field with a correlation length of ``scale_px``."""
    factor = max(1, int(scale_px // 4))
    small = (shape[0] // factor + 2, shape[1] // factor + 2)
    field = ndimage.gaussian_filter(rng.standard_normal(small, dtype="float32"), scale_px / factor, mode="wrap")
    field = ndimage.zoom(field, factor, order=1)[: shape[0], : shape[1]]
    return ((field - field.mean()) / field.std()).astype("float32")


def read_polygon(name: str, epsg: int) -> shapely.Geometry:
    """A polygon from ``data/<name>.geojson`` (EPSG:4326), projected to ``epsg``."""
    import json

    gj = json.loads((data_dir() / f"{name}.geojson").read_text())
    geom = shapely.geometry.shape(gj["features"][0]["geometry"])
    to_utm = Transformer.from_crs(4326, epsg, always_xy=True)
    return shapely.transform(geom, lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1])))


class World:
    """The scenario's surface on the union of the tiles' 10 m grids (all tiles share it)."""

    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        x0, y0, x1, y1 = scenario.bounds
        self.x_min, self.y_max = x0, y1
        self.shape = (round((y1 - y0) / GSD), round((x1 - x0) / GSD))
        self.transform = rasterio.Affine(GSD, 0, x0, 0, -GSD, y1)

    def rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng([self.scenario.seed, *key])

    def rasterize(self, geom: shapely.Geometry) -> np.ndarray:
        return rasterio.features.rasterize([geom], out_shape=self.shape, transform=self.transform, dtype="uint8") == 1

    @cached_property
    def land(self) -> np.ndarray:
        return self.rasterize(read_polygon("rhodes_island", self.scenario.epsg))

    @cached_property
    def burn_scar(self) -> np.ndarray:
        return self.rasterize(read_polygon("rhodes_burn_scar_true", self.scenario.epsg)) & self.land

    @cached_property
    def cover(self) -> np.ndarray:
        """(H, W) uint8 cover type (WATER, FOREST, SHRUB, GRASS, BARE, BUILT)."""
        rng = self.rng(1)
        inland = ndimage.distance_transform_edt(self.land) * GSD  # metres from the sea
        upland = np.clip(inland / 6000.0, 0, 1) + 0.35 * smooth_noise(rng, self.shape, 150)
        texture = smooth_noise(rng, self.shape, 25)
        cover = np.full(self.shape, GRASS, dtype="uint8")
        cover[upland > 0.55] = SHRUB
        cover[(upland > 0.75) | ((upland > 0.45) & (texture > 0.6))] = FOREST
        cover[(texture < -1.3) & (upland < 0.9)] = BARE
        scar = self.burn_scar
        cover[scar] = np.where(texture[scar] > -0.4, FOREST, SHRUB)
        rows, cols = np.indices(self.shape, dtype="float32")
        to_utm = Transformer.from_crs(4326, self.scenario.epsg, always_xy=True)
        for lon, lat, radius in VILLAGES:
            x, y = to_utm.transform(lon, lat)
            c, r = ~self.transform * (x, y)
            dist = np.hypot(rows - r, cols - c) * GSD
            cover[(dist < radius * (1 + 0.3 * texture)) & ~scar] = BUILT
        cover[~self.land] = WATER
        return cover

    @cached_property
    def brightness(self) -> np.ndarray:
        """(H, W) multiplicative texture within cover types (canopy gaps, soils, roofs)."""
        rng = self.rng(2)
        return (1 + 0.08 * smooth_noise(rng, self.shape, 6) + 0.04 * rng.standard_normal(self.shape, dtype="float32")).astype("float32")

    @cached_property
    def burn_day(self) -> np.ndarray:
        """(H, W) float32 day of year each pixel burns (inf outside the scar)."""
        sc = self.scenario
        to_utm = Transformer.from_crs(4326, sc.epsg, always_xy=True)
        c, r = ~self.transform * to_utm.transform(*sc.fire_ignition)
        rows, cols = np.indices(self.shape, dtype="float32")
        dist = np.hypot(rows - r, cols - c)
        d0 = sc.fire_first_day.timetuple().tm_yday
        d1 = sc.fire_last_day.timetuple().tm_yday
        scar = self.burn_scar
        spread = dist / dist[scar].max()
        day = np.full(self.shape, np.inf, dtype="float32")
        day[scar] = d0 + (d1 - d0) * spread[scar]
        return day

    @cached_property
    def severity(self) -> np.ndarray:
        """(H, W) float32 burn severity 0-1 (fraction of the pixel turned to char)."""
        sev = np.clip(0.75 + 0.25 * smooth_noise(self.rng(3), self.shape, 40), 0.25, 1.0)
        return np.where(self.burn_scar, sev, 0).astype("float32")

    def dryness(self, when: dt.datetime) -> float:
        """0 in early June, 1 at the end of September: the Mediterranean summer drought."""
        doy = when.timetuple().tm_yday
        return float(np.clip((doy - 152) / (273 - 152), 0, 1))

    def surface(self, acq: Acquisition) -> np.ndarray:
        """(6, H, W) float32 clear-sky surface reflectance on the acquisition date."""
        d = self.dryness(acq.datetime)
        table = np.array([(1 - d) * np.array(g) + d * np.array(y) for g, y in (SPECTRA[k] for k in range(6))], dtype="float32")
        refl = table[self.cover].transpose(2, 0, 1) * self.brightness
        burnt = self.burn_day <= acq.datetime.timetuple().tm_yday
        if burnt.any():
            sev = self.severity[burnt]
            refl[:, burnt] = refl[:, burnt] * (1 - sev) + CHAR[:, None] * sev * self.brightness[burnt]
        # a small per-date radiometric wobble (aerosol, sun angle)
        gain = 1 + 0.015 * self.rng(4, acq.index).standard_normal(6).astype("float32")
        return refl * gain[:, None, None]

    def clouds(self, acq: Acquisition) -> np.ndarray:
        """(H, W) float32 cloud opacity 0-1 whose cloudy fraction (opacity > 0.05) is the date's cloud cover."""
        target = acq.cloud_cover / 100.0
        if target <= 0:
            return np.zeros(self.shape, dtype="float32")
        if target >= 1:
            return np.ones(self.shape, dtype="float32")
        rng = self.rng(5, acq.index)
        field = smooth_noise(rng, self.shape, 90) + 0.25 * smooth_noise(rng, self.shape, 12)
        threshold = np.quantile(field[::4, ::4], 1 - target)
        return np.clip(0.05 + (field - threshold) / 1.2, 0, 1) * (field > threshold)

    def scene(self, acq: Acquisition, tile: Tile) -> Scene:
        """The acquisition cropped to the tile, with clouds, shadows, nodata and SCL."""
        r0 = round((self.y_max - tile.y_max) / GSD)
        c0 = round((tile.x_min - self.x_min) / GSD)
        win = np.s_[r0 : r0 + tile.height, c0 : c0 + tile.width]
        surface = self.surface(acq)
        alpha = self.clouds(acq)
        shadow = np.roll((alpha > 0.3), SHADOW_SHIFT_PX, axis=(0, 1)) & (alpha <= 0.05)
        surface[:, shadow] *= SHADOW_FACTOR
        refl = surface * (1 - alpha) + CLOUD[:, None, None] * alpha
        noise = self.rng(6, acq.index).standard_normal(refl.shape, dtype="float32")
        refl = (refl + 0.002 * noise)[(slice(None), *win)]
        refl = np.clip(refl, -0.0999, 1.5)

        alpha, shadow = alpha[win], shadow[win]
        water = (self.cover == WATER)[win]
        red, nir = refl[2], refl[3]
        ndvi = (nir - red) / (nir + red)
        scl = np.where(ndvi > 0.4, SCL_VEG, SCL_NOTVEG).astype("uint8")
        scl[water] = SCL_WATER
        scl[self.rng(7, acq.index).random(scl.shape) < 0.0005] = SCL_UNCLASSIFIED
        scl[shadow] = SCL_SHADOW
        scl[(alpha > 0.05) & (alpha <= 0.3)] = SCL_CIRRUS
        scl[(alpha > 0.3) & (alpha <= 0.6)] = SCL_CLOUD_MEDIUM
        scl[alpha > 0.6] = SCL_CLOUD_HIGH

        nodata = partial_orbit_mask(self.scenario, acq, tile)
        refl[:, nodata] = np.nan
        scl[nodata] = SCL_NODATA
        return Scene(refl.astype("float32"), scl)


def partial_orbit_line(scenario: Scenario, acq: Acquisition, tile: Tile) -> tuple[float, float] | None:
    """The swath's west edge on this date as ``x = a + b * (y_max - y)`` in metres, or None for a full scene."""
    if acq.index not in scenario.partial_orbit.get(tile.mgrs, ()):
        return None
    # Sentinel-2's swath edge runs about 12 degrees east of north over Rhodes (descending orbit)
    return tile.x_min + 0.35 * tile.width * GSD, -0.21


def partial_orbit_mask(scenario: Scenario, acq: Acquisition, tile: Tile) -> np.ndarray:
    """(H, W) bool, True where the tile lies outside the swath on this date."""
    line = partial_orbit_line(scenario, acq, tile)
    if line is None:
        return np.zeros((tile.height, tile.width), dtype=bool)
    a, b = line
    rows, cols = np.indices((tile.height, tile.width), dtype="float32")
    x = tile.x_min + (cols + 0.5) * GSD
    return x < a + b * (rows + 0.5) * GSD


def footprint(scenario: Scenario, acq: Acquisition, tile: Tile) -> shapely.Polygon:
    """The scene's valid-data footprint in the scenario CRS (metres)."""
    x0, y0, x1, y1 = tile.bounds()
    box = shapely.box(x0, y0, x1, y1)
    line = partial_orbit_line(scenario, acq, tile)
    if line is None:
        return box
    a, b = line
    height = y1 - y0
    east = shapely.Polygon([(a, y1), (x1 + 1, y1), (x1 + 1, y0), (a + b * height, y0)])
    return box.intersection(east)
