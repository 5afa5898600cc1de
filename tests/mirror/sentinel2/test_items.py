"""The mirror's items carry Earth Search v1's schema, and its COGs are real COGs."""

from __future__ import annotations


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
    item = max(local_items, key=lambda it: 0 < it["properties"]["eo:cloud_cover"] < 90 and it["properties"]["eo:cloud_cover"])
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
    from geolesson.mirror.sentinel2.scenario import load_scenario
    from geolesson.mirror.sentinel2.items import collection_dict

    collection = collection_dict(load_scenario())
    assert collection["license"] == "CC-BY-4.0"  # an SPDX id, not "proprietary": the data are ours
    (link,) = [ln for ln in collection["links"] if ln["rel"] == "license"]
    assert link["href"].endswith("/LICENSE-text") and "simulated" in link["title"]
    assert "SIMULATED" in collection["title"] and collection["description"].startswith("SIMULATED")


def test_full_size_items_carry_only_the_assets_read_at_full_size(local_items):
    """The data budget: whole-tile items have red, nir, swir22, scl and thumbnail; crops have all."""
    from geolesson.mirror.layout import files_dir
    from geolesson.mirror.sentinel2.items import FULL_SIZE_ASSETS

    full = [it for it in local_items if it["assets"]["red"]["proj:shape"] == [10980, 10980]]
    crops = [it for it in local_items if it not in full]
    assert full and crops
    for item in full:
        assert set(item["assets"]) == set(FULL_SIZE_ASSETS) == {"red", "nir", "swir22", "scl", "thumbnail"}
        folder = files_dir() / item["assets"]["red"]["href"].lstrip("/").rsplit("/", 1)[0]
        assert sorted(p.name for p in folder.iterdir()) == ["B04.tif", "B08.tif", "B12.tif", "SCL.tif", "thumbnail.jpg"]
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
