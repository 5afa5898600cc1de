"""geolesson.stitching: predictions back on the item's grid, blended, with hit counts; streamed COGs."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate

from geolesson import stitching
from tests.fixtures import METADATA_EPSG, METADATA_TRANSFORM, assert_refused, metadata_item


def scene(shape, channels=1, seed=0):
    return np.random.default_rng(seed).random((channels, *shape), dtype=np.float32)


def identity(grid, truth):
    for row in grid.to_dict("records"):
        r0, c0, h, w = row["row_off"], row["col_off"], row["height"], row["width"]
        yield row, truth[:, r0:r0 + h, c0:c0 + w].copy()


@pytest.mark.parametrize("blend,crop", [("linear", 0), ("uniform", 0), ("linear", 8), ("uniform", 15)])
@pytest.mark.parametrize("shape", [(300, 430), (64, 64), (100, 97)])
def test_identity_model_gives_back_the_input_exactly(shape, blend, crop):
    item = metadata_item(shape)
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
    item = metadata_item(shape)
    grid = stitching.overlap_grid(item, chip_size=64, overlap=16)
    expected = np.zeros(shape, int)
    for r in grid.itertuples():
        expected[r.row_off:r.row_off + 64, r.col_off:r.col_off + 64] += 1
    st = stitching.Stitcher(item)
    for row, pred in identity(grid, scene(shape)):
        st.add(row, pred)
    np.testing.assert_array_equal(st.hits().values, expected)


def test_linear_blend_is_a_partition_of_unity_between_neighbours():
    w = stitching.blend_weights(64, 64, 16)
    left, right = w[0, 48:], w[0, :16]  # the right edge of one chip over the left of the next
    np.testing.assert_allclose(left + right, np.ones(16) * w[0, 32], rtol=0, atol=1e-15)
    assert w.min() > 0
    np.testing.assert_array_equal(stitching.blend_weights(8, 8, 0), np.ones((8, 8)))


def test_blending_averages_disagreeing_chips_with_the_window():
    """Two chips predicting constants 0 and 1 over a 16 px overlap: a linear ramp."""
    item = metadata_item((32, 48))
    rows = [{"item_id": item["id"], "row_off": 0, "col_off": c, "height": 32, "width": 32,
             "overlap": 16} for c in (0, 16)]
    st = stitching.Stitcher(item)
    st.add(rows[0], np.zeros((32, 32)))
    st.add(rows[1], np.ones((32, 32)))
    out = st.result().values[0, 10]
    np.testing.assert_array_equal(out[:16], 0)
    np.testing.assert_array_equal(out[32:], 1)
    np.testing.assert_allclose(out[16:32], (np.arange(16) + 1) / 17, rtol=1e-6)



@pytest.mark.parametrize("crop", [0, 8])
def test_uniform_blend_is_the_plain_mean_of_the_chips_that_cover_a_pixel(crop):
    """Chips that disagree: each pixel is the float64 mean of its chips' (cropped) values."""
    shape = (150, 200)
    item = metadata_item(shape)
    grid = stitching.overlap_grid(item, chip_size=64, overlap=32)
    rng = np.random.default_rng(1)
    total, count = np.zeros(shape), np.zeros(shape)
    st = stitching.Stitcher(item, blend="uniform", crop=crop)
    for row in grid.to_dict("records"):
        r0, c0 = row["row_off"], row["col_off"]
        pred = rng.random((64, 64), dtype=np.float32)
        st.add(row, pred)
        top, left = (0 if r0 == 0 else crop), (0 if c0 == 0 else crop)
        bottom = 64 - (0 if r0 + 64 == shape[0] else crop)
        right = 64 - (0 if c0 + 64 == shape[1] else crop)
        total[r0 + top:r0 + bottom, c0 + left:c0 + right] += pred[top:bottom, left:right]
        count[r0 + top:r0 + bottom, c0 + left:c0 + right] += 1
    np.testing.assert_array_equal(st.result().values[0], (total / count).astype(np.float32))
    np.testing.assert_array_equal(st.hits().values, count)


