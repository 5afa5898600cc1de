"""The mirror's Sentinel-2 calendar and names follow Earth Search's real items over Rhodes.

The expected values are real: Earth Search v1's items as its search returns them (and the
Carpentries geospatial-python lesson prints them), its item S2A_13TDE_20231008_0_L2A and a
Planetary Computer item. They are typed here as facts about the real catalogue, not read from
the code under test.
"""

from __future__ import annotations

import datetime as dt

import pytest

from geolesson.mirror.sentinel2 import naming
from geolesson.mirror.sentinel2.items import item_dict, sun_angles
from geolesson.mirror.sentinel2.scenario import load_scenario

UTC = dt.timezone.utc
# Earth Search, S2A_35SNA_20230827_0_L2A (the Carpentries lesson prints its properties)
REAL_27_AUGUST = {
    "datetime": "2023-08-27T09:00:21.327000Z",
    "s2:product_uri": "S2A_MSIL2A_20230827T084601_N0509_R107_T35SNA_20230827T115803.SAFE",
    "s2:datatake_id": "GS2A_20230827T084601_042718_N05.09",
    "s2:datastrip_id": "S2A_OPER_MSI_L2A_DS_2APS_20230827T115803_S20230827T085947_N05.09",
    "s2:granule_id": "S2A_OPER_MSI_L2A_TL_2APS_20230827T115803_A042718_T35SNA_N05.09",
    "s2:generation_time": "2023-08-27T11:58:03.000000Z",
    "s2:processing_baseline": "05.09",
    "platform": "sentinel-2a",
    "view:sun_azimuth": 144.36354987218,
    "view:sun_elevation": 59.06665363921,
}


def test_the_calendar_alternates_sentinel_2b_and_2a_every_five_days(scenario):
    acqs = scenario.acquisitions
    days = [a.datetime.date() for a in acqs]
    assert all((b - a).days == 5 for a, b in zip(days, days[1:]))
    by_day = {a.datetime.date(): a.platform for a in acqs}
    assert by_day[dt.date(2023, 7, 3)] == "sentinel-2b" and by_day[dt.date(2023, 7, 8)] == "sentinel-2a"
    assert by_day[dt.date(2023, 8, 27)] == "sentinel-2a"
    assert all(a.platform != b.platform for a, b in zip(acqs, acqs[1:]))
    assert days[0].month == 6 and days[-1].month == 9  # the whole season on the same grid


def test_absolute_orbits_match_real_items():
    # Earth Search: S2A_35SNA_20230827 (relative orbit 107) and S2A_13TDE_20231008 (141)
    assert naming.absolute_orbit("sentinel-2a", dt.datetime(2023, 8, 27, 9, 0, 21, tzinfo=UTC), 107) == 42718
    assert naming.absolute_orbit("sentinel-2a", dt.datetime(2023, 10, 8, 18, 2, 55, tzinfo=UTC), 141) == 43324
    # Planetary Computer: S2B_MSIL2A_20190629T212529_R043 (datatake GS2B_20190629T212529_012081)
    assert naming.absolute_orbit("sentinel-2b", dt.datetime(2019, 6, 29, 21, 25, 29, tzinfo=UTC), 43) == 12081
    # ten days later the same satellite is 143 orbits on, on the same relative orbit
    a = naming.absolute_orbit("sentinel-2b", dt.datetime(2023, 7, 3, 9, tzinfo=UTC), 107)
    assert naming.absolute_orbit("sentinel-2b", dt.datetime(2023, 7, 13, 9, tzinfo=UTC), 107) == a + 143
    assert naming.relative_orbit("sentinel-2b", a) == 107


def test_the_27_august_item_has_earth_search_s_identifiers_and_sun(scenario):
    (acq,) = [a for a in scenario.acquisitions if a.datetime.date() == dt.date(2023, 8, 27)]
    tile = scenario.tile_for(acq, scenario.tiles[0])
    import shapely

    item = item_dict(scenario, acq, tile, shapely.box(*tile.bounds()), [0, 0, 0, 0, 1] + [0] * 7, base_url="")
    assert item["id"] == "S2A_35SNA_20230827_0_L2A"
    props = item["properties"]
    for key in ("datetime", "s2:product_uri", "s2:datatake_id", "s2:datastrip_id", "s2:granule_id",
                "s2:generation_time", "s2:processing_baseline", "platform"):
        assert props[key] == REAL_27_AUGUST[key], key
    assert props["view:sun_azimuth"] == pytest.approx(REAL_27_AUGUST["view:sun_azimuth"], abs=0.05)
    assert props["view:sun_elevation"] == pytest.approx(REAL_27_AUGUST["view:sun_elevation"], abs=0.05)
    assert naming.item_path(acq, tile) == "sentinel-cogs/sentinel-s2-l2a-cogs/35/S/NA/2023/8/S2A_35SNA_20230827_0_L2A"
    assert naming.jp2_path(acq, tile) == "sentinel-s2-l2a/tiles/35/S/NA/2023/8/27/0"


def test_the_southern_tile_is_sensed_later_in_the_same_datatake(scenario):
    acq = scenario.acquisitions[0]
    north, south = scenario.tiles
    assert south.y_max < north.y_max and acq.sensed(south) > acq.sensed(north)
    assert naming.identifiers(scenario, acq, north)["s2:datatake_id"] == \
        naming.identifiers(scenario, acq, south)["s2:datatake_id"]


def test_sun_angles_follow_the_season(scenario):
    tile = scenario.tiles[0]
    june = sun_angles(scenario, tile, dt.datetime(2023, 6, 21, 9, tzinfo=UTC))
    september = sun_angles(scenario, tile, dt.datetime(2023, 9, 21, 9, tzinfo=UTC))
    # elevation at 36.5 N, 09:00 UTC = about 10:50 solar time (noon would give 77 and 53.5 degrees)
    assert 65 < june[1] < 75 and 45 < september[1] < 53.5
    assert 90 < june[0] < september[0] < 180  # in the south-east, moving south


def test_off_calendar_dates_are_refused(tmp_path):
    from geolesson._home import SCENARIO_FILE, data_dir

    text = (data_dir() / SCENARIO_FILE).read_text().replace('"35SNA" = ["2023-08-27"]', '"35SNA" = ["2023-08-26"]')
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match="full_size: 35SNA 2023-08-26 is not an acquisition date"):
        load_scenario(path)
    path.write_text(text.replace('first_platform = "sentinel-2b"', 'first_platform = "sentinel-2c"'))
    with pytest.raises(ValueError, match="first_platform='sentinel-2c'"):
        load_scenario(path)
