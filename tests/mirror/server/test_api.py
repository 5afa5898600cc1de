"""pystac-client against the running mirror, feature by feature."""

from __future__ import annotations

import datetime as dt

import pystac
import pytest

COLLECTION = "sentinel-2-l2a"
AOI_BBOX = [27.86, 36.00, 28.06, 36.22]


def ids(search):
    return {item.id for item in search.items()}


def test_lists_the_collection_labelled_simulated(client):
    collection = client.get_collection(COLLECTION)
    assert "SIMULATED" in collection.description
    assert sorted(c.id for c in client.get_collections()) == ["sentinel-1-rtc", COLLECTION]


def test_intersects_point_returns_only_items_covering_it(client, local_items):
    import shapely

    point = {"type": "Point", "coordinates": [27.95, 36.18]}  # north of the tiles' overlap: 35SNA only
    found = ids(client.search(collections=[COLLECTION], intersects=point))
    where = shapely.geometry.shape(point)
    expected = {it["id"] for it in local_items if shapely.geometry.shape(it["geometry"]).intersects(where)}
    assert found == expected
    assert found and all("_35SNA_" in i for i in found)


def test_bbox_search_covers_both_tiles(client, local_items):
    found = ids(client.search(collections=[COLLECTION], bbox=AOI_BBOX))
    assert found == {it["id"] for it in local_items}
    assert {i.split("_")[1] for i in found} == {"35SNA", "35SNV"}


def _dates(items):
    return [dt.datetime.fromisoformat(it["properties"]["datetime"].replace("Z", "+00:00")) for it in items]


def test_datetime_closed_range(client, local_items):
    found = ids(client.search(collections=[COLLECTION], datetime="2023-07-15/2023-07-31"))
    lo, hi = dt.datetime(2023, 7, 15, tzinfo=dt.timezone.utc), dt.datetime(2023, 8, 1, tzinfo=dt.timezone.utc)
    expected = {it["id"] for it, t in zip(local_items, _dates(local_items)) if lo <= t < hi}
    assert found == expected and len(expected) == 6


@pytest.mark.parametrize("interval, keep", [
    ("2023-09-01/..", lambda t: t >= dt.datetime(2023, 9, 1, tzinfo=dt.timezone.utc)),
    ("../2023-06-10", lambda t: t < dt.datetime(2023, 6, 11, tzinfo=dt.timezone.utc)),
])
def test_datetime_open_ranges(client, local_items, interval, keep):
    found = ids(client.search(collections=[COLLECTION], datetime=interval))
    expected = {it["id"] for it, t in zip(local_items, _dates(local_items)) if keep(t)}
    assert found == expected and expected


def test_query_on_cloud_cover_is_numeric(client, local_items):
    found = ids(client.search(collections=[COLLECTION], query={"eo:cloud_cover": {"lt": 10}}))
    expected = {it["id"] for it in local_items if it["properties"]["eo:cloud_cover"] < 10}
    assert found == expected
    # several nearly clear scenes exist, and cloudier ones too
    assert sum(it["properties"]["eo:cloud_cover"] < 1 for it in local_items) >= 4
    assert max(it["properties"]["eo:cloud_cover"] for it in local_items) > 90


def test_filter_cql2_json(client, local_items):
    flt = {"op": "and", "args": [
        {"op": "<", "args": [{"property": "eo:cloud_cover"}, 20]},
        {"op": "=", "args": [{"property": "platform"}, "sentinel-2b"]},
    ]}
    found = ids(client.search(collections=[COLLECTION], filter=flt))
    expected = {it["id"] for it in local_items
                if it["properties"]["eo:cloud_cover"] < 20 and it["properties"]["platform"] == "sentinel-2b"}
    assert found == expected and expected


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_filter_cql2_text(client, local_items, method):
    text = "\"eo:cloud_cover\" < 20 AND \"mgrs:grid_square\" = 'NV'"
    found = ids(client.search(collections=[COLLECTION], filter=text, method=method))
    expected = {it["id"] for it in local_items
                if it["properties"]["eo:cloud_cover"] < 20 and it["properties"]["mgrs:grid_square"] == "NV"}
    assert found == expected and expected


def test_sortby_cloud_cover_is_numeric_not_text(client):
    def cloud_cover(sortby):
        found = client.search(collections=[COLLECTION], sortby=sortby).items()
        return [it.properties["eo:cloud_cover"] for it in found]

    desc, asc = cloud_cover("-eo:cloud_cover"), cloud_cover("eo:cloud_cover")
    assert desc == sorted(desc, reverse=True) and asc == sorted(asc)
    assert any(v >= 10 for v in desc) and any(0 < v < 10 for v in desc)  # text order would put "8.5" above "12"


def test_matched_counts_without_fetching_everything(client, local_items):
    search = client.search(collections=[COLLECTION], query={"eo:cloud_cover": {"lt": 50}}, limit=1)
    assert search.matched() == sum(it["properties"]["eo:cloud_cover"] < 50 for it in local_items)


def test_paging_with_limit_below_the_result_count(client, local_items):
    search = client.search(collections=[COLLECTION], limit=7)
    pages = list(search.pages())
    assert len(pages) == -(-len(local_items) // 7)
    assert all(len(p.items) <= 7 for p in pages)
    assert sorted(i.id for p in pages for i in p.items) == sorted(it["id"] for it in local_items)


def test_item_collection_round_trips_as_geojson(client, tmp_path):
    ic = client.search(collections=[COLLECTION], datetime="2023-08-02", max_items=10).item_collection()
    assert len(ic) == 2
    path = tmp_path / "items.geojson"
    ic.save_object(dest_href=str(path))
    again = pystac.ItemCollection.from_file(str(path))
    assert [i.id for i in again] == [i.id for i in ic]
    assert again[0].assets["red"].href == ic[0].assets["red"].href


def test_get_one_item(client, local_items):
    want = local_items[5]
    item = client.get_collection(COLLECTION).get_item(want["id"])
    assert item.id == want["id"]
    assert item.properties["eo:cloud_cover"] == want["properties"]["eo:cloud_cover"]
    assert item.assets["nir"].href.endswith(want["assets"]["nir"]["href"])
