"""Every mirror item carries Earth Search's 35 assets, declared as Earth Search declares them: the
same titles, roles, media types, eo:bands, raster:bands and gsd as a real item's."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from geolesson.mirror.sentinel2.scenario import GSD
from tests.fixtures import ROOT

# A real Earth Search v1 item (pystac-client's test cassettes) in the reference data that CI
# puts beside the checkout (../shared); GEOLESSON_REFERENCE_DATA names another copy.
REFERENCE_ITEM = "stac/earth-search-v1_sentinel-2-l2a_item_S2A_13TDE_20231008_0_L2A.json"


def _reference_item() -> dict:
    named = os.environ.get("GEOLESSON_REFERENCE_DATA")
    path = Path(named or ROOT.parent / "shared" / "reference-data") / REFERENCE_ITEM
    if not path.is_file():
        # CI names the copy (.ci/run): there, a missing item fails instead of skipping
        assert not named, f"GEOLESSON_REFERENCE_DATA={named} has no {REFERENCE_ITEM}"
        pytest.skip(f"the real Earth Search item to compare with is not at {path}: CI provides ../shared; "
                    "set GEOLESSON_REFERENCE_DATA to a copy of the reference data")
    return json.loads(path.read_text())


@pytest.mark.parametrize("day, crop", [("2023-07-13", 0), ("2023-08-27", 0), ("2023-09-11", 1)])
def test_items_carry_earth_search_s_35_assets_as_earth_search_declares_them(scenario_item, day, crop):
    real = _reference_item()["assets"]
    _, tile, item = scenario_item(day, crop)
    assert list(item["assets"]) == list(real) and len(real) == 35
    for key, want in real.items():
        got = item["assets"][key]
        for field in ("title", "roles", "type", "eo:bands", "raster:bands", "gsd"):
            assert got.get(field) == want.get(field), (key, field)
        assert got["href"].rsplit("/", 1)[1] == want["href"].rsplit("/", 1)[1]
        if "proj:shape" in want:  # the same grid as the real tile's, at this item's extent
            scale = want["proj:transform"][0] / GSD
            assert got["proj:shape"] == [round(tile.height / scale), round(tile.width / scale)]
            assert got["proj:transform"][0] == want["proj:transform"][0]
    assert tile.is_full == (day == "2023-08-27")
