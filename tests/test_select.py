"""geolesson.select: the chapters' item and date choices, on hand-made items and on a second,
differently dated simulated scenario (tests/data/variant_scenario.toml), built without a
running mirror. Each check compares the choice made from metadata with the simulated pixels.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from geolesson import select
from geolesson.mirror import simulate
from geolesson.mirror.scenario import load_scenario
from geolesson.mirror.stac_items import item_dict

VARIANT = Path(__file__).parent / "data" / "variant_scenario.toml"
# the fire as the chapters give it: an interval, not an acquisition date
FIRE = "2023-07-18/2023-07-27"
CLOUD_CLASSES = (3, 8, 9, 10)  # shadow, cloud medium/high, cirrus


def fake(iid, when, tile="35SNA", cloud=0.0, shape=(2048, 2048), nodata=0.0):
    return {"id": iid, "properties": {"datetime": when, "eo:cloud_cover": cloud, "grid:code": f"MGRS-{tile}",
                                      "s2:nodata_pixel_percentage": nodata},
            "assets": {"red": {"proj:shape": list(shape)}}}


# ---------------------------------------------------------------- hand-made items


def test_tile_of_reads_each_providers_property():
    assert select.tile_of(fake("a", "2023-07-01T09:00:00Z", tile="35SNV")) == "35SNV"
    pc = {"id": "b", "properties": {"s2:mgrs_tile": "35SNA"}}
    assert select.tile_of(pc) == "35SNA"
    parts = {"id": "c", "properties": {"mgrs:utm_zone": 35, "mgrs:latitude_band": "S", "mgrs:grid_square": "NA"}}
    assert select.tile_of(parts) == "35SNA"
    with pytest.raises(ValueError, match="'d' has no MGRS tile"):
        select.tile_of({"id": "d", "properties": {}})


def test_largest_clearest_prefers_size_then_cloud_then_date():
    items = [fake("crop-clear", "2023-08-01T09:00:00Z", cloud=0.0),
             fake("full-cloudy", "2023-08-06T09:00:00Z", cloud=12.0, shape=(10980, 10980)),
             fake("full-clear-late", "2023-08-31T09:00:00Z", cloud=0.0, shape=(10980, 10980)),
             fake("full-clear-early", "2023-08-21T09:00:00Z", cloud=0.0, shape=(10980, 10980))]
    assert select.largest_clearest(items)["id"] == "full-clear-early"
    assert select.largest_clearest(items[:1])["id"] == "crop-clear"
    with pytest.raises(KeyError, match="no asset 'nir'"):
        select.largest_clearest(items, asset="nir")
    with pytest.raises(ValueError, match="items is empty"):
        select.largest_clearest([])


def test_clearest_date_nearest_the_event_on_each_side():
    items = [fake(f"{i}", f"2023-07-{d:02d}T09:00:00Z", tile=t, cloud=c)
             for i, (d, t, c) in enumerate([(2, "35SNA", 0.0), (2, "35SNV", 0.1), (12, "35SNA", 0.0),
                                             (12, "35SNV", 3.0), (22, "35SNA", 0.0), (28, "35SNA", 0.5),
                                             (30, "35SNA", 0.0)])]
    # 12 July is clear on one tile only: the worst tile decides
    assert select.clearest_date(items, before="2023-07-18") == dt.date(2023, 7, 2)
    assert select.clearest_date(items, after="2023-07-27") == dt.date(2023, 7, 28)
    assert select.clearest_date(items, after="2023-07-27", max_cloud=0.0) == dt.date(2023, 7, 30)
    with pytest.raises(ValueError, match="no date before 2023-07-02"):
        select.clearest_date(items, before="2023-07-02")
    with pytest.raises(ValueError, match="exactly one of"):
        select.clearest_date(items)
    with pytest.raises(ValueError, match="max_cloud=120"):
        select.clearest_date(items, before="2023-07-18", max_cloud=120)


def test_first_date_and_item_on():
    items = [fake("a", "2023-08-01T09:00:00Z", cloud=0.0), fake("b", "2023-08-06T09:00:00Z", cloud=18.0),
             fake("c", "2023-08-11T09:00:00Z", cloud=30.0, tile="35SNV", nodata=40.0)]
    assert select.first_date(items, after="2023-08-01", min_cloud=10, max_cloud=50) == dt.date(2023, 8, 6)
    assert select.first_date(items, after="2023-08-01", min_cloud=10, partial=True) == dt.date(2023, 8, 11)
    with pytest.raises(ValueError, match="no date after 2023-08-11"):
        select.first_date(items, after="2023-08-11")
    assert select.item_on(items, "2023-08-11", "35SNV")["id"] == "c"
    with pytest.raises(ValueError, match=r"tile='35SNA' on date=2023-08-11; tiles that day: \['35SNV'\]"):
        select.item_on(items, "2023-08-11", "35SNA")


def test_interval_parses_the_fire():
    start, end = select.interval(FIRE)
    assert (start, end) == (dt.date(2023, 7, 18), dt.date(2023, 7, 27))
    with pytest.raises(ValueError, match="interval='2023-07-18'"):
        select.interval("2023-07-18")


# ---------------------------------------------------------------- the variant scenario


@pytest.fixture(scope="module")
def variant():
    """(scenario, {item id: SCL at 20 m}, item dicts) of the variant scenario, simulated in memory."""
    sc = load_scenario(VARIANT)
    world = simulate.World(sc)
    scl, items = {}, []
    for acq in sc.acquisitions:
        for crop in sc.tiles:
            tile = sc.tile_for(acq, crop)
            scene = world.scene(acq, tile)
            counts = np.bincount(scene.scl[::2, ::2].ravel(), minlength=12)
            item = item_dict(sc, acq, tile, simulate.footprint(sc, acq, tile), counts, base_url="")
            scl[item["id"]] = scene.scl[::2, ::2]
            items.append(item)
    return sc, scl, items


def _cloudy_share(scl, items, date):
    """Share of observed SCL pixels that are cloud or shadow, over the date's items."""
    day = [it for it in items if select.acquired(it).date() == date]
    assert day, date
    px = np.concatenate([scl[it["id"]].ravel() for it in day])
    observed = px[px != 0]
    return float(np.isin(observed, CLOUD_CLASSES).mean())


