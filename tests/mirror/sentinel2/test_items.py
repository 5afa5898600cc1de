"""The mirror's items carry Earth Search v1's schema, and its COGs are real COGs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio

EARTH_SEARCH_ASSETS = {"blue", "green", "red", "nir", "swir16", "swir22", "scl", "visual", "thumbnail"}
EARTH_SEARCH_PROPERTIES = {
    "platform", "constellation", "instruments", "eo:cloud_cover", "proj:epsg", "mgrs:utm_zone",
    "mgrs:latitude_band", "mgrs:grid_square", "grid:code", "view:sun_azimuth", "view:sun_elevation",
    "s2:nodata_pixel_percentage", "s2:vegetation_percentage", "s2:water_percentage",
    "s2:high_proba_clouds_percentage", "s2:processing_baseline", "s2:product_type", "datetime",
}


def test_items_carry_earth_search_v1_keys(mirror):
    import httpx

    # the raw JSON: pystac >= 1.15 migrates proj:epsg to proj:code when it loads an item
    page = httpx.post(mirror["api_url"] + "search", json={"collections": ["sentinel-2-l2a"], "limit": 1}).json()
    item = page["features"][0]
    assert EARTH_SEARCH_ASSETS <= set(item["assets"])
    assert EARTH_SEARCH_PROPERTIES <= set(item["properties"])
    assert item["properties"]["proj:epsg"] == 32635
    red = item["assets"]["red"]
    assert red["type"] == "image/tiff; application=geotiff; profile=cloud-optimized"
    assert red["roles"] == ["data", "reflectance"]
    assert red["raster:bands"][0]["scale"] == 0.0001 and red["raster:bands"][0]["offset"] == -0.1
    assert red["gsd"] == 10 and item["assets"]["swir16"]["gsd"] == 20
    assert red["eo:bands"][0]["common_name"] == "red"


def test_cloud_cover_agrees_with_the_scl_band(mirror, local_items):
    item = max(local_items,
               key=lambda it: 0 < it["properties"]["eo:cloud_cover"] < 90 and it["properties"]["eo:cloud_cover"])
    with rasterio.open(mirror["files_url"] + item["assets"]["scl"]["href"].lstrip("/")) as ds:
        scl = ds.read(1)
    valid = scl > 0
    cloudy = np.isin(scl, [8, 9, 10]) & valid
    assert item["properties"]["eo:cloud_cover"] == pytest.approx(100 * cloudy.sum() / valid.sum(), abs=1e-4)


def test_mirror_cogs_pass_cog_validate(mirror, local_items):
    from rio_cogeo.cogeo import cog_validate

    item = local_items[0]
    for key in ("red", "swir16", "scl", "visual"):
        href = mirror["files_url"] + item["assets"][key]["href"].lstrip("/")
        valid, errors, _ = cog_validate(href, quiet=True)
        assert valid, (key, errors)
        with rasterio.open(href) as ds:
            assert ds.overviews(1) and ds.block_shapes[0][0] < ds.height
            assert list(ds.transform)[:6] == item["assets"][key]["proj:transform"]
            assert [ds.height, ds.width] == item["assets"][key]["proj:shape"]


def test_simulated_data_are_licensed_and_described_as_simulated():
    from geolesson.mirror.sentinel2.items import collection_dict
    from geolesson.mirror.sentinel2.scenario import load_scenario

    collection = collection_dict(load_scenario())
    assert collection["license"] == "CC-BY-4.0"  # an SPDX id, not "proprietary": the data are ours
    (link,) = [ln for ln in collection["links"] if ln["rel"] == "license"]
    assert link["href"].endswith("/LICENSE-text") and "simulated" in link["title"]
    assert "SIMULATED" in collection["title"] and collection["description"].startswith("SIMULATED")


def test_full_size_items_carry_every_asset_on_the_whole_tile(local_items):
    """The whole-tile item is an Earth Search item like the crops: the same 35 assets, its bands
    on the real 10980 x 10980 (10 m), 5490 (20 m) and 1830 (60 m) pixel grids."""
    from geolesson.mirror.layout import files_dir

    full = [it for it in local_items if it["assets"]["red"]["proj:shape"] == [10980, 10980]]
    crops = [it for it in local_items if it not in full]
    assert full and crops
    for item in full:
        assert set(item["assets"]) == set(crops[0]["assets"]) and len(item["assets"]) == 35
        assert item["assets"]["swir22"]["proj:shape"] == [5490, 5490]
        assert item["assets"]["coastal"]["proj:shape"] == [1830, 1830]
        folder = files_dir() / item["assets"]["red"]["href"].lstrip("/").rsplit("/", 1)[0]
        with rasterio.open(folder / "B03.tif") as ds:
            assert (ds.width, ds.height) == (10980, 10980) and ds.overviews(1)
    assert all(EARTH_SEARCH_ASSETS <= set(it["assets"]) for it in crops)


def test_visual_asset_is_jpeg_and_true_colour(mirror, local_items):
    item = local_items[0]
    with rasterio.open(mirror["files_url"] + item["assets"]["visual"]["href"].lstrip("/")) as ds:
        assert ds.compression.name == "jpeg" and ds.count == 3 and ds.dtypes[0] == "uint8"
        rgb = ds.read(out_shape=(3, ds.height // 8, ds.width // 8)).astype(float)
    with rasterio.open(mirror["files_url"] + item["assets"]["red"]["href"].lstrip("/")) as ds:
        red = ds.read(1, out_shape=(ds.height // 8, ds.width // 8)).astype(float)
    valid = (red > 0) & (rgb[0] > 0)
    # lossy, but still the red band's picture: TCI red tracks reflectance red closely
    assert np.corrcoef(rgb[0][valid], red[valid])[0, 1] > 0.95


# ---------------------------------------------------------------- Earth Search's items over Rhodes
# The expected IDs are Earth Search v1's real ones at the point (27.95 E, 36.20 N), 1 July -
# 31 August 2023, as the Carpentries geospatial-python lesson lists them.

POINT = {"type": "Point", "coordinates": [27.95, 36.20]}
JULY_AUGUST = "2023-07-01/2023-08-31"
EARTH_SEARCH_IDS = [
    "S2A_35SNA_20230827_0_L2A", "S2B_35SNA_20230822_0_L2A", "S2A_35SNA_20230817_0_L2A",
    "S2B_35SNA_20230812_0_L2A", "S2A_35SNA_20230807_0_L2A", "S2B_35SNA_20230802_0_L2A",
    "S2A_35SNA_20230728_0_L2A", "S2B_35SNA_20230723_0_L2A", "S2A_35SNA_20230718_0_L2A",
    "S2B_35SNA_20230713_0_L2A", "S2A_35SNA_20230708_0_L2A", "S2B_35SNA_20230703_0_L2A",
]
# the Carpentries datacube episode's dates before and after the fire
LESSON_DATES = ("2023-07-13", "2023-08-27")


def test_the_point_has_earth_search_s_twelve_items_of_july_and_august(client):
    search = client.search(collections=["sentinel-2-l2a"], intersects=POINT, datetime=JULY_AUGUST)
    assert search.matched() == 12
    items = list(search.items())
    assert [it.id for it in items] == EARTH_SEARCH_IDS  # newest first, as Earth Search sorts
    assert {it.properties["s2:processing_baseline"] for it in items} == {"05.09"}
    assert all("_R107_" in it.properties["s2:product_uri"] for it in items)
    # the lesson's metadata filter: 11 of the 12 are below 1 % cloud
    clear = client.search(collections=["sentinel-2-l2a"], intersects=POINT, datetime=JULY_AUGUST,
                          query=["eo:cloud_cover<1"])
    assert clear.matched() == 11
    # the lesson's oldest item below 1 % is 8 July's: 3 July's is the cloudy one
    assert {it.id for it in items} - {it.id for it in clear.items()} == {"S2B_35SNA_20230703_0_L2A"}


def test_every_asset_href_answers_with_its_declared_media_type(client):
    import httpx

    items = list(client.search(collections=["sentinel-2-l2a"], limit=100).items())
    assert len(items) == len({it.id for it in items}) > 12
    checked = 0
    with httpx.Client(timeout=30) as http:
        for item in items:
            assert len(item.assets) == 35, item.id
            for key, asset in item.assets.items():
                r = http.head(asset.href)
                assert r.status_code == 200, (item.id, key, asset.href, r.status_code)
                served = r.headers["content-type"].split(";")[0].strip()
                assert served == asset.media_type.split(";")[0].strip(), (item.id, key, served)
                assert int(r.headers["content-length"]) > 0
                checked += 1
    assert checked == 35 * len(items)


def test_the_lessons_two_dates_open_with_rioxarray_and_odc_stac(client):
    """The Carpentries episodes' reads: the items at the point on the lesson's dates open with
    rioxarray, and their datacube (odc-stac, solar days, 20 m, overviews) has both dates."""
    import geopandas as gpd
    import odc.stac
    import rioxarray

    from geolesson import sources

    sources.configure_gdal()
    items = client.search(collections=["sentinel-2-l2a"], intersects=POINT, datetime=JULY_AUGUST).item_collection()
    by_day = {str(it.datetime.date()): it for it in items}
    for day in LESSON_DATES:
        red = by_day[day].assets["red"]
        da = rioxarray.open_rasterio(red.href, overview_level=2)
        rows, cols = red.extra_fields["proj:shape"]
        # overview level 2: 1/8 of the grid (GDAL rounds odd halvings), 80 m pixels
        assert abs(da.shape[1] - rows / 8) <= 1 and abs(da.shape[2] - cols / 8) <= 1
        assert da.rio.resolution()[0] == pytest.approx(80, rel=0.001) and da.rio.crs.to_epsg() == 32635
    # the lesson loads the island's bounding box
    bbox = [float(v) for v in gpd.read_file(sources.data_path("rhodes_island.geojson")).total_bounds]
    cube_items = client.search(collections=["sentinel-2-l2a"], bbox=bbox, datetime=JULY_AUGUST).item_collection()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rasterio's scratch dataset in a threaded reproject
        ds = odc.stac.load(cube_items, bands=["red", "nir", "scl"], groupby="solar_day",
                           chunks={"x": 2048, "y": 2048}, use_overviews=True, resolution=20, bbox=bbox)
    assert len(ds.time) == 12
    for day in LESSON_DATES:
        one = ds.sel(time=day).squeeze().compute()
        ndvi = (one.nir.astype(float) - one.red) / (one.nir.astype(float) + one.red)
        land = one.scl.isin([4, 5])
        assert 0.05 < float(ndvi.where(land).median()) < 0.8, day
