"""The mirror's simulation: deterministic, and physically plausible where the book relies on it."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from geolesson.mirror.sentinel2 import farmland, simulation
from geolesson.mirror.sentinel2.scenario import load_scenario

NIR, SWIR22 = simulation.BANDS.index("nir"), simulation.BANDS.index("swir22")


@pytest.fixture(scope="module")
def world():
    return simulation.World(load_scenario())


def on(sc, day: str):
    """The acquisition of an ISO date."""
    (acq,) = [a for a in sc.acquisitions if a.datetime.date() == dt.date.fromisoformat(day)]
    return acq


def nbr(scene):
    r = scene.reflectance
    return (r[NIR] - r[SWIR22]) / (r[NIR] + r[SWIR22])


def test_same_seed_same_scene(world):
    sc = world.scenario
    a = world.scene(sc.acquisitions[3], sc.tiles[1])
    b = simulation.World(sc).scene(sc.acquisitions[3], sc.tiles[1])
    np.testing.assert_array_equal(a.scl, b.scl)
    np.testing.assert_array_equal(a.reflectance, b.reflectance)
    np.testing.assert_array_equal(a.aot, b.aot)


def test_scenario_dates_and_cloud_spread():
    sc = load_scenario()
    assert len(sc.tiles) >= 2 and len(sc.acquisitions) >= 12
    cover = [a.cloud_cover for a in sc.acquisitions]
    assert min(cover) == 0 and max(cover) == 100 and sum(c < 1 for c in cover) >= 4
    # the weather as it was: July and August nearly cloudless, the clouds in June and September
    summer = [a.cloud_cover for a in sc.acquisitions if a.datetime.month in (7, 8)]
    assert sum(c < 1 for c in summer) == len(summer) - 1
    assert max(a.cloud_cover for a in sc.acquisitions if a.datetime.month in (6, 9)) > 50


def test_scl_classes_follow_cloud_and_surface(world):
    sc = world.scenario
    cloudy = world.scene(next(a for a in sc.acquisitions if 30 < a.cloud_cover < 90), sc.tiles[0])
    scl, refl = cloudy.scl, cloudy.reflectance
    assert set(np.unique(scl)) <= set(range(12))
    assert {3, 4, 8, 9, 10} <= set(np.unique(scl))
    # thick clouds are bright in the blue band, shadows are dark in the NIR
    assert np.nanmean(refl[0][scl == 9]) > 0.3 > np.nanmean(refl[0][scl == 4])
    assert np.nanmean(refl[NIR][scl == 3]) < np.nanmean(refl[NIR][scl == 4])
    # skylight is blue: a shadow darkens the SWIR more than the visible, so NBR rises in it
    forest = world.surface_of(sc.tiles[0]).cover == simulation.FOREST
    assert np.nanmedian(nbr(cloudy)[forest & (scl == 3)]) > np.nanmedian(nbr(cloudy)[forest & (scl == 4)])


def test_vegetation_ndvi_and_water_are_plausible(world):
    sc = world.scenario
    clear = world.scene(on(sc, "2023-07-13"), sc.tiles[0])  # cloud free, before the fire
    red, nir = clear.reflectance[2], clear.reflectance[NIR]
    ndvi = (nir - red) / (nir + red)
    assert 0.5 < np.median(ndvi[clear.scl == 4]) < 0.9
    assert np.median(ndvi[clear.scl == 6]) < 0
    assert 0 < np.median(ndvi[clear.scl == 5]) < 0.4
    # B8A (nir08) reads a little above B08 over vegetation, below it over water
    nir08 = clear.reflectance[simulation.BANDS.index("nir08")]
    assert 1.0 < np.median(nir08[clear.scl == 4] / nir[clear.scl == 4]) < 1.06


def test_partial_orbit_items_have_nodata_on_one_side(world):
    sc = world.scenario
    tile = next(t for t in sc.tiles if t.mgrs in sc.partial_orbit)
    acq = sc.acquisitions[sc.partial_orbit[tile.mgrs][0]]
    scene = world.scene(acq, tile)
    nodata = scene.scl == 0
    assert 0.1 < nodata.mean() < 0.5
    assert nodata[:, 0].all() and not nodata[:, -1].any()  # the swath edge cuts the west side
    assert np.isnan(scene.reflectance[:, nodata]).all()
    assert np.isnan(scene.aot[nodata[::2, ::2]]).all() and not np.isnan(scene.aot[~nodata[::2, ::2]]).any()


def test_burn_scar_darkens_nir_after_the_fire(world):
    sc = world.scenario
    before = world.scene(on(sc, "2023-07-13"), sc.tiles[0])
    after = world.scene(on(sc, "2023-08-02"), sc.tiles[0])
    surface = world.surface_of(sc.tiles[0])
    dnbr = nbr(before) - nbr(after)
    burned = surface.severity > 0.5
    assert np.median(dnbr[burned]) > 0.44      # moderate-high severity (USGS dNBR classes)
    unburned_veg = ~surface.burn_scar & (before.scl == 4) & (surface.farmland_kind == farmland.NONE)
    assert abs(np.median(dnbr[unburned_veg])) < 0.1


def test_the_fire_misses_and_the_farmland_mimics_what_dnbr_calls_burned(world):
    """Omission inside the perimeter (unburned islands, a low-severity fringe) and commission
    outside it (cut and curing fields): a dNBR >= 0.1 map is useful, not perfect."""
    sc = world.scenario
    before = world.scene(on(sc, "2023-07-13"), sc.tiles[0])
    after = world.scene(on(sc, "2023-07-28"), sc.tiles[0])
    s = world.surface_of(sc.tiles[0])
    mapped = (nbr(before) - nbr(after)) >= 0.1
    truth = s.burn_scar
    unburned_inside = truth & (s.severity == 0)
    assert 0.03 < unburned_inside.sum() / truth.sum() < 0.2
    assert mapped[unburned_inside].mean() < 0.1
    kind = s.farmland_kind
    commission = mapped & ~truth
    assert commission.sum() > 0.03 * truth.sum()
    assert (kind[commission] != farmland.NONE).mean() > 0.5  # mostly farmland
    iou = (mapped & truth).sum() / (mapped | truth).sum()
    assert 0.6 < iou < 0.95
    # farmland never looks like char: bright in the red where char is dark
    red = after.reflectance[2]
    assert np.median(red[kind != farmland.NONE]) > 2 * np.median(red[truth & (s.severity > 0.5)])


def test_aerosol_and_water_vapour_are_smooth_summer_fields_with_smoke_during_the_fire(world):
    sc = world.scenario
    burning, after = (world.scene(on(sc, d), sc.tiles[0]) for d in ("2023-07-23", "2023-08-02"))
    assert 0.05 < np.median(after.aot) < 0.3 and 1.5 < np.median(after.wvp) < 3.5
    assert np.max(burning.aot) > np.max(after.aot) + 0.2
    assert burning.aot.shape == (sc.tiles[0].height // 2, sc.tiles[0].width // 2)
    assert np.abs(np.diff(after.aot, axis=1)).max() < 0.01  # smooth at 20 m


def test_overlapping_tiles_see_the_same_ground_and_clouds(world):
    """Noise is anchored to absolute positions: a crop, a shifted crop and a whole tile agree."""
    from geolesson.mirror.sentinel2.scenario import Tile

    sc = world.scenario
    base = sc.tiles[0]
    a = Tile(base.mgrs, base.x_min + 5000, base.y_max - 3000, 300, 200, base.origin_x, base.origin_y)
    b = Tile(base.mgrs, base.x_min + 5000 + 1230, base.y_max - 3000 - 870, 300, 200, base.origin_x, base.origin_y)
    acq = next(a for a in sc.acquisitions if 30 < a.cloud_cover < 90)  # clouds and shadows must agree too
    sa, sb = world.scene(acq, a), world.scene(acq, b)
    np.testing.assert_array_equal(sa.reflectance[:, 87:, 123:], sb.reflectance[:, :113, :177])
    np.testing.assert_array_equal(sa.scl[87:, 123:], sb.scl[:113, :177])
    assert base.full().width == base.full().height == 10980
    assert base.full().bounds()[0] == base.origin_x and base.full().bounds()[3] == base.origin_y
