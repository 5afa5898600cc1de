"""The mirror's simulation: deterministic, and physically plausible where the book relies on it."""

from __future__ import annotations

import numpy as np
import pytest

from geolesson.mirror import simulate
from geolesson.mirror.scenario import load_scenario


@pytest.fixture(scope="module")
def world():
    return simulate.World(load_scenario())


def test_same_seed_same_scene(world):
    sc = world.scenario
    a = world.scene(sc.acquisitions[3], sc.tiles[1])
    b = simulate.World(sc).scene(sc.acquisitions[3], sc.tiles[1])
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
    r0 = round((world.y_max - sc.tiles[0].y_max) / 10)
    scar = world.burn_scar[r0:r0 + sc.tiles[0].height, :]
    nbr = lambda s: (s.reflectance[3] - s.reflectance[5]) / (s.reflectance[3] + s.reflectance[5])
    dnbr = nbr(before) - nbr(after)
    assert np.median(dnbr[scar]) > 0.44      # moderate-high severity (USGS dNBR classes)
    assert abs(np.median(dnbr[~scar & (before.scl == 4)])) < 0.1