def test_a_refused_chip_leaves_the_stitcher_as_it_was():
    shape = (128, 96)
    item = metadata_item(shape)
    grid = stitching.overlap_grid(item, chip_size=64, overlap=32)
    truth = scene(shape)
    st = stitching.Stitcher(item)  # the ramp comes from each row's overlap
    chips = list(identity(grid, truth))
    late = chips[-1][0]
    for row, pred in chips[:2]:
        st.add(row, pred)
    with pytest.raises(ValueError, match="overlap"):  # a row far down, without its overlap
        st.add({k: v for k, v in late.items() if k != "overlap"}, chips[-1][1])
    for row, pred in chips[2:]:  # the rows it would have flushed are still open
        st.add(row, pred)
    np.testing.assert_array_equal(st.result().values, truth)

def test_the_written_cog_has_the_items_grid_and_is_valid(tmp_path):
    shape = (300, 430)
    item = metadata_item(shape)
    grid = stitching.overlap_grid(item, chip_size=64, overlap=16)
    truth = scene(shape)
    out = stitching.write_cog(identity(grid, truth), item, tmp_path / "pred.tif", blocksize=128,
                              hits_path=tmp_path / "hits.tif")
    valid, errors, _ = cog_validate(str(out["path"]))
    assert valid, errors
    assert cog_validate(str(out["hits_path"]))[0]
    with rasterio.open(out["path"]) as src:
        assert src.compression.value == "ZSTD" and src.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "3"
        assert src.crs.to_epsg() == METADATA_EPSG
        assert src.transform == METADATA_TRANSFORM
        assert (src.height, src.width) == shape
        assert src.overviews(1) == [2, 4]  # halving until an overview fits one 128 px block
        np.testing.assert_array_equal(src.read(), truth)
    with rasterio.open(out["path"], overview_level=0) as half:  # AVERAGE: the mean of each 2 x 2
        np.testing.assert_allclose(half.read(1), truth[0].reshape(150, 2, 215, 2).mean(axis=(1, 3)), rtol=1e-6)
    assert out["chips"] == len(grid) and out["uncovered"] == 0 and out["buffer_rows"] <= 64


def test_uncovered_pixels_are_nan_and_counted():
    item = metadata_item((64, 128))
    st = stitching.Stitcher(item, ramp=0)
    st.add({"item_id": item["id"], "row_off": 0, "col_off": 0, "height": 64, "width": 64},
           np.ones((64, 64)))
    out = st.result()
    assert np.isnan(out.values[0, :, 64:]).all() and st.uncovered == 64 * 64
    assert out.rio.crs.to_epsg() == METADATA_EPSG and out.rio.transform() == METADATA_TRANSFORM


def test_bad_input_raises_clear_errors():
    item = metadata_item((128, 128))
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


def test_rows_no_chip_covers_are_streamed_in_strips_not_held():
    item = metadata_item((3000, 64))
    strips = []
    st = stitching.Stitcher(item, ramp=0, sink=lambda row0, values, hits: strips.append(
        (row0, values.shape[1], int(np.isnan(values).sum()))))
    st.add({"item_id": item["id"], "row_off": 0, "col_off": 0, "height": 64, "width": 64},
           np.ones((64, 64)))
    st.finish()
    assert sum(n for _, n, _ in strips) == 3000 and [r for r, _, _ in strips][0] == 0
    assert st.buffer_rows <= 256 and st.uncovered == (3000 - 64) * 64
    assert sum(nan for _, _, nan in strips) == st.uncovered


