"""The mirror's sentinel-1-rtc collection: Planetary Computer's schema, real COGs, plausible backscatter,
found through ``open_client("planetary-computer")``."""

from __future__ import annotations

import hashlib
import json
import re

import httpx
import numpy as np
import pytest
import rasterio
import rasterio.features
import shapely
from pyproj import Transformer

from geolesson import sources
from geolesson._home import data_dir
from geolesson.mirror.layout import files_dir
from geolesson.mirror.sentinel1.items import item_id
from geolesson.mirror.sentinel1.scenario import load_s1_scenario

COLLECTION = "sentinel-1-rtc"
OSAKA_BBOX = [135.45, 34.63, 135.55, 34.70]
TOKYO_BBOX = [139.72, 35.63, 139.82, 35.70]
PC_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+00:00$")  # a space, not "T"
CODES = {"water": 1, "urban": 2, "vegetation": 3}


@pytest.fixture(scope="module")
def raw_items(mirror):
    """Every S1 item as the API serves it (raw JSON: pystac >= 1.15 would migrate proj:epsg to proj:code)."""
    page = httpx.post(mirror["api_url"] + "search", json={"collections": [COLLECTION], "limit": 100}).json()
    return page["features"]


@pytest.fixture(scope="module")
def pc(mirror):
    return sources.open_client("planetary-computer")


def labels_on(item) -> np.ndarray:
    """The item's land-cover truth rasterized on its grid (the vectors the simulation follows)."""
    props = item["properties"]
    area = "osaka" if props["proj:epsg"] == 32653 else "tokyo"
    gj = json.loads((data_dir() / f"{area}_landcover_true.geojson").read_text())
    to_utm = Transformer.from_crs(4326, props["proj:epsg"], always_xy=True)
    shapes = [(shapely.transform(shapely.geometry.shape(f["geometry"]),
                                 lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1]))),
               CODES[f["properties"]["class"]]) for f in gj["features"]]
    return rasterio.features.rasterize(shapes, out_shape=props["proj:shape"],
                                       transform=rasterio.Affine(*props["proj:transform"][:6]), dtype="uint8")


def read(item, key) -> np.ndarray:
    with rasterio.open(files_dir() / item["assets"][key]["href"]) as ds:
        return ds.read(1)


def test_collection_is_labelled_simulated_in_pc_schema(pc):
    collection = pc.get_collection(COLLECTION)
    assert "SIMULATED" in collection.description
    assert {"vv", "vh"} <= set(collection.extra_fields["item_assets"])
    assert collection.summaries.lists["sar:looks_equivalent_number"] == [4.4]


def test_items_carry_planetary_computer_fields_with_their_types(raw_items):
    assert len(raw_items) >= 16
    for item in raw_items:
        p = item["properties"]
        assert type(p["proj:epsg"]) is int and p["proj:epsg"] in (32653, 32654)
        assert "proj:code" not in p
        assert p["s1:shape"] == p["proj:shape"][::-1]
        assert len(p["proj:transform"]) == 9 and p["proj:transform"][0] == 10.0 and p["proj:transform"][4] == -10.0
        x0, y1 = p["proj:transform"][2], p["proj:transform"][5]
        rows, cols = p["proj:shape"]
        assert p["proj:bbox"] == [x0, y1 - 10 * rows, x0 + 10 * cols, y1]
        for key in ("s1:datatake_id", "s1:slice_number", "s1:total_slices", "s1:instrument_configuration_ID"):
            assert isinstance(p[key], str) and p[key].isdigit(), key
        assert int(p["s1:slice_number"]) <= int(p["s1:total_slices"])
        assert f"{int(p['s1:datatake_id']):06X}" == item["id"].split("_")[-2]  # hex in the id, decimal string
        for key in ("sat:absolute_orbit", "sat:relative_orbit"):
            assert type(p[key]) is int
        assert p["sat:relative_orbit"] == (p["sat:absolute_orbit"] - 73) % 175 + 1
        assert p["sat:orbit_state"] in ("ascending", "descending")
        assert p["sat:platform_international_designator"] == "2014-016A" and p["platform"] == "SENTINEL-1A"
        assert PC_TIME.match(p["start_datetime"]) and PC_TIME.match(p["end_datetime"])
        assert p["start_datetime"][:10] == p["datetime"][:10] and p["datetime"].endswith("Z")
        assert p["sar:polarizations"] == ["VV", "VH"] and p["sar:instrument_mode"] == "IW"
        assert p["sar:frequency_band"] == "C" and p["sar:center_frequency"] == 5.405
        assert p["sar:looks_equivalent_number"] == 4.4 and p["sar:product_type"] == "GRD"
        assert p["sar:pixel_spacing_range"] == 10 and p["sar:pixel_spacing_azimuth"] == 10
        assert p["sar:observation_direction"] == "right"
        assert (p["sar:looks_range"], p["sar:looks_azimuth"]) == (5, 1)
        text = json.dumps(item)
        assert '"eo:' not in text and '"gsd"' not in text
        assert item["id"].endswith("_rtc")


