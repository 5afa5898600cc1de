"""geolesson.evaluation: scores against a brute-force count, seams."""

from __future__ import annotations

import numpy as np
import pytest

from geolesson import evaluation
from tests.fixtures import assert_refused


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


SMOOTH = np.add.outer(np.cos(np.arange(64) / 9.0), np.sin(np.arange(128) / 7.0))
EMPTY = np.zeros((3, 3), bool)

# (id, call(), expected, words the message must hold): one row per bad input
BAD_INPUTS = [
    ("seam-fraction", lambda: evaluation.seam_contrast(SMOOTH, [1.5]), ValueError, ["seams_x", "1.5", "whole"]),
    ("seam-fraction-y", lambda: evaluation.seam_contrast(SMOOTH, [32], [10.25]), ValueError, ["seams_y", "10.25"]),
    ("seam-none", lambda: evaluation.seam_contrast(SMOOTH, None), TypeError, ["seams_x", "None"]),
    ("seam-str", lambda: evaluation.seam_contrast(SMOOTH, "32"), TypeError, ["seams_x", "'32'"]),
    ("seam-bool", lambda: evaluation.seam_contrast(SMOOTH, [True]), TypeError, ["seams_x", "bool"]),
    ("seam-nested", lambda: evaluation.seam_contrast(SMOOTH, [[32], [64]]), ValueError, ["seams_x", "1-D", "(2, 1)"]),
    ("seam-nan", lambda: evaluation.seam_contrast(SMOOTH, [np.nan]), ValueError, ["seams_x", "nan"]),
    ("seam-zero", lambda: evaluation.seam_contrast(SMOOTH, [0]), ValueError, ["seams_x", "[1, 128)", "0"]),
    ("seam-past-edge", lambda: evaluation.seam_contrast(SMOOTH, [], [64]), ValueError, ["seams_y", "[1, 64)", "64"]),
    ("seam-none-given", lambda: evaluation.seam_contrast(SMOOTH, []), ValueError, ["seams_x", "seams_y", "empty"]),
    ("seam-image-3d", lambda: evaluation.seam_contrast(SMOOTH[None], [32]), ValueError, ["image", "(1, 64, 128)"]),
    ("seam-image-str", lambda: evaluation.seam_contrast(np.full((4, 4), "a"), [2]), TypeError, ["image", "<U1"]),
    ("seam-image-none", lambda: evaluation.seam_contrast(None, [2]), TypeError, ["image", "None"]),
    ("confusion-shapes", lambda: evaluation.confusion(EMPTY, np.zeros((3, 4), bool)), ValueError,
     ["(3, 3)", "(3, 4)"]),
    ("confusion-probabilities", lambda: evaluation.confusion(np.full((3, 3), 0.7), EMPTY), ValueError,
     ["predicted", "0.7"]),
    ("confusion-nan", lambda: evaluation.confusion(np.full((3, 3), np.nan), EMPTY), ValueError,
     ["predicted", "nan", "valid="]),
    ("confusion-none", lambda: evaluation.confusion(None, EMPTY), ValueError, ["predicted", "object"]),
    ("confusion-valid-2", lambda: evaluation.confusion(EMPTY, EMPTY, valid=np.full((3, 3), 2)), ValueError,
     ["valid", "2"]),
    ("confusion-valid-shape", lambda: evaluation.confusion(EMPTY, EMPTY, valid=np.ones(9, bool)), ValueError,
     ["valid", "(9,)"]),
]


@pytest.mark.parametrize("call, expected, words", [pytest.param(*c[1:], id=c[0]) for c in BAD_INPUTS])
def test_bad_input_is_refused_naming_the_parameter_and_value(call, expected, words):
    assert_refused(call, expected, words)


def test_seams_at_whole_columns_given_as_floats_are_taken():
    """32.0 is the column 32: a whole number given as a float is not a mistake."""
    assert evaluation.seam_contrast(SMOOTH, [32.0, 64.0]) == evaluation.seam_contrast(SMOOTH, [32, 64])


def _grid(col_off, row_off, size):
    """A chip index by hand: every (row_off, col_off) pair, square chips of ``size``."""
    import pandas as pd

    return pd.DataFrame([{"col_off": c, "row_off": r, "width": size, "height": size}
                         for r in row_off for c in col_off])