def test_uint8_and_mask_outputs_store_what_they_promise(tmp_path):
    import rioxarray

    shape = (200, 260)
    item = metadata_item(shape)
    grid = stitching.overlap_grid(item, chip_size=64, overlap=16)
    truth = scene(shape)
    truth[0, :32, :32], truth[0, 64:80, :] = 0.0, 1.0  # the ends of the range are stored too
    scaled = stitching.write_cog(identity(grid, truth), item, tmp_path / "p.tif", blocksize=64,
                                 output="uint8")
    back = rioxarray.open_rasterio(scaled["path"], mask_and_scale=True).values
    assert np.abs(back - truth).max() <= stitching.UINT8_SCALE / 2 + 1e-7
    with rasterio.open(scaled["path"]) as src:
        assert src.dtypes == ("uint8",) and src.nodata == stitching.UINT8_NODATA
        assert src.scales == (pytest.approx(1 / 254),) and src.offsets == (0.0,)
        assert cog_validate(str(scaled["path"]))[0] and src.overviews(1)
    classes = stitching.write_cog(identity(grid, truth), item, tmp_path / "m.tif", blocksize=64,
                                  output="mask", threshold=0.25)
    with rasterio.open(classes["path"]) as src:
        np.testing.assert_array_equal(src.read(1), (truth[0] >= 0.25).astype(np.uint8))
    # two channels: the class is the channel with the highest value; uncovered pixels nodata
    two = scene(shape, channels=2, seed=3)
    out = stitching.write_cog(identity(grid[grid.row_off == 0], two), item, tmp_path / "c.tif",
                              channels=2, blocksize=64, output="mask")
    with rasterio.open(out["path"]) as src:
        stored = src.read(1)
    np.testing.assert_array_equal(stored[:64], two[:, :64].argmax(axis=0))
    assert (stored[64:] == stitching.UINT8_NODATA).all() and out["uncovered"] == 136 * 260


def test_write_cog_refuses_what_it_cannot_store_and_leaves_no_temporary_files(tmp_path):
    item = metadata_item((128, 128))
    grid = stitching.overlap_grid(item, chip_size=64, overlap=16)
    logits = scene((128, 128)) * 8 - 4  # not probabilities
    with pytest.raises(ValueError, match=r"output='uint8' stores probabilities in \[0, 1\]; these "
                                         r"values range from -\d"):
        stitching.write_cog(identity(grid, logits), item, tmp_path / "p.tif", output="uint8")
    with pytest.raises(ValueError, match=r"output must be one of \['float32', 'uint8', 'mask'\], "
                                         r"not 'int16'"):
        stitching.write_cog(identity(grid, logits), item, tmp_path / "p.tif", output="int16")
    with pytest.raises(ValueError, match=r"hits_path: .*p.tif is the prediction's path too"):
        stitching.write_cog(identity(grid, logits), item, tmp_path / "p.tif",
                            hits_path=tmp_path / "." / "p.tif")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_write_cog_says_where_its_time_went(tmp_path):
    item = metadata_item((128, 192))
    grid = stitching.overlap_grid(item, chip_size=64, overlap=16)
    out = stitching.write_cog(identity(grid, scene((128, 192))), item, tmp_path / "p.tif")
    seconds = out["seconds"]
    assert set(seconds) == {"wait", "stitch", "write", "write_wait", "cog", "total"}
    assert all(v >= 0 for v in seconds.values())
    parts = seconds["wait"] + seconds["stitch"] + seconds["write_wait"] + seconds["cog"]
    assert parts <= seconds["total"]


def _grid(item):
    return stitching.overlap_grid(item, chip_size=64, overlap=16).to_dict("records")


def _after(method):
    """A Stitcher on which ``method`` ("result" or "finish") was called, and a row to add."""
    item = metadata_item((128, 128))
    st = stitching.Stitcher(item)
    getattr(st, method)()
    return st, _grid(item)[0]


def _write(tmp_path, path=None, **kwargs):
    item = metadata_item((128, 128))
    predictions = kwargs.pop("predictions", [(row, np.zeros((64, 64))) for row in _grid(item)])
    return stitching.write_cog(predictions, item, tmp_path / "p.tif" if path is None else path, **kwargs)


def _add(prediction, row_index=0):
    item = metadata_item((128, 128))
    stitching.Stitcher(item).add(_grid(item)[row_index], prediction)


NAN_CHIP = np.where(np.eye(64, dtype=bool), np.nan, 0.5)

