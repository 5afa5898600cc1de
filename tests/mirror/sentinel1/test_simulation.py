"""The Sentinel-1 simulation: deterministic, position-anchored, and physically plausible where
chapter 6 relies on it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
import pytest
import rasterio.features
import shapely
from pyproj import Transformer
from scipy import stats

from geolesson._home import data_dir
from geolesson.mirror.sentinel1 import scenario as s1_scenario
from geolesson.mirror.sentinel1 import simulation
from geolesson.mirror.sentinel1.writing import round_mantissa


@pytest.fixture(scope="module")
def scenario():
    return s1_scenario.load_s1_scenario()


@pytest.fixture(scope="module")
def world(scenario):
    return simulation.S1World(scenario)


@pytest.fixture(scope="module")
def scene(world):
    """``scene(p)``: each pass simulated once per module (a scene takes about a second)."""
    cache = {}

    def get(p):
        if p not in cache:
            cache[p] = world.scene(p)
        return cache[p]

    return get


def label_raster(area) -> np.ndarray:
    """The truth vectors rasterized on the area's grid, independently of the simulation's code."""
    gj = json.loads((data_dir() / area.labels).read_text())
    to_utm = Transformer.from_crs(4326, area.epsg, always_xy=True)
    codes = {"water": 1, "urban": 2, "vegetation": 3}
    shapes = [(shapely.transform(shapely.geometry.shape(f["geometry"]),
                                 lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1]))),
               codes[f["properties"]["class"]]) for f in gj["features"]]
    return rasterio.features.rasterize(shapes, out_shape=(area.height, area.width), transform=area.transform(),
                                       fill=0, dtype="uint8")


def class_db(values: np.ndarray, cover: np.ndarray, code: int) -> float:
    """Mean linear power of a class, in dB (how backscatter statistics are quoted)."""
    v = values[(cover == code) & (values != simulation.NODATA)]
    return float(10 * np.log10(v.mean()))


def test_two_areas_in_two_utm_zones_with_both_passes(scenario):
    assert [(a.name, a.epsg) for a in scenario.areas] == [("osaka", 32653), ("tokyo", 32654)]
    for area in scenario.areas:
        passes = scenario.passes_of(area)
        assert len({p.start.date() for p in passes}) >= 8
        assert {p.orbit_state for p in passes} == {"ascending", "descending"}
        assert [p.start for p in passes] == sorted(p.start for p in passes)


def test_relative_orbit_formula_reproduces_planetary_computer_items():
    # (absolute, relative) pairs read from real Planetary Computer sentinel-1 items
    assert s1_scenario.relative_orbit(53498) == 51
    assert s1_scenario.relative_orbit(58267) == 95
    when = dt.datetime(2024, 4, 19, 4, 59, 10, 436706, tzinfo=dt.timezone.utc)  # that item's datetime over ~30.4 N
    assert s1_scenario.absolute_orbit(when, "descending", 30.4) == 53498


def test_a_track_keeps_its_relative_orbit_every_12_days(scenario):
    for area in scenario.areas:
        for state in ("ascending", "descending"):
            track = [p for p in scenario.passes_of(area) if p.orbit_state == state]
            assert len({p.relative_orbit for p in track}) == 1
            assert all(b.absolute_orbit - a.absolute_orbit == 175 for a, b in zip(track, track[1:]))
            assert all(b.start - a.start == dt.timedelta(days=12) for a, b in zip(track, track[1:]))


def test_labels_tile_the_scene_with_known_classes(scenario):
    for area in scenario.areas:
        gj = json.loads((data_dir() / area.labels).read_text())
        classes = {f["properties"]["class"] for f in gj["features"]}
        assert classes == {"water", "urban", "vegetation"}
        assert all(f["geometry"]["type"] == "Polygon" for f in gj["features"])
        cover = label_raster(area)
        assert (cover > 0).all()  # every pixel centre has a class
        frac = np.bincount(cover.ravel(), minlength=4)[1:] / cover.size
        assert frac.min() > 0.03  # each class is large enough to appear in chips


def test_simulation_rasterizes_the_committed_labels(world, scenario):
    for area in scenario.areas:
        np.testing.assert_array_equal(world.surface_of(area).cover, label_raster(area))


def test_same_seed_same_scene(world, scene, scenario):
    p = scenario.passes[3]
    a = scene(p)
    b = simulation.S1World(s1_scenario.load_s1_scenario()).scene(p)
    np.testing.assert_array_equal(a.gamma0, b.gamma0)


def test_a_crop_sees_the_same_pixels_as_the_whole_scene(world, scene, scenario):
    p = next(p for p in scenario.passes if p.index not in p.area.swath_edge)
    a = p.area
    sub = dataclasses.replace(a, x_min=a.x_min + 3000, y_max=a.y_max - 2000, width=700, height=500)
    whole = scene(p).gamma0
    crop = simulation.S1World(scenario).scene(dataclasses.replace(p, area=sub)).gamma0
    np.testing.assert_array_equal(crop, whole[:, 200:700, 300:1000])


def test_speckle_is_gamma_distributed_with_enl_4_4(world, scene, scenario):
    p = scenario.passes[0]
    sim = scene(p)
    ratio = (sim.gamma0 / sim.clean)[:, sim.valid]  # the speckle the clean backscatter was multiplied by
    for s in ratio:
        assert s.mean() == pytest.approx(1.0, abs=0.003)
        assert s.mean() ** 2 / s.var() == pytest.approx(4.4, rel=0.01)
    sample = ratio[0][:: max(1, ratio.shape[1] // 200_000)]
    assert stats.kstest(sample, stats.gamma(4.4, scale=1 / 4.4).cdf).statistic < 0.005
    # a 10-look gamma (speckle too weak) would be far off
    assert stats.kstest(sample, stats.gamma(10, scale=1 / 10).cdf).statistic > 0.05


def test_speckle_is_independent_between_polarizations_and_dates(world, scene, scenario):
    a, b = scenario.passes[0], scenario.passes[1]
    sa, sb = scene(a), scene(b)
    ra = sa.gamma0 / sa.clean
    rb = sb.gamma0 / sb.clean
    both = sa.valid & sb.valid
    assert abs(np.corrcoef(ra[0][both], ra[1][both])[0, 1]) < 0.01
    assert abs(np.corrcoef(ra[0][both], rb[0][both])[0, 1]) < 0.01


@pytest.mark.parametrize("area_index", [0, 1])
def test_backscatter_by_class_is_physically_ordered(world, scene, scenario, area_index):
    area = scenario.areas[area_index]
    cover = label_raster(area)
    for p in scenario.passes_of(area):
        g = scene(p).gamma0
        vv = {c: class_db(g[0], cover, k) for c, k in (("water", 1), ("urban", 2), ("vegetation", 3))}
        vh = {c: class_db(g[1], cover, k) for c, k in (("water", 1), ("urban", 2), ("vegetation", 3))}
        assert vv["water"] < -18 and vh["water"] < -25  # calm to breezy water: specular, dark
        assert vv["urban"] > vv["vegetation"] + 3 > vv["water"] + 3  # double bounce brightest
        assert vv["urban"] > -7
        ratio = {c: vh[c] - vv[c] for c in vv}  # VH/VV in dB
        # volume scattering depolarises most, an aligned dihedral least (Freeman & Durden 1998)
        assert ratio["vegetation"] > ratio["urban"] + 2
        assert -8 < ratio["vegetation"] < -4 and -12 < ratio["urban"] < -8


def test_vegetation_brightens_with_leaf_out_and_the_city_does_not(world, scene, scenario):
    area = scenario.areas[0]
    cover = label_raster(area)
    track = [p for p in scenario.passes_of(area) if p.orbit_state == "ascending"]
    first, last = scene(track[0]).gamma0, scene(track[-1]).gamma0
    assert class_db(last[1], cover, 3) - class_db(first[1], cover, 3) > 1.5
    assert class_db(last[0], cover, 3) - class_db(first[0], cover, 3) > 0.6
    assert abs(class_db(last[0], cover, 2) - class_db(first[0], cover, 2)) < 0.3


def test_ascending_and_descending_see_different_facades(world, scenario):
    area = scenario.areas[1]
    urban = label_raster(area) == 2
    asc = next(p for p in scenario.passes_of(area) if p.orbit_state == "ascending")
    desc = next(p for p in scenario.passes_of(area) if p.orbit_state == "descending")
    same = [p for p in scenario.passes_of(area) if p.orbit_state == "ascending"][1]
    ca, cd, cs = (np.log(world.clean(p)[0][urban]) for p in (asc, desc, same))
    assert np.corrcoef(ca, cs)[0, 1] > 0.99  # the same look direction: the same city
    assert np.corrcoef(ca, cd)[0, 1] < 0.9


def test_swath_edge_nodata_only_on_the_listed_dates(world, scene, scenario):
    for p in scenario.passes:
        sim = scene(p)
        nodata = (sim.gamma0 == simulation.NODATA).all(axis=0)
        np.testing.assert_array_equal(nodata, ~sim.valid)
        if p.index in p.area.swath_edge:
            assert 0.05 < nodata.mean() < 0.6
            side = nodata[:, -1] if p.orbit_state == "ascending" else nodata[:, 0]  # far range: east when ascending
            assert side.all()
            assert simulation.footprint(p).area == pytest.approx((~nodata).sum() * 100.0, rel=0.01)
        else:
            assert not nodata.any()
        assert (sim.gamma0[:, sim.valid] > 0).all()


def test_round_mantissa_keeps_8_bits():
    rng = np.random.default_rng(1)
    decades = np.float32(10.0) ** rng.uniform(-4, 1, 100_000).astype("float32")
    a = rng.gamma(4.4, 1 / 4.4, 100_000).astype("float32") * decades
    r = round_mantissa(a)
    assert np.abs(r / a - 1).max() <= 2.0**-9
    assert ((r.view(np.uint32) & np.uint32(0x7FFF)) == 0).all()
    r12 = round_mantissa(a, 12)
    assert np.abs(r12 / a - 1).max() <= 2.0**-13 and ((r12.view(np.uint32) & np.uint32(0x7FF)) == 0).all()
    assert round_mantissa(np.array([-32768.0, 1.0, -0.5], dtype="float32")).tolist() == [-32768.0, 1.0, -0.5]


TINY_S1 = """
[sentinel1]
collection = "sentinel-1-rtc"
seed = 7
repeat_days = 12
passes_per_track = 1
leaf_out = ["2023-04-01", "2023-05-20"]

