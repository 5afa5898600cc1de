"""geolesson.plot on arrays the tests make."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from geolesson import plot


def test_stretch_maps_percentiles_to_0_and_1_and_keeps_nodata():
    band = np.arange(1, 101, dtype="float64").reshape(10, 10)
    band[0, 0] = 0  # nodata
    out = plot.stretch(band, lo=0, hi=100)
    assert np.isnan(out[0, 0])
    assert np.nanmin(out) == 0 and np.nanmax(out) == 1
    np.testing.assert_allclose(out[5, 5], (band[5, 5] - 2) / (100 - 2))


def test_stretch_bands_independently():
    data = np.stack([np.linspace(1, 10, 100).reshape(10, 10), np.linspace(100, 1000, 100).reshape(10, 10)])
    out = plot.stretch(data, lo=0, hi=100)
    np.testing.assert_allclose(out[0], out[1])


@pytest.mark.parametrize("lo, hi", [(50, 50), (-1, 90), (10, 101)])
def test_stretch_rejects_bad_percentiles(lo, hi):
    with pytest.raises(ValueError, match=f"lo={lo}, hi={hi}"):
        plot.stretch(np.ones((3, 3)), lo=lo, hi=hi)


def test_rgb_image_is_channels_last_and_black_where_nodata():
    rgb = np.random.default_rng(0).integers(1, 255, size=(3, 8, 6)).astype("uint8")
    rgb[:, 2, 3] = 0
    img = plot.rgb_image(rgb)
    assert img.shape == (8, 6, 3) and img.min() >= 0 and img.max() <= 1
    assert (img[2, 3] == 0).all()
    with pytest.raises(ValueError, match=r"\(3, H, W\).*\(2, 8, 6\)"):
        plot.rgb_image(rgb[:2])


def test_block_grid_draws_one_line_per_block_edge(tmp_path):
    from geolesson import cog
    from tests.fixtures import random_cog

    path = tmp_path / "c.tif"
    random_cog(path, shape=(1000, 700), blocksize=256)
    from rasterio.windows import Window

    info = cog.inspect(path)
    fig, ax = plt.subplots()
    window = Window(200, 200, 100, 100)  # straddles four 256-pixel blocks
    plot.block_grid(ax, info, window=window)
    assert len(ax.lines) == (4 + 1) + (3 + 1)  # 4 x 3 blocks: 5 horizontal and 4 vertical edges
    shaded = [p for p in ax.patches if p.get_alpha() == 0.3]
    assert len(shaded) == cog.blocks_touched(info, window) == 4
    assert "4×3 blocks" in ax.get_title()
    plt.close(fig)


def _frame():
    import geopandas as gpd
    from shapely.geometry import box

    return gpd.GeoDataFrame({"tile": ["a"]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:4326")


# (id, call(ax), expected, words the message must hold): one row per bad input
BAD_INPUTS = [
    ("footprints-none", lambda ax: plot.footprints(ax, None), TypeError, ["items", "None", "GeoDataFrame"]),
    ("footprints-list", lambda ax: plot.footprints(ax, [1, 2]), TypeError, ["items", "list"]),
    ("footprints-by", lambda ax: plot.footprints(ax, _frame(), by="mgrs"), ValueError, ["by", "'mgrs'", "tile"]),
    ("footprints-aoi-str", lambda ax: plot.footprints(ax, _frame(), aoi="rhodes"), TypeError, ["aoi", "'rhodes'"]),
    ("footprints-alpha", lambda ax: plot.footprints(ax, _frame(), alpha=2), ValueError, ["alpha", "2"]),
    ("block-grid-none", lambda ax: plot.block_grid(ax, None), TypeError, ["info", "None", "CogInfo"]),
    ("block-grid-window-tuple", lambda ax: plot.block_grid(ax, _info(), window=(0, 0, 5, 5)), TypeError,
     ["window", "(0, 0, 5, 5)", "Window"]),
]


def _info():
    from geolesson.cog import CogInfo

    fields = {name: None for name in CogInfo.__dataclass_fields__}
    fields.update(href="a.tif", height=100, width=100, block_shape=(64, 64), overviews=[], overview_shapes=[])
    return CogInfo(**fields)


@pytest.mark.parametrize("call, expected, words", [pytest.param(*c[1:], id=c[0]) for c in BAD_INPUTS])
def test_bad_input_is_refused_naming_the_parameter_and_value(call, expected, words):
    from tests.fixtures import assert_refused

    ax = plt.figure().add_subplot()
    try:
        assert_refused(lambda: call(ax), expected, words)
    finally:
        plt.close("all")
