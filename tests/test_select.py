"""geolesson.select, and the chapters' item and date choices: on hand-made items, and on a
second, differently dated simulated scenario (tests/data/variant_scenario.toml) built without
a running mirror. The chapters' own selection statements are read from book/*.md and run on
the variant's items; each choice made from metadata is checked against the simulated pixels.
"""

from __future__ import annotations

import ast
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from geolesson import select
from geolesson.mirror.sentinel2 import simulation
from geolesson.mirror.sentinel2.geometry import footprint
from geolesson.mirror.sentinel2.items import item_dict
from geolesson.mirror.sentinel2.scenario import load_scenario
from tests.book.chapters import code_cells
from tests.fixtures import DATA, ROOT

VARIANT = DATA / "variant_scenario.toml"
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
    world = simulation.World(sc)
    scl, items = {}, []
    for acq in sc.acquisitions:
        for crop in sc.tiles:
            tile = sc.tile_for(acq, crop)
            scene = world.scene(acq, tile)
            counts = np.bincount(scene.scl[::2, ::2].ravel(), minlength=12)
            item = item_dict(sc, acq, tile, footprint(sc, acq, tile), counts, base_url="")
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


# ---------------------------------------------------------------- the chapters' own selection code

SELECTORS = ("interval", "clearest_date", "first_date", "largest_clearest", "item_on")
# what each chapter must choose by search (names as the chapters assign them)
EXPECTED = {
    "01_search": {"fire_start", "fire_end"},
    "03_dask_ndvi": {"item"},
    "04_datacubes": {"FIRE", "fire_start", "fire_end", "pre_date", "post_date", "cloudy_date"},
    "05_chipping": {"fire_start", "fire_end", "pre_date", "post_date", "pre", "post", "pair",
                    "map_date"},
}


def selection_statements(chapter: str) -> list[str]:
    """The chapter's top-level code statements that choose items or dates with geolesson.select
    (and the FIRE interval they start from), in page order, as source text."""
    text = (ROOT / "book" / f"{chapter}.md").read_text()
    out = []
    for cell in code_cells(text):
        code = "\n".join(cell.body)
        try:
            tree = ast.parse(code)
        except SyntaxError:  # IPython magics (%%writefile ...)
            continue
        for stmt in tree.body:
            if not isinstance(stmt, ast.Assign):
                continue
            src = ast.get_source_segment(code, stmt)
            names = {n.id for t in stmt.targets for n in ast.walk(t) if isinstance(n, ast.Name)}
            if "FIRE" in names or any(f"select.{f}(" in src for f in SELECTORS):
                out.append(src)
    return out


@pytest.fixture(scope="module")
def chosen(variant):
    """{chapter: namespace} after running each chapter's selection statements on the variant items."""
    _, _, items = variant
    result = {}
    for chapter in EXPECTED:
        ns = {"select": select, "pd": pd, "items": items, "season": items}
        for src in selection_statements(chapter):
            exec(src, ns)  # noqa: S102 - the chapters' own code, on the variant's items
        result[chapter] = ns
    return result


@pytest.mark.parametrize("chapter", sorted(EXPECTED))
def test_chapter_chooses_by_search(chosen, chapter):
    missing = EXPECTED[chapter] - chosen[chapter].keys()
    assert not missing, f"{chapter} no longer chooses {sorted(missing)} with geolesson.select"


@pytest.mark.parametrize("chapter", sorted(EXPECTED))
def test_chapter_finds_what_its_text_says_in_the_variant(variant, chosen, chapter):
    """Each choice, made by the chapter's code on the variant's metadata, checked against the
    variant's simulated pixels: the clear dates nearest the fire are cloud-free, the partly
    cloudy dates partly cloudy, the map date cut by the swath edge, the item the largest and
    clearest."""
    sc, scl, items = variant
    ns = chosen[chapter]
    day = lambda v: pd.Timestamp(v).date()  # noqa: E731 - dates, Timestamps or datetimes
    table = select.date_table(items)
    if "fire_start" in ns:
        assert (day(ns["fire_start"]), day(ns["fire_end"])) == (sc.fire.first_day, sc.fire.last_day)
    if "pre_date" in ns:
        pre, post = day(ns["pre_date"]), day(ns["post_date"])
        assert pre < sc.fire.first_day and post > sc.fire.last_day
        assert _cloudy_share(scl, items, pre) == 0 and _cloudy_share(scl, items, post) == 0
        clear = table["cloud_cover"] <= 1  # nothing clear lies between a choice and the fire
        assert not (clear & (table.index > pre) & (table.index < sc.fire.first_day)).any()
        assert not (clear & (table.index < post) & (table.index > sc.fire.last_day)).any()
    if "cloudy_date" in ns:
        assert day(ns["cloudy_date"]) > day(ns["post_date"])
        assert 0.05 < _cloudy_share(scl, items, day(ns["cloudy_date"])) < 0.6
    if "map_date" in ns:
        mapped = day(ns["map_date"])
        on_day = [it for it in items if select.acquired(it).date() == mapped]
        assert any((scl[it["id"]] == 0).any() for it in on_day)  # a tile ends at the swath edge
        assert 0.03 < _cloudy_share(scl, items, mapped) < 0.6
    if "pre" in ns:
        for item, date in ((ns["pre"], ns["pre_date"]), (ns["post"], ns["post_date"])):
            assert select.tile_of(item) == "35SNA" and select.acquired(item).date() == day(date)
        assert sorted(select.tile_of(it) for it in ns["pair"]) == ["35SNA", "35SNV"]
    if "item" in ns:  # no full-size item here: the largest are all crops, so the clearest
        chosen_item = ns["item"]
        assert select.pixel_count(chosen_item) == max(select.pixel_count(it) for it in items)
        assert chosen_item["properties"]["eo:cloud_cover"] == min(
            it["properties"]["eo:cloud_cover"] for it in items)
        assert not np.isin(scl[chosen_item["id"]], CLOUD_CLASSES).any()