# (id, call(tmp_path), expected, words the message must hold): one row per bad input
BAD_INPUTS = [
    ("hits-path-is-path", lambda t: _write(t, hits_path=t / "p.tif"), ValueError,
     ["hits_path", "path", "p.tif", "differ"]),
    ("hits-path-same-file", lambda t: _write(t, hits_path=t / "." / "p.tif"), ValueError, ["hits_path", "p.tif"]),
    ("path-folder-missing", lambda t: _write(t, path=t / "no" / "such" / "p.tif"), FileNotFoundError,
     ["path", "no/such"]),
    ("hits-folder-missing", lambda t: _write(t, hits_path=t / "nope" / "h.tif"), FileNotFoundError,
     ["hits_path", "nope"]),
    ("path-is-folder", lambda t: _write(t, path=t), ValueError, ["path", "folder"]),
    ("path-none", lambda t: _write(t, path=False), TypeError, ["path", "False"]),
    ("predictions-none", lambda t: _write(t, predictions=None), TypeError, ["predictions", "None"]),
    ("blocksize-100", lambda t: _write(t, blocksize=100), ValueError, ["blocksize", "100", "16"]),
    ("gdal-cache-str", lambda t: _write(t, gdal_cache_mb="256"), ValueError, ["gdal_cache_mb", "'256'"]),
    ("add-after-result", lambda t: (lambda st, row: st.add(row, np.zeros((64, 64))))(*_after("result")),
     RuntimeError, ["add", "result()", "finished"]),
    ("add-after-finish", lambda t: (lambda st, row: st.add(row, np.zeros((64, 64))))(*_after("finish")),
     RuntimeError, ["add", "finish()"]),
    ("prediction-nan", lambda t: _add(NAN_CHIP), ValueError, ["prediction", "64 NaN", "S2A_TEST", "finite"]),
    ("prediction-inf", lambda t: _add(np.full((64, 64), np.inf)), ValueError, ["prediction", "infinite"]),
    ("prediction-none", lambda t: _add(None), TypeError, ["prediction", "None"]),
    ("prediction-strings", lambda t: _add(np.full((64, 64), "a")), TypeError, ["prediction", "<U1"]),
    ("prediction-shape", lambda t: _add(np.zeros((1, 64, 60))), ValueError,
     ["prediction", "(1, 64, 60)", "(1, 64, 64)"]),
    ("sink-not-callable", lambda t: stitching.Stitcher(metadata_item((128, 128)), sink="file.tif"),
     TypeError, ["sink", "'file.tif'"]),
    ("channels-zero", lambda t: stitching.Stitcher(metadata_item((128, 128)), channels=0), ValueError,
     ["channels", "0"]),
    ("crop-negative", lambda t: stitching.Stitcher(metadata_item((128, 128)), crop=-1), ValueError, ["crop", "-1"]),
    ("ramp-float", lambda t: stitching.Stitcher(metadata_item((128, 128)), ramp=1.5), ValueError, ["ramp", "1.5"]),
    ("blend-unknown", lambda t: stitching.Stitcher(metadata_item((128, 128)), blend="hann"), ValueError,
     ["blend", "'hann'"]),
    ("item-none", lambda t: stitching.Stitcher(None), TypeError, ["item", "None"]),
    ("weights-ramp-negative", lambda t: stitching.blend_weights(8, 8, -1), ValueError, ["ramp", "-1"]),
]


@pytest.mark.parametrize("call, expected, words", [pytest.param(*c[1:], id=c[0]) for c in BAD_INPUTS])
def test_bad_input_is_refused_naming_the_parameter_and_value(tmp_path, call, expected, words):
    assert_refused(lambda: call(tmp_path), expected, words)


def test_a_refused_write_leaves_no_file(tmp_path):
    """hits_path equal to path is refused before anything is written: the folder stays empty."""
    item = metadata_item((128, 128))
    with pytest.raises(ValueError):
        stitching.write_cog(iter([]), item, tmp_path / "p.tif", hits_path=tmp_path / "p.tif")
    assert list(tmp_path.iterdir()) == []


def test_write_cog_raises_an_error_of_its_predictions_and_leaves_no_files(tmp_path):
    """An error upstream (a failed read in the predictions) is raised by write_cog itself,
    and its temporary folder is removed."""
    item = metadata_item((128, 192))
    grid = stitching.overlap_grid(item, chip_size=64, overlap=16)

    def failing():
        for i, pair in enumerate(identity(grid, scene((128, 192)))):
            if i == 3:
                raise OSError("could not read 'https://example.test/B04.tif' (rows 0:64)")
            yield pair

    with pytest.raises(OSError, match=r"could not read 'https://example.test/B04.tif' \(rows 0:64\)"):
        stitching.write_cog(failing(), item, tmp_path / "p.tif")
    assert list(tmp_path.iterdir()) == []
