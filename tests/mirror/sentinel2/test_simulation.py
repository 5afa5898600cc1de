"""The mirror's simulation: deterministic, and physically plausible where the book relies on it."""

from __future__ import annotations

import numpy as np
import pytest

from geolesson.mirror.sentinel2 import simulation
from geolesson.mirror.sentinel2.scenario import load_scenario


@pytest.fixture(scope="module")
def world():
    return simulation.World(load_scenario())


def test_same_seed_same_scene(world):
    sc = world.scenario
    a = world.scene(sc.acquisitions[3], sc.tiles[1])
    b = simulation.World(sc).scene(sc.acquisitions[3], sc.tiles[1])
    np.testing.assert_array_equal(a.scl, b.scl)
    np.testing.assert_array_equal(a.reflectance, b.reflectance)


def test_scenario_dates_and_cloud_spread():
    sc = load_scenario()
    assert len(sc.tiles) >= 2 and len(sc.acquisitions) >= 12
    cover = [a.cloud_cover for a in sc.acquisitions]
    assert min(cover) == 0 and max(cover) == 100 and sum(c < 1 for c in cover) >= 4


def test_scl_classes_follow_cloud_and_surface(world):
    sc = world.scenario
    cloudy = world.scene(sc.acquisitions[10], sc.tiles[0])  # 71 % cloud cover
    scl, refl = cloudy.scl, cloudy.reflectance
    assert set(np.unique(scl)) <= set(range(12))
    assert {3, 4, 8, 9, 10} <= set(np.unique(scl))
    # thick clouds are bright in the blue band, shadows are dark in the NIR
    assert np.nanmean(refl[0][scl == 9]) > 0.3 > np.nanmean(refl[0][scl == 4])
    assert np.nanmean(refl[3][scl == 3]) < np.nanmean(refl[3][scl == 4])


def test_vegetation_ndvi_and_water_are_plausible(world):
    sc = world.scenario
    clear = world.scene(sc.acquisitions[8], sc.tiles[0])  # 12 July, cloud free, before the fire
    red, nir = clear.reflectance[2], clear.reflectance[3]
    ndvi = (nir - red) / (nir + red)
    assert 0.5 < np.median(ndvi[clear.scl == 4]) < 0.9
    assert np.median(ndvi[clear.scl == 6]) < 0
    assert 0 < np.median(ndvi[clear.scl == 5]) < 0.4


def test_partial_orbit_items_have_nodata_on_one_side(world):
    sc = world.scenario
    tile = next(t for t in sc.tiles if t.mgrs in sc.partial_orbit)
    acq = sc.acquisitions[sc.partial_orbit[tile.mgrs][0]]
    scene = world.scene(acq, tile)
    nodata = scene.scl == 0
    assert 0.1 < nodata.mean() < 0.5
    assert nodata[:, 0].all() and not nodata[:, -1].any()  # the swath edge cuts the west side
    assert np.isnan(scene.reflectance[:, nodata]).all()


def test_burn_scar_darkens_nir_after_the_fire(world):
    sc = world.scenario
    before = world.scene(sc.acquisitions[8], sc.tiles[0])   # 12 July
    after = world.scene(sc.acquisitions[12], sc.tiles[0])   # 1 August
    scar = world.surface_of(sc.tiles[0]).burn_scar
    nbr = lambda s: (s.reflectance[3] - s.reflectance[5]) / (s.reflectance[3] + s.reflectance[5])
    dnbr = nbr(before) - nbr(after)
    assert np.median(dnbr[scar]) > 0.44      # moderate-high severity (USGS dNBR classes)
    assert abs(np.median(dnbr[~scar & (before.scl == 4)])) < 0.1


def test_overlapping_tiles_see_the_same_ground_and_clouds(world):
    """Noise is anchored to absolute positions: a crop, a shifted crop and a whole tile agree."""
    from geolesson.mirror.sentinel2.scenario import Tile

    sc = world.scenario
    base = sc.tiles[0]
    a = Tile(base.mgrs, base.x_min + 5000, base.y_max - 3000, 300, 200, base.origin_x, base.origin_y)
    b = Tile(base.mgrs, base.x_min + 5000 + 1230, base.y_max - 3000 - 870, 300, 200, base.origin_x, base.origin_y)
    acq = sc.acquisitions[10]  # cloudy: clouds and shadows must agree too
    sa, sb = world.scene(acq, a), world.scene(acq, b)
    np.testing.assert_array_equal(sa.reflectance[:, 87:, 123:], sb.reflectance[:, :113, :177])
    np.testing.assert_array_equal(sa.scl[87:, 123:], sb.scl[:113, :177])
    assert base.full().width == base.full().height == 10980
    assert base.full().bounds()[0] == base.origin_x and base.full().bounds()[3] == base.origin_y
