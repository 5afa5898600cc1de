"""ItemGrid: an item's pixel grid from its projection metadata, its windows and their footprints."""

from __future__ import annotations

import numpy as np
import pystac
import pytest
from affine import Affine
from pyproj import Transformer

from geolesson.grid import DEFAULT_REFERENCE_ASSETS, ItemGrid, reference_asset
from tests.fixtures import make_item

# a 10 m grid of 300 x 200 pixels in UTM zone 35N, and a 20 m band on the same corner
ORIGIN = (600000.0, 4000020.0)


def item(**props) -> dict:
    x0, y0 = ORIGIN
    return make_item("S2B_35SNA_20230703_0_L2A", {
        "red": {"href": "red.tif", "proj:shape": [300, 200], "proj:transform": [10, 0, x0, 0, -10, y0]},
        "scl": {"href": "scl.tif", "proj:shape": [150, 100], "proj:transform": [20, 0, x0, 0, -20, y0, 0, 0, 1]},
        "thumbnail": {"href": "thumb.jpg"},
    }, datetime="2023-07-03T09:06:41Z", properties={"proj:epsg": 32635, **props})


def test_grid_of_the_reference_asset():
    grid = ItemGrid.from_item(item())
    assert grid.asset == "red" == DEFAULT_REFERENCE_ASSETS[0] and grid.href == "red.tif"
    assert grid.shape == (300, 200) and grid.resolution == 10.0 and grid.epsg == 32635
    assert grid.crs == "EPSG:32635" and grid.item_id == "S2B_35SNA_20230703_0_L2A"
    assert grid.bounds == (600000.0, 4000020.0 - 3000, 600000.0 + 2000, 4000020.0)
    assert grid.transform == Affine(10, 0, 600000.0, 0, -10, 4000020.0)


def test_a_pystac_item_gives_the_same_grid():
    d = item()
    assert ItemGrid.from_item(pystac.Item.from_dict(d)) == ItemGrid.from_item(d)


def test_proj_code_and_properties_fallback_and_a_coarser_band():
    d = item()
    del d["properties"]["proj:epsg"]
    d["properties"]["proj:code"] = "EPSG:32635"
    scl = ItemGrid.from_item(d, "scl", role="scl_asset")
    assert scl.epsg == 32635 and scl.shape == (150, 100) and scl.resolution == 20.0
    assert scl.scale_to(ItemGrid.from_item(d)) == 2.0


def test_windows_transform_and_coordinates():
    grid = ItemGrid.from_item(item())
    t = grid.window_transform(row_off=64, col_off=32)
    assert (t.c, t.f, t.a, t.e) == (600320.0, 4000020.0 - 640, 10.0, -10.0)
    coords = grid.coords((64, 32, 4, 3))
    np.testing.assert_array_equal(coords["x"], 600320.0 + np.array([5.0, 15.0, 25.0]))
    np.testing.assert_array_equal(coords["y"], 4000020.0 - 640 - np.array([5.0, 15.0, 25.0, 35.0]))
    gt = [float(v) for v in coords["spatial_ref"][2]["GeoTransform"].split()]
    assert gt == [t.c, t.a, t.b, t.f, t.d, t.e]


def test_footprints_are_the_windows_corners_in_lon_lat():
    grid = ItemGrid.from_item(item())
    polys = grid.footprints(np.array([0, 100]), np.array([0, 50]), np.array([64, 64]), np.array([64, 32]))
    to_ll = Transformer.from_crs(32635, 4326, always_xy=True)
    for poly, (r, c, h, w) in zip(polys, [(0, 0, 64, 64), (100, 50, 64, 32)]):
        x0, y0 = 600000.0 + c * 10, 4000020.0 - r * 10
        corners = [to_ll.transform(x, y) for x, y in ((x0, y0), (x0 + w * 10, y0), (x0 + w * 10, y0 - h * 10),
                                                        (x0, y0 - h * 10))]
        ring = np.asarray(poly.exterior.coords)
        for corner in corners:
            assert np.min(np.hypot(*(ring - corner).T)) < 1e-9
        assert len(ring) == 4 * 4 + 1  # FOOTPRINT_DENSIFY points per edge, closed


@pytest.mark.parametrize("window, words", [
    ((0, 0, 0, 64), "height=0"),
    ((300, 0, 64, 64), "wholly outside"),
    ((-64, -64, 64, 64), "wholly outside"),
])
def test_check_window_refuses_empty_or_outside_windows(window, words):
    grid = ItemGrid.from_item(item())
    with pytest.raises(ValueError, match=words):
        grid.check_window(window)
    grid.check_window((280, 190, 64, 64))  # over the edge is fine


@pytest.mark.parametrize("change, words", [
    (lambda d: d["assets"]["red"].pop("proj:transform"), "no proj:transform"),
    (lambda d: d["assets"]["red"].update({"proj:transform": [10, 1, 0, 0, -10, 0]}), "not north-up"),
    (lambda d: d["assets"]["red"].update({"proj:transform": [10, 0, 0, 0, -20, 0]}), "not square"),
    (lambda d: d["properties"].update({"proj:epsg": 4326}), "projected CRS in metres"),
    (lambda d: d["properties"].pop("proj:epsg"), "no proj:epsg or proj:code"),
    (lambda d: d["assets"].pop("red"), "none of the default reference assets"),
])
def test_bad_metadata_is_refused_by_name(change, words):
    d = item()
    change(d)
    with pytest.raises(ValueError, match=words):
        ItemGrid.from_item(d)


def test_grids_must_share_the_origin():
    d = item()
    d["assets"]["scl"]["proj:transform"] = [20, 0, ORIGIN[0] + 10, 0, -20, ORIGIN[1]]
    with pytest.raises(ValueError, match="must share the grid origin"):
        ItemGrid.from_item(d, "scl").scale_to(ItemGrid.from_item(d))


def test_reference_asset_names_what_the_item_has():
    assert reference_asset(item(), "scl") == "scl" and reference_asset(item()) == "red"
    with pytest.raises(ValueError, match=r"\['scl', 'thumbnail'\]"):
        reference_asset({"id": "x", "assets": {"scl": {}, "thumbnail": {}}})
    with pytest.raises(ValueError, match=r"has no asset 'nir' \(reference_asset='nir'\)"):
        ItemGrid.from_item(item(), "nir")
