"""Simulate Sentinel-1 IW RTC backscatter (gamma0, VV and VH) over the scenario's areas, deterministically.

A small physical caricature of C-band (5.405 GHz) dual-polarisation backscatter after
radiometric terrain correction, not a scattering model:

* the land cover is the committed truth ``data/<area>_landcover_true.geojson`` (EPSG:4326,
  property ``class``: ``water``, ``urban``, ``vegetation``), rasterized on the scene's 10 m
  grid (pixel centres), so the same vectors rasterized on a chip's grid are its labels;
* each class has a mean gamma0 in dB (``GAMMA0_DB``) and a texture:
  - calm **water** reflects the pulse away from the radar (specular surface scattering):
    VV about -22 dB, VH about -30 dB; wind roughens it by up to ``WIND_MAX_DB`` on windy
    dates (seeded weather), smoothly over kilometres;
  - **urban** land is bright from double bounce (wall-ground dihedrals) and point-like
    scatterers: VV about -5 dB with a strong, heavy-tailed texture that depends on the
    look direction (ascending and descending passes see different façades), and a low
    cross-polarisation ratio (VH/VV about -9 dB), because an aligned dihedral keeps the
    polarisation;
  - **vegetation** (parks, woods, river floodplains) scatters from a random volume of
    leaves and branches: VV in between (about -8.5 dB) and the highest VH/VV (about -6 dB);
    deciduous leaf-out between the scenario's ``leaf_out`` days raises VV by 1.0 dB and VH
    by 2.0 dB (the seasonal change).
  Values are typical C-band gamma0 of these covers at 30-45 degrees incidence (Ulaby & Long,
  *Microwave Radar and Radiometric Remote Sensing*, 2014, ch. 10-11). The ratio ordering —
  volume scattering depolarises most (a random cloud of dipoles gives VH/VV up to 1/3,
  -4.8 dB), a dihedral least — is the basis of the three-component decomposition of
  Freeman & Durden (IEEE TGRS 36(3), 1998).
* **speckle** is multiplicative: ``I = gamma0 * S`` with ``S ~ Gamma(shape=L, scale=1/L)``,
  mean 1, variance 1/L, so the equivalent number of looks ``ENL = mean(I)^2 / var(I) = L``
  over a homogeneous area (the L-look intensity distribution; Oliver & Quegan,
  *Understanding Synthetic Aperture Radar Images*, 2004, eq. 4.19). ``L = 4.4`` is the ENL
  of IW GRD high resolution (ESA Sentinel-1 Product Definition; Planetary Computer's
  ``sar:looks_equivalent_number``). Speckle is independent per pixel and per polarisation:
  real 10 m GRD pixels oversample the 20 x 22 m resolution and are slightly correlated;
* on the dates listed under ``swath_edge`` the edge of the 250 km IW swath crosses the
  scene: pixels beyond it are nodata (-32768), along a line parallel to the ground track
  (heading about -12 degrees ascending, 192 degrees descending at 35 N).

Every random field is a function of the absolute position on the area's UTM 10 m grid (and of
the pass), so crops of the same area agree where they overlap.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import rasterio.features
import shapely
from pyproj import Transformer

from geolesson._home import data_dir
from geolesson.mirror.noise import Y_REF, value_noise, white_noise
from geolesson.mirror.sentinel1.scenario import PIXEL_SPACING, Area, Pass, S1Scenario

NODATA = -32768.0  # Planetary Computer's RTC nodata (raster:bands)
LOOKS = 4.4  # equivalent number of looks of IW GRDH (sar:looks_equivalent_number)
POLARIZATIONS = ("vv", "vh")

CLASSES = {"water": 1, "urban": 2, "vegetation": 3}  # raster codes of the label classes; 0 = unlabelled
WATER, URBAN, VEGETATION = CLASSES["water"], CLASSES["urban"], CLASSES["vegetation"]
# class -> mean gamma0 (VV dB, VH dB) before texture; vegetation leaf-off (early April)
GAMMA0_DB = {
    WATER: (-22.0, -30.0),
    URBAN: (-5.0, -14.0),
    VEGETATION: (-9.0, -15.5),
}
LEAF_ON_GAIN_DB = (1.0, 2.0)  # vegetation VV, VH at full leaf-out
WIND_MAX_DB = 3.0  # water VV on the windiest date (VH gains half of it)

SPECKLE_BLOCK = 512  # speckle is drawn in blocks of the absolute grid, so crops agree


def _db_to_power(db: np.ndarray) -> np.ndarray:
    return np.power(np.float32(10.0), np.asarray(db, dtype="float32") / np.float32(10.0))


def speckle(seed: int, key: tuple[int, ...], rows: np.ndarray, cols: np.ndarray, looks: float = LOOKS) -> np.ndarray:
    """(len(rows), len(cols)) float32 gamma-distributed speckle, mean 1, variance ``1 / looks``.

    ``rows`` and ``cols`` are consecutive absolute grid indices (non-negative). Values come from
    ``numpy.random.default_rng([seed, *key, block_row, block_col])`` per 512 x 512 block of the
    absolute grid, so any window of the grid sees the same values.
    """
    b = SPECKLE_BLOCK
    out = np.empty((len(rows), len(cols)), dtype="float32")
    r_first, c_first = int(rows[0]), int(cols[0])
    for br in range(r_first // b, int(rows[-1]) // b + 1):
        for bc in range(c_first // b, int(cols[-1]) // b + 1):
            block = np.random.default_rng([seed, *key, br, bc]).gamma(looks, 1.0 / looks, size=(b, b))
            r0, r1 = max(br * b, r_first), min((br + 1) * b, int(rows[-1]) + 1)
            c0, c1 = max(bc * b, c_first), min((bc + 1) * b, int(cols[-1]) + 1)
            out[r0 - r_first:r1 - r_first, c0 - c_first:c1 - c_first] = block[r0 - br * b:r1 - br * b,
                                                                              c0 - bc * b:c1 - bc * b]
    return out


def read_labels(area: Area) -> list[tuple[shapely.Geometry, int]]:
    """The area's land-cover truth as (polygon in the area's UTM CRS, class code) pairs.

    Raises:
        ValueError: a feature's ``class`` is not one of ``CLASSES``.
    """
    gj = json.loads((data_dir() / area.labels).read_text())
    to_utm = Transformer.from_crs(4326, area.epsg, always_xy=True)
    shapes = []
    for f in gj["features"]:
        cls = f["properties"].get("class")
        if cls not in CLASSES:
            raise ValueError(f"data/{area.labels}: class {cls!r} is not one of {sorted(CLASSES)}")
        geom = shapely.geometry.shape(f["geometry"])
        geom = shapely.transform(geom, lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1])))
        shapes.append((geom, CLASSES[cls]))
    return shapes


@dataclass(frozen=True)
class S1Scene:
    """One simulated pass over one area.

    Attributes:
        gamma0: (2, H, W) float32 linear gamma0 power with speckle, ``POLARIZATIONS`` order
            (VV, VH), ``NODATA`` (-32768) outside the swath.
        clean: (2, H, W) float32 the same without speckle (the truth the speckle multiplies).
        valid: (H, W) bool, False outside the swath.
    """

    gamma0: np.ndarray
    clean: np.ndarray
    valid: np.ndarray


class AreaSurface:
    """The static surface of one area: land cover and texture on its 10 m grid."""

    def __init__(self, scenario: S1Scenario, area: Area):
        self.scenario, self.area = scenario, area
        self.shape = (area.height, area.width)
        self.rows = np.arange(area.height, dtype=np.int64) + round((Y_REF - area.y_max) / PIXEL_SPACING)
        self.cols = np.arange(area.width, dtype=np.int64) + round(area.x_min / PIXEL_SPACING)

    def key(self, k: int) -> int:
        """A noise key unique to this UTM zone (positions in two zones may coincide)."""
        return self.area.utm_zone * 1000 + k

    def smooth(self, k: int, spacing: float) -> np.ndarray:
        """(H, W) float32 unit-variance smooth noise (:func:`~geolesson.mirror.noise.value_noise`),
        features ``spacing`` pixels apart, seeded by noise key ``k`` of this zone."""
        return value_noise(self.scenario.seed, self.key(k), self.rows, self.cols, spacing)

    def white(self, k: int) -> np.ndarray:
        """(H, W) float32 standard normal noise, one value per pixel, seeded by noise key ``k`` of this zone."""
        return white_noise(self.scenario.seed, self.key(k), self.rows, self.cols)

    @cached_property
    def cover(self) -> np.ndarray:
        """(H, W) uint8 class codes (``CLASSES``), 0 where no label polygon covers a pixel centre."""
        return rasterio.features.rasterize(read_labels(self.area), out_shape=self.shape,
                                           transform=self.area.transform(), fill=0, dtype="uint8")

    @cached_property
    def texture_db(self) -> np.ndarray:
        """(H, W) float32 static texture in dB, common to both polarisations and all dates."""
        urban = 2.2 * self.smooth(1, 4) + 1.2 * self.white(2)  # buildings, streets, roofs
        vegetation = 0.8 * self.smooth(3, 6) + 0.4 * self.white(4)  # canopy gaps, lawns
        tex = np.zeros(self.shape, dtype="float32")
        tex[self.cover == URBAN] = urban[self.cover == URBAN]
        tex[self.cover == VEGETATION] = vegetation[self.cover == VEGETATION]
        return tex

    @cached_property
    def point_targets(self) -> np.ndarray:
        """(H, W) bool: about 1.5 % of urban pixels hold a strong corner reflector (a building corner, a mast)."""
        u = (white_noise(self.scenario.seed, self.key(5), self.rows, self.cols) > 2.17)
        return u & (self.cover == URBAN)


class S1World:
    """The scenario's areas and weather; ``scene`` renders one pass."""

    def __init__(self, scenario: S1Scenario):
        self.scenario = scenario
        self._surfaces: dict[Area, AreaSurface] = {}

    def surface_of(self, area: Area) -> AreaSurface:
        """The static surface of ``area``, made on first use and kept."""
        if area not in self._surfaces:
            self._surfaces[area] = AreaSurface(self.scenario, area)
        return self._surfaces[area]

    def leaf_on(self, when: dt.datetime) -> float:
        """0 before leaf-out starts, 1 after it ends, linear in between."""
        d0, d1 = self.scenario.leaf_out
        t = (when.date() - d0).days / max(1, (d1 - d0).days)
        return float(np.clip(t, 0.0, 1.0))

    def wind(self, p: Pass) -> float:
        """0 (calm) to 1 (windiest): the pass's seeded weather over the area's water."""
        return float(np.random.default_rng([self.scenario.seed, 7, p.area.index, p.index]).uniform() ** 2)

    def clean(self, p: Pass) -> np.ndarray:
        """(2, H, W) float32 linear gamma0 (VV, VH) without speckle."""
        s = self.surface_of(p.area)
        cover = s.cover
        leaf = self.leaf_on(p.start)
        out = np.empty((2, *s.shape), dtype="float32")
        # look-direction dependent double bounce: ascending and descending passes light different façades
        facades = s.smooth(10 if p.orbit_state == "ascending" else 11, 25)
        wind_field = np.clip(self.wind(p) * WIND_MAX_DB * (0.75 + 0.25 * s.smooth(20 + p.index, 120)), 0, None)
        for b in range(2):
            db = np.zeros(s.shape, dtype="float32")
            for cls, means in GAMMA0_DB.items():
                db[cover == cls] = means[b]
            db += s.texture_db
            veg = cover == VEGETATION
            db[veg] += leaf * LEAF_ON_GAIN_DB[b]
            urban = cover == URBAN
            db[urban] += (2.0 if b == 0 else 1.0) * facades[urban]
            db[urban & s.point_targets] += 10.0 if b == 0 else 6.0
            water = cover == WATER
            db[water] += wind_field[water] * (1.0 if b == 0 else 0.5)
            out[b] = _db_to_power(db)
        return out

    def scene(self, p: Pass) -> S1Scene:
        """The pass over its area: speckled gamma0, the clean field and the swath mask."""
        s = self.surface_of(p.area)
        clean = self.clean(p)
        valid = ~swath_edge_mask(p)
        gamma0 = np.empty_like(clean)
        day = p.start.toordinal()
        for b in range(2):
            noise = speckle(self.scenario.seed, (p.area.utm_zone, day, p.start.hour, b), s.rows, s.cols)
            gamma0[b] = np.where(valid, clean[b] * noise, np.float32(NODATA))
        return S1Scene(gamma0, clean, valid)