def test_assets_are_single_band_float32_gamma0_without_scale(raw_items):
    for item in raw_items:
        assert {"vv", "vh", "rendered_preview"} == set(item["assets"])  # hh/hv of item_assets not hydrated in
        for key in ("vv", "vh"):
            asset = item["assets"][key]
            assert asset["roles"] == ["data"]
            assert asset["type"] == "image/tiff; application=geotiff; profile=cloud-optimized"
            assert asset["raster:bands"] == [{"nodata": -32768, "data_type": "float32", "spatial_resolution": 10}]
            assert asset["href"].endswith(f"iw-{key}.rtc.tiff")
        assert item["assets"]["rendered_preview"]["roles"] == ["overview"]


def test_derived_from_link_names_the_grd_item(raw_items, mirror):
    for item in raw_items:
        links = [link for link in item["links"] if link["rel"] == "derived_from"]
        assert len(links) == 1
        assert links[0]["href"].endswith(f"/collections/sentinel-1-grd/items/{item['id'].removesuffix('_rtc')}")


def test_cogs_pass_cog_validate_and_match_the_item(mirror, local_s1_items):
    from rio_cogeo.cogeo import cog_validate

    for item in (local_s1_items[0], local_s1_items[-1]):
        p = item["properties"]
        for key in ("vv", "vh"):
            asset = item["assets"][key]
            path = files_dir() / asset["href"]
            valid, errors, _ = cog_validate(mirror["files_url"] + asset["href"], quiet=True)
            assert valid, (key, errors)
            with rasterio.open(path) as ds:
                assert ds.count == 1 and ds.dtypes == ("float32",) and ds.nodata == -32768
                assert ds.block_shapes == [(512, 512)] and ds.overviews(1)
                assert ds.tags(ns="IMAGE_STRUCTURE")["COMPRESSION"] == "DEFLATE"
                assert ds.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "3"  # floating-point predictor
                assert ds.crs.to_epsg() == p["proj:epsg"]
                assert list(ds.transform)[:6] == p["proj:transform"][:6]
                assert [ds.height, ds.width] == p["proj:shape"]
            assert asset["file:size"] == path.stat().st_size
            assert asset["file:checksum"] == hashlib.md5(path.read_bytes()).hexdigest()


def test_backscatter_per_class_in_the_files(local_s1_items):
    for item in local_s1_items[::3]:
        cover = labels_on(item)
        vv, vh = read(item, "vv"), read(item, "vh")
        valid = (vv != -32768) & (vh != -32768)
        db = {}
        for name, code in CODES.items():
            m = (cover == code) & valid
            db[name] = (10 * np.log10(vv[m].mean()), 10 * np.log10(vh[m].mean()))
        assert db["water"][0] < -18
        assert db["urban"][0] > db["vegetation"][0] > db["water"][0]
        ratio = {k: v[1] - v[0] for k, v in db.items()}  # VH/VV in dB
        assert ratio["vegetation"] > ratio["urban"]