def test_seam_lines_are_chip_starts_and_chip_ends_inside_the_image():
    # 320 x 224 pixels, chips of 128 with overlap 32 (stride 96); the last row moved back
    # to end at the edge: rows start at 0 and 96, columns at 0, 96 and 192
    grid = _grid([0, 96, 192], [0, 96], 128)
    xs, ys = evaluation.seam_lines(grid, (224, 320))
    assert xs.tolist() == [96, 128, 192, 224]   # starts 96, 192; ends 128, 224 (320 is the edge)
    assert ys.tolist() == [96, 128]             # start 96; end 128 (224 is the edge)
    # a centre crop of 16: each chip keeps its centre, and neighbours meet half-way
    xs, ys = evaluation.seam_lines(grid, (224, 320), crop=16)
    assert xs.tolist() == [112, 208] and ys.tolist() == [112]
    # without overlap starts and ends coincide: the multiples of the chip size
    xs, ys = evaluation.seam_lines(_grid([0, 128, 256], [0, 128], 128), (256, 384))
    assert xs.tolist() == [128, 256] and ys.tolist() == [128]


def test_seam_lines_are_where_an_averaged_overlapping_map_steps():
    """Each chip predicts its own constant; the map is their mean where chips overlap (a
    uniform blend). It steps where a chip enters *and* where one leaves, and nowhere else."""
    grid = _grid([0, 96, 192], [0, 96], 128)
    total, hits = np.zeros((224, 320)), np.zeros((224, 320))
    for i, chip in enumerate(grid.itertuples()):
        window = np.s_[chip.row_off:chip.row_off + 128, chip.col_off:chip.col_off + 128]
        total[window] += np.sqrt(i + 2)  # irrational: no two overlaps average alike
        hits[window] += 1
    image = total / hits
    xs, ys = evaluation.seam_lines(grid, image.shape)
    steps_x = np.flatnonzero((np.abs(np.diff(image, axis=1)) > 1e-9).any(axis=0)) + 1
    steps_y = np.flatnonzero((np.abs(np.diff(image, axis=0)) > 1e-9).any(axis=1)) + 1
    assert xs.tolist() == steps_x.tolist() and ys.tolist() == steps_y.tolist()


@pytest.mark.parametrize("call, expected, words", [
    pytest.param(lambda: evaluation.seam_lines(np.zeros((2, 4)), (8, 8)), TypeError,
                 ["chips", "DataFrame", "ndarray"], id="not-a-frame"),
    pytest.param(lambda: evaluation.seam_lines(_grid([0], [0], 4).drop(columns="width"), (8, 8)),
                 ValueError, ["chips", "width"], id="missing-column"),
    pytest.param(lambda: evaluation.seam_lines(_grid([0, 6], [0], 4), (8, 8)), ValueError,
                 ["inside the image", "8", "col_off=6", "width=4"], id="chip-outside"),
    pytest.param(lambda: evaluation.seam_lines(_grid([0, 3.5], [0], 4), (8, 8)), ValueError,
                 ["chips['col_off']", "whole", "3.5"], id="fractional-offset"),
    pytest.param(lambda: evaluation.seam_lines(_grid(["0"], [0], 4), (8, 8)), ValueError,
                 ["chips['col_off']", "whole", "object"], id="offset-not-a-number"),
    pytest.param(lambda: evaluation.seam_lines(_grid([0], [0], 4), (8,)), ValueError,
                 ["shape", "(height, width)", "(8,)"], id="shape-1d"),
    pytest.param(lambda: evaluation.seam_lines(_grid([0], [0], 4), (8, 0)), ValueError,
                 ["shape[1]", "0"], id="shape-zero"),
    pytest.param(lambda: evaluation.seam_lines(_grid([0, 4], [0], 4), (8, 8), crop=-1),
                 ValueError, ["crop", "-1"], id="crop-negative"),
    pytest.param(lambda: evaluation.seam_lines(_grid([0, 4], [0], 4), (8, 8), crop=2),
                 ValueError, ["crop=2", "4"], id="crop-too-large"),
])
def test_seam_lines_refuse_bad_input(call, expected, words):
    assert_refused(call, expected, words)