def test_variant_dates_differ_from_the_main_scenario(variant):
    """The dates chapters 3-5 used to type do not exist in the variant: typed dates would fail here."""
    _, _, items = variant
    dates = set(select.date_table(items).index)
    typed = {dt.date(2023, 7, 12), dt.date(2023, 8, 1), dt.date(2023, 8, 31), dt.date(2023, 9, 15)}
    assert not dates & typed
    fire_start, fire_end = select.interval(FIRE)
    assert select.clearest_date(items, before=fire_start) not in typed


def test_variant_clear_dates_are_cloud_free_in_the_pixels(variant):
    """Chapter 4/5: "the clearest dates on each side of the fire: no masked land pixels"."""
    sc, scl, items = variant
    fire_start, fire_end = select.interval(FIRE)
    pre = select.clearest_date(items, before=fire_start)
    post = select.clearest_date(items, after=fire_end)
    assert pre < sc.fire_first_day and post > sc.fire_last_day
    assert _cloudy_share(scl, items, pre) == 0 and _cloudy_share(scl, items, post) == 0
    # nearest the fire: no clear date lies between either choice and the fire
    table = select.date_table(items)
    assert not ((table.index > pre) & (table.index < fire_start) & (table["cloud_cover"] <= 1)).any()
    assert not ((table.index < post) & (table.index > fire_end) & (table["cloud_cover"] <= 1)).any()
    for tile in ("35SNA", "35SNV"):
        assert select.tile_of(select.item_on(items, pre, tile)) == tile


def test_variant_partly_cloudy_dates_are_partly_cloudy_in_the_pixels(variant):
    """Chapter 4's cloudy post-fire date and chapter 5's partly cloudy, partial-orbit map date."""
    sc, scl, items = variant
    post = select.clearest_date(items, after=select.interval(FIRE)[1])
    cloudy = select.first_date(items, after=post, min_cloud=10, max_cloud=50)
    assert 0.05 < _cloudy_share(scl, items, cloudy) < 0.6
    mapped = select.first_date(items, after=post, min_cloud=5, max_cloud=50, partial=True)
    day = [it for it in items if select.acquired(it).date() == mapped]
    assert any((scl[it["id"]] == 0).any() for it in day)          # some tile ends at the swath edge
    assert 0.03 < _cloudy_share(scl, items, mapped) < 0.6


def test_variant_largest_clearest_without_a_full_size_item(variant):
    """Chapter 3: "the largest, clearest item": here all items are crops, so the clearest one."""
    _, scl, items = variant
    chosen = select.largest_clearest(items)
    assert select.pixel_count(chosen) == max(select.pixel_count(it) for it in items)
    assert chosen["properties"]["eo:cloud_cover"] == min(it["properties"]["eo:cloud_cover"] for it in items)
    assert not np.isin(scl[chosen["id"]], CLOUD_CLASSES).any()