def test_enl_on_homogeneous_water_is_4_4(local_s1_items):
    # the calmest Osaka date; a 100 x 100 px window of open bay (every pixel water in the truth)
    osaka = [it for it in local_s1_items if it["properties"]["proj:epsg"] == 32653
             and (read(it, "vv")[1400:1500, 20:120] != -32768).all()]
    item = min(osaka, key=lambda it: read(it, "vv")[1400:1500, 20:120].mean())
    assert (labels_on(item)[1400:1500, 20:120] == CODES["water"]).all()
    for key in ("vv", "vh"):
        w = read(item, key)[1400:1500, 20:120].astype("float64")
        enl = w.mean() ** 2 / w.var()
        assert enl == pytest.approx(4.4, rel=0.1), (key, enl)  # 10^4 pixels: +-3 % sampling error, plus wind texture


def test_swath_edge_nodata_on_the_listed_dates(local_s1_items):
    sc = load_s1_scenario()
    edge_ids = {item_id(p) for p in sc.passes if p.index in p.area.swath_edge}
    assert len(edge_ids) >= 4
    for item in local_s1_items:
        vv = read(item, "vv")
        nodata = (vv == -32768).mean()
        if item["id"] in edge_ids:
            assert 0.05 < nodata < 0.6
            to_utm = Transformer.from_crs(4326, item["properties"]["proj:epsg"], always_xy=True)
            footprint = shapely.transform(shapely.geometry.shape(item["geometry"]),
                                          lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1])))
            assert footprint.area == pytest.approx((vv != -32768).sum() * 100.0, rel=0.01)  # 10 m pixels
        else:
            assert nodata == 0


def test_pc_client_finds_both_cities(pc, local_s1_items):
    osaka = list(pc.search(collections=[COLLECTION], bbox=OSAKA_BBOX).items())
    tokyo = list(pc.search(collections=[COLLECTION], bbox=TOKYO_BBOX).items())
    assert len({i.datetime.date() for i in osaka}) >= 8 and len({i.datetime.date() for i in tokyo}) >= 8
    # pystac >= 1.15 migrates PC's integer proj:epsg to proj:code when it loads an item
    assert {i.properties["proj:code"] for i in osaka} == {"EPSG:32653"}
    assert {i.properties["proj:code"] for i in tokyo} == {"EPSG:32654"}
    assert len(osaka) + len(tokyo) == len(local_s1_items)


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_filter_on_orbit_state(pc, local_s1_items, method):
    found = {i.id for i in pc.search(collections=[COLLECTION], filter="\"sat:orbit_state\" = 'ascending'",
                                     method=method).items()}
    expected = {it["id"] for it in local_s1_items if it["properties"]["sat:orbit_state"] == "ascending"}
    assert found == expected and 0 < len(expected) < len(local_s1_items)


def test_query_and_sort_on_relative_orbit_are_numeric(pc, local_s1_items):
    orbits = sorted({it["properties"]["sat:relative_orbit"] for it in local_s1_items})
    assert any(o < 100 for o in orbits) and any(o >= 100 for o in orbits)  # text order would differ
    asc = [i.properties["sat:relative_orbit"] for i in pc.search(collections=[COLLECTION],
                                                                  sortby="sat:relative_orbit").items()]
    assert asc == sorted(asc)
    found = {i.id for i in pc.search(collections=[COLLECTION], query={"sat:relative_orbit": {"lt": 100}}).items()}
    assert found == {it["id"] for it in local_s1_items if it["properties"]["sat:relative_orbit"] < 100}


def test_filter_on_string_ids(pc, local_s1_items):
    want = local_s1_items[4]
    flt = {"op": "and", "args": [
        {"op": "=", "args": [{"property": "s1:datatake_id"}, want["properties"]["s1:datatake_id"]]},
        {"op": "=", "args": [{"property": "sar:instrument_mode"}, "IW"]},
    ]}
    assert [i.id for i in pc.search(collections=[COLLECTION], filter=flt).items()] == [want["id"]]


def test_signing_is_a_no_op_on_the_mirror(pc, mirror):
    item = next(pc.search(collections=[COLLECTION], max_items=1).items())
    href = sources.sign(item, provider="planetary-computer").assets["vv"].href
    assert href.startswith(mirror["files_url"])
    with rasterio.Env(**sources.GDAL_HTTP_OPTIONS), rasterio.open(href) as ds:
        block = ds.read(1, window=((0, 256), (0, 256)))
    assert block.dtype == np.float32