def swath_edge_line(p: Pass) -> tuple[float, float, str] | None:
    """The swath edge on this pass as ``x = a + b * (y_max - y)`` (metres) and the side without
    data (``"east"`` or ``"west"``), or None when the scene lies inside the swath."""
    if p.index not in p.area.swath_edge:
        return None
    a = p.area
    # the ground track heads about -12 deg ascending (NNW) and 192 deg descending (SSW) at 35 N:
    # the swath edge runs parallel to it; ascending passes look east, so their far edge is east
    if p.orbit_state == "ascending":
        return a.x_min + 0.72 * a.width * PIXEL_SPACING, 0.21, "east"
    return a.x_min + 0.38 * a.width * PIXEL_SPACING, -0.21, "west"


def swath_edge_mask(p: Pass) -> np.ndarray:
    """(H, W) bool, True where the pass's scene lies outside the swath (nodata)."""
    a = p.area
    line = swath_edge_line(p)
    if line is None:
        return np.zeros((a.height, a.width), dtype=bool)
    x0, slope, side = line
    rows, cols = np.indices((a.height, a.width), dtype="float32")
    x = a.x_min + (cols + 0.5) * PIXEL_SPACING
    edge = x0 + slope * (rows + 0.5) * PIXEL_SPACING
    return x > edge if side == "east" else x < edge


def footprint(p: Pass) -> shapely.Polygon:
    """The pass's valid-data footprint over its area, in the area's UTM CRS (metres)."""
    x0, y0, x1, y1 = p.area.bounds()
    box = shapely.box(x0, y0, x1, y1)
    line = swath_edge_line(p)
    if line is None:
        return box
    a, slope, side = line
    top, bottom = a, a + slope * (y1 - y0)
    near = x0 - 1 if side == "east" else x1 + 1
    return box.intersection(shapely.Polygon([(top, y1), (near, y1), (near, y0), (bottom, y0)]))