[[sentinel1.areas]]
name = "tokyo"
epsg = 32654
window = [382520, 3952020, 320, 256]
labels = "tokyo_landcover_true.geojson"
swath_edge = [1]
tracks = [
  { orbit_state = "ascending", first_start = "2023-04-05T08:44:52.107561", slice_number = 7, total_slices = 9 },
  { orbit_state = "descending", first_start = "2023-04-10T20:37:05.519330", slice_number = 12, total_slices = 16 },
]
"""


def test_two_sentinel1_builds_are_byte_identical(tmp_path, monkeypatch):
    from geolesson.mirror.sentinel1.build import build_sentinel1

    root = tmp_path / "checkout"
    (root / "data").mkdir(parents=True)
    labels = "tokyo_landcover_true.geojson"
    (root / "data" / labels).write_bytes((data_dir() / labels).read_bytes())
    (root / "data" / "mirror_scenario.toml").write_text(TINY_S1)
    monkeypatch.setenv("GEOLESSON_ROOT", str(root))
    n1, first = build_sentinel1(tmp_path / "a", 1, log=lambda *_: None)
    n2, second = build_sentinel1(tmp_path / "b", 2, log=lambda *_: None)
    assert n1 == n2 == 2
    assert first == second and len(first) == 6  # vv, vh, preview of each item, same SHA-256
    for name in ("collection.json", "items.ndjson"):
        assert (tmp_path / "a" / "stac" / "sentinel-1-rtc" / name).read_bytes() == \
            (tmp_path / "b" / "stac" / "sentinel-1-rtc" / name).read_bytes()


def test_a_scenario_without_sentinel1_builds_no_collection(tmp_path, monkeypatch):
    from geolesson.mirror.sentinel1.build import build_sentinel1

    root = tmp_path / "checkout"
    (root / "data").mkdir(parents=True)
    (root / "data" / "mirror_scenario.toml").write_text('seed = 1\ncollection = "sentinel-2-l2a"\n')
    monkeypatch.setenv("GEOLESSON_ROOT", str(root))
    assert s1_scenario.load_s1_scenario() is None
    assert build_sentinel1(tmp_path / "out", 1, log=lambda *_: None) == (0, {})
    assert not (tmp_path / "out").exists()
