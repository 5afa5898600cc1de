"""geolesson.stitching and geolesson.evaluation, on items and arrays made here (no mirror)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from rio_cogeo.cogeo import cog_validate

from geolesson import evaluation, stitching

EPSG = 32635
TRANSFORM = Affine(10.0, 0.0, 576000.0, 0.0, -10.0, 4010680.0)


def make_item(shape=(300, 430), item_id="S2A_TEST_20230801_0_L2A", transform=TRANSFORM):
    """A STAC item dict with only the metadata the stitcher reads (no file behind it)."""
    return {
        "type": "Feature", "stac_version": "1.0.0", "id": item_id, "collection": "sentinel-2-l2a",
        "properties": {"datetime": "2023-08-01T09:00:00Z", "proj:epsg": EPSG},
        "assets": {"red": {"href": "red.tif", "proj:shape": list(shape),
                           "proj:transform": list(transform)[:6]}},
        "geometry": None, "bbox": None, "links": [],
    }


def scene(shape, channels=1, seed=0):
    return np.random.default_rng(seed).random((channels, *shape), dtype=np.float32)


def identity(grid, truth):
    for row in grid.to_dict("records"):
        r0, c0, h, w = row["row_off"], row["col_off"], row["height"], row["width"]
        yield row, truth[:, r0:r0 + h, c0:c0 + w].copy()


@pytest.mark.parametrize("blend,crop", [("linear", 0), ("uniform", 0), ("linear", 8), ("uniform", 15)])
@pytest.mark.parametrize("shape", [(300, 430), (64, 64), (100, 97)])
def test_identity_model_gives_back_the_input_exactly(shape, blend, crop):
    item = make_item(shape)
    grid = stitching.overlap_grid(item, chip_size=64, overlap=32)
    truth = scene(shape, channels=2)
    st = stitching.Stitcher(item, channels=2, blend=blend, crop=crop)
    for row, pred in identity(grid, truth):
        st.add(row, pred)
    out = st.result()
    assert out.shape == (2, *shape) and out.dtype == np.float32
    np.testing.assert_array_equal(out.values, truth)  # bit for bit, edges included
    assert st.uncovered == 0
    hits = st.hits().values
    assert hits.min() >= 1
    assert st.buffer_rows <= 64  # never more rows than one chip


def test_hit_counts_equal_a_brute_force_count():
    shape = (150, 200)
    item = make_item(shape)
    grid = stitching.overlap_grid(item, chip_size=64, overlap=16)
    expected = np.zeros(shape, int)
    for r in grid.itertuples():
        expected[r.row_off:r.row_off + 64, r.col_off:r.col_off + 64] += 1
    st = stitching.Stitcher(item)
    for row, pred in identity(grid, scene(shape)):
        st.add(row, pred)
    np.testing.assert_array_equal(st.hits().values, expected)


def test_grid_covers_the_scene_with_full_chips_inside_it():
    item = make_item((300, 430))
    grid = stitching.overlap_grid(item, chip_size=64, overlap=24)
    assert (grid.row_off + grid.height).max() == 300 and (grid.col_off + grid.width).max() == 430
    assert set(grid.width) == {64} and grid.row_off.min() == 0 and grid.col_off.min() == 0
    starts = sorted(set(grid.col_off))
    assert np.diff(starts)[:-1].tolist() == [40] * (len(starts) - 2)  # stride = 64 - 24
    assert grid.chip_id.is_unique
    assert list(grid.sort_values(["row_off", "col_off"]).index) == list(grid.index)  # row order
    # footprint of the first chip in lon/lat, from the transform: its UTM corner
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(EPSG, 4326, always_xy=True).transform(576000.0, 4010680.0)
    x0, _, _, y1 = grid.geometry.iloc[0].bounds
    assert x0 == pytest.approx(lon, abs=1e-3) and y1 == pytest.approx(lat, abs=1e-3)


def test_linear_blend_is_a_partition_of_unity_between_neighbours():
    w = stitching.blend_weights(64, 64, 16)
    left, right = w[0, 48:], w[0, :16]  # the right edge of one chip over the left of the next
    np.testing.assert_allclose(left + right, np.ones(16) * w[0, 32], rtol=0, atol=1e-15)
    assert w.min() > 0
    np.testing.assert_array_equal(stitching.blend_weights(8, 8, 0), np.ones((8, 8)))


def test_blending_averages_disagreeing_chips_with_the_window():
    """Two chips predicting constants 0 and 1 over a 16 px overlap: a linear ramp."""
    item = make_item((32, 48))
    rows = [{"item_id": item["id"], "row_off": 0, "col_off": c, "height": 32, "width": 32,
             "overlap": 16} for c in (0, 16)]
    st = stitching.Stitcher(item)
    st.add(rows[0], np.zeros((32, 32)))
    st.add(rows[1], np.ones((32, 32)))
    out = st.result().values[0, 10]
    np.testing.assert_array_equal(out[:16], 0)
    np.testing.assert_array_equal(out[32:], 1)
    np.testing.assert_allclose(out[16:32], (np.arange(16) + 1) / 17, rtol=1e-6)


def test_the_written_cog_has_the_items_grid_and_is_valid(tmp_path):
    shape = (300, 430)
    item = make_item(shape)
    grid = stitching.overlap_grid(item, chip_size=64, overlap=16)
    truth = scene(shape)
    out = stitching.write_cog(identity(grid, truth), item, tmp_path / "pred.tif", blocksize=128,
                              hits_path=tmp_path / "hits.tif")
    valid, errors, _ = cog_validate(str(out["path"]))
    assert valid, errors
    assert cog_validate(str(out["hits_path"]))[0]
    with rasterio.open(out["path"]) as src:
        assert src.crs.to_epsg() == EPSG
        assert src.transform == TRANSFORM
        assert (src.height, src.width) == shape
        assert src.overviews(1)  # overviews were built
        np.testing.assert_array_equal(src.read(), truth)
    assert out["chips"] == len(grid) and out["uncovered"] == 0 and out["buffer_rows"] <= 64


def test_uncovered_pixels_are_nan_and_counted():
    item = make_item((64, 128))
    st = stitching.Stitcher(item, ramp=0)
    st.add({"item_id": item["id"], "row_off": 0, "col_off": 0, "height": 64, "width": 64},
           np.ones((64, 64)))
    out = st.result()
    assert np.isnan(out.values[0, :, 64:]).all() and st.uncovered == 64 * 64
    assert out.rio.crs.to_epsg() == EPSG and out.rio.transform() == TRANSFORM


def test_bad_input_raises_clear_errors():
    item = make_item((128, 128))
    with pytest.raises(ValueError, match=r"overlap must be smaller than chip_size \(64\).*overlap=64"):
        stitching.overlap_grid(item, chip_size=64, overlap=64)
    with pytest.raises(ValueError, match=r"overlap must be an integer >= 0, not -1"):
        stitching.overlap_grid(item, chip_size=64, overlap=-1)
    with pytest.raises(ValueError, match=r"chip_size=200 is larger than item"):
        stitching.overlap_grid(item, chip_size=200, overlap=0)
    grid = stitching.overlap_grid(item, chip_size=64, overlap=16).to_dict("records")
    st = stitching.Stitcher(item)
    with pytest.raises(ValueError, match=r"prediction: shape \(1, 64, 60\).*expected \(1, 64, 64\)"):
        st.add(grid[0], np.zeros((1, 64, 60)))
    other = dict(grid[0], item_id="S2B_OTHER")
    with pytest.raises(ValueError, match=r"belongs to item 'S2B_OTHER'.*stitches item 'S2A_TEST"):
        st.add(other, np.zeros((64, 64)))
    with pytest.raises(ValueError, match=r"not inside item"):
        st.add(dict(grid[0], col_off=100), np.zeros((64, 64)))
    st.add(grid[-1], np.zeros((64, 64)))
    with pytest.raises(ValueError, match=r"add chips in row order"):
        st.add(grid[0], np.zeros((64, 64)))
    with pytest.raises(ValueError, match=r"blend must be one of \['linear', 'uniform'\], not 'hann'"):
        stitching.Stitcher(item, blend="hann")
    bare = {k: v for k, v in grid[5].items() if k != "overlap"}
    with pytest.raises(ValueError, match=r"ramp: .*has none; pass ramp="):
        stitching.Stitcher(item).add(bare, np.zeros((64, 64)))
    with pytest.raises(ValueError, match=r"crop=32 leaves nothing"):
        stitching.Stitcher(item, crop=32).add(grid[5], np.zeros((64, 64)))


# --- evaluation ---------------------------------------------------------------------------

def brute_force(p, t, v):
    counts = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    for a, b, ok in zip(p.ravel().tolist(), t.ravel().tolist(), v.ravel().tolist()):
        if ok:
            counts[{(1, 1): "tp", (1, 0): "fp", (0, 1): "fn", (0, 0): "tn"}[(int(a), int(b))]] += 1
    return counts


@pytest.mark.parametrize("seed", range(5))
def test_scores_equal_a_brute_force_count(seed):
    rng = np.random.default_rng(seed)
    p, t = rng.random((7, 9)) < 0.4, rng.random((7, 9)) < 0.5
    v = rng.random((7, 9)) < 0.8
    c = brute_force(p, t, v)
    got = evaluation.confusion(p.astype(np.uint8), t, valid=v)
    assert got._asdict() == c
    assert got.iou == c["tp"] / (c["tp"] + c["fp"] + c["fn"])
    assert got.precision == c["tp"] / (c["tp"] + c["fp"])
    assert got.recall == c["tp"] / (c["tp"] + c["fn"])
    assert evaluation.confusion(p, t).tn == brute_force(p, t, np.ones_like(p))["tn"]


def test_undefined_scores_are_nan_and_bad_arrays_raise():
    empty = np.zeros((3, 3), bool)
    c = evaluation.confusion(empty, empty)
    assert np.isnan(c.iou) and np.isnan(c.precision) and np.isnan(c.recall) and c.tn == 9
    with pytest.raises(ValueError, match=r"predicted has shape \(3, 3\), truth \(3, 4\)"):
        evaluation.confusion(empty, np.zeros((3, 4), bool))
    with pytest.raises(ValueError, match=r"predicted must hold only 0/1.*e.g. 0.7"):
        evaluation.confusion(np.full((3, 3), 0.7), empty)
    with pytest.raises(ValueError, match=r"valid has shape"):
        evaluation.confusion(empty, empty, valid=np.ones(9, bool))


def test_seam_contrast_sees_a_step_at_chip_edges():
    y, x = np.mgrid[0:64, 0:128]
    smooth = np.sin(x / 7.0) + np.cos(y / 9.0)
    assert evaluation.seam_contrast(smooth, [32, 64, 96]) == pytest.approx(1.0, abs=0.5)
    stepped = smooth.copy()
    for seam in (32, 64, 96):
        stepped[:, seam:] += 0.5 * (-1) ** (seam // 32)
    assert evaluation.seam_contrast(stepped, [32, 64, 96]) > 4  # steps of 0.5 against ~0.1
    with pytest.raises(ValueError, match=r"seams_x must lie in \[1, 128\)"):
        evaluation.seam_contrast(smooth, [0])


def test_rows_no_chip_covers_are_streamed_in_strips_not_held():
    item = make_item((3000, 64))
    strips = []
    st = stitching.Stitcher(item, ramp=0, sink=lambda row0, values, hits: strips.append(
        (row0, values.shape[1], int(np.isnan(values).sum()))))
    st.add({"item_id": item["id"], "row_off": 0, "col_off": 0, "height": 64, "width": 64},
           np.ones((64, 64)))
    st.finish()
    assert sum(n for _, n, _ in strips) == 3000 and [r for r, _, _ in strips][0] == 0
    assert st.buffer_rows <= 256 and st.uncovered == (3000 - 64) * 64
    assert sum(nan for _, _, nan in strips) == st.uncovered
