"""Where a scene has data: the real west edge of relative orbit 107's swath across tile 35SNA."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from geolesson.mirror.sentinel2 import geometry
from geolesson.mirror.sentinel2.scenario import GSD


def test_the_real_swath_edge_cuts_the_north_west_corner_of_tile_35sna(scenario, scenario_item):
    acq, tile, item = scenario_item("2023-08-27")
    assert tile.is_full
    # every 10th row and column of the whole tile: Earth Search's item says 12.146 % nodata
    rows = geometry.nodata_mask(scenario, acq, tile)[::10, ::10]
    assert rows.mean() == pytest.approx(0.12146, abs=0.005)
    assert rows[0, 0] and not rows[0, -1] and not rows[-1, -1]
    shape = shapely.geometry.shape(item["geometry"])
    assert shape.exterior.coords[0] and shapely.Point(26.9996, 37.0462).distance(shape) > 0.05
    # the crops lie east of it: whole
    for crop in scenario.tiles:
        if acq.index not in scenario.partial_orbit.get(crop.mgrs, ()):
            assert not geometry.nodata_mask(scenario, acq, crop).any()
    np.testing.assert_allclose(geometry.footprint(scenario, acq, tile).area / tile.full().width ** 2 / GSD**2,
                               1 - rows.mean(), atol=0.003)
