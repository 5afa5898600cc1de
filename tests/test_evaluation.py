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
