"""The committed scenario, and the mirror's item for one of its dates, made without building
anything (the tests of this folder that need no built data)."""

from __future__ import annotations

import datetime as dt

import pytest

from geolesson.mirror.sentinel2 import geometry
from geolesson.mirror.sentinel2.items import item_dict
from geolesson.mirror.sentinel2.scenario import load_scenario


@pytest.fixture(scope="module")
def scenario():
    return load_scenario()


@pytest.fixture(scope="module")
def scenario_item(scenario):
    """``(day, crop=0) -> (acquisition, tile, item dict)``: the item of the overpass on ``day``
    (ISO date) over the scenario's ``crop``-th tile, as the build writes it (its crop, or the
    whole MGRS tile on a ``full_size`` date), with an SCL histogram of land only."""

    def make(day: str, crop: int = 0) -> tuple:
        (acq,) = [a for a in scenario.acquisitions if a.datetime.date() == dt.date.fromisoformat(day)]
        tile = scenario.tile_for(acq, scenario.tiles[crop])
        footprint = geometry.footprint(scenario, acq, tile)
        return acq, tile, item_dict(scenario, acq, tile, footprint, [0, 0, 0, 0, 1] + [0] * 7, base_url="")

    return make
