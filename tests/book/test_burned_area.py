"""End to end, the lesson's way (chapter 4): odc-stac cube from the mirror -> dNBR -> burned area vs truth."""

from __future__ import annotations

import warnings

import pytest

PRE_DATE, POST_DATE = "2023-07-12", "2023-08-01"  # clear dates before and after the simulated fire
RESOLUTION = 20  # metres, the native grid of swir22 and scl


@pytest.fixture(scope="module")
def lesson(mirror):
    odc_stac = pytest.importorskip("odc.stac")
    import geopandas as gpd
    import pystac_client
    from rasterio.errors import NotGeoreferencedWarning

    from geolesson import indices
    from geolesson._home import data_dir

    aoi = gpd.read_file(data_dir() / "rhodes_aoi.geojson")
    bbox = [float(v) for v in aoi.total_bounds]
    client = pystac_client.Client.open(mirror["api_url"])
    items = [it for date in (PRE_DATE, POST_DATE)
             for it in client.search(collections=["sentinel-2-l2a"], bbox=bbox, datetime=date).items()]
    with warnings.catch_warnings():
        # rasterio's threaded reproject can warn about its own scratch dataset; harmless
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        cube = odc_stac.load(items, bands=["nir", "swir22", "scl"], bbox=bbox, crs="EPSG:32635",
                             resolution=RESOLUTION, groupby="solar_day", chunks={}).compute()
    scar = gpd.read_file(data_dir() / "rhodes_burn_scar_true.geojson").to_crs(32635)
    island = gpd.read_file(data_dir() / "rhodes_island.geojson").to_crs(32635)
    return dict(items=items, cube=cube, aoi=aoi, scar=scar, island=island, indices=indices)


def test_one_time_step_per_overpass_covering_the_whole_scar(lesson):
    cube, scar = lesson["cube"], lesson["scar"]
    assert len(lesson["items"]) == 4  # two tiles on each date
    assert [str(t)[:10] for t in cube.time.values] == [PRE_DATE, POST_DATE]
    assert cube.odc.geobox.crs.epsg == 32635
    # the AOI grid contains the whole true scar, and both dates have data everywhere on it
    left, bottom, right, top = cube.odc.geobox.extent.boundingbox
    s_left, s_bottom, s_right, s_top = scar.total_bounds
    assert left <= s_left and bottom <= s_bottom and right >= s_right and top >= s_top
    assert int((cube["scl"] == 0).sum()) == 0


def test_burned_area_within_5_percent_of_the_true_scar(lesson):
    cube, items, indices = lesson["cube"], lesson["items"], lesson["indices"]
    valid = indices.valid_mask(cube["scl"], exclude=indices.DEFAULT_INVALID_CLASSES + (6,))  # + water
    refl = {k: indices.reflectance(cube[k], items[0].assets[k]) for k in ("nir", "swir22")}
    nbr = indices.nbr(refl["nir"], refl["swir22"]).where(valid)
    d = indices.dnbr(nbr.sel(time=PRE_DATE).squeeze(drop=True), nbr.sel(time=POST_DATE).squeeze(drop=True))
    burned = indices.burn_severity(d) >= 4  # low severity or worse: dNBR >= 0.1
    burned_ha = float(indices.burned_area_ha(burned, RESOLUTION))

    true_ha = float(lesson["scar"].intersection(lesson["island"].union_all()).area.sum() / 1e4)
    assert true_ha > 1000
    assert burned_ha == pytest.approx(true_ha, rel=0.05), (burned_ha, true_ha)
