"""geolesson.batching.normalize: band statistics against a brute-force computation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from geolesson import batching
from tests.fixtures import assert_refused


def test_normalization_statistics_equal_brute_force(scenes, tmp_path):
    items, _, index = scenes
    train = batching.spatial_split(index, gap=1, block=2, seed=0)["train"]
    ds = batching.ChipDataset(train, ("vv", "vh"), items=items)
    stats = batching.band_statistics(ds, db=True)
    for c in range(2):
        values = np.concatenate([ds[i]["image"][c].numpy().ravel() for i in range(len(ds))])
        valid = values[~np.isnan(values)]
        db = (np.float32(10) * np.log10(valid[valid > 0])).astype(np.float64)  # dB in float32, summed in float64
        assert stats.count[c] == db.size
        assert stats.mean[c] == pytest.approx(db.mean(), rel=1e-9)
        assert stats.std[c] == pytest.approx(db.std(), rel=1e-9)
    assert stats.bands == ("vv", "vh") and stats.db == (True, True) and stats.chips == len(ds)
    assert -25 < stats.mean[0] < -5 and stats.mean[1] < stats.mean[0]  # VH darker than VV
    path = batching.save_statistics(stats, tmp_path / "train.parquet")
    assert path == tmp_path / "train.stats.json"
    back = batching.load_statistics(tmp_path / "train.parquet")
    assert back == stats
    normed = batching.ChipDataset(train, ("vv", "vh"), items=items, transform=batching.Normalize(back, fill=0.0))
    s, raw = normed[3], ds[3]
    x = 10 * np.log10(raw["image"].numpy().astype(np.float64))
    expected = (x - np.array(stats.mean)[:, None, None]) / np.array(stats.std)[:, None, None]
    valid = ~np.isnan(expected).any(axis=0)
    np.testing.assert_allclose(s["image"].numpy()[:, valid], expected[:, valid], rtol=1e-5, atol=1e-5)
    assert (s["valid"].numpy() == valid).all() and (s["image"].numpy()[:, ~valid] == 0).all()


def _stats(**changes):
    fields = {"bands": ("vv", "vh"), "mean": (-12.0, -19.0), "std": (3.0, 4.0), "count": (100, 100),
              "db": (True, True), "chips": 2, **changes}
    return batching.BandStatistics(**fields)


def _json_file(tmp_path, text):
    path = tmp_path / "train.stats.json"
    path.write_text(text)
    return path


def _ok_json():
    return _stats().to_json()


# (id, call(tmp_path), expected, words the message must hold): one row per bad input
BAD_INPUTS = [
    ("std-zero", lambda t: batching.Normalize(_stats(std=(3.0, 0.0))), ValueError, ["std", "'vh'", "0", "> 0"]),
    ("std-negative", lambda t: batching.Normalize(_stats(std=(-1.0, 4.0))), ValueError, ["std", "'vv'", "-1"]),
    ("std-inf", lambda t: _stats(std=(3.0, float("inf"))), ValueError, ["std", "'vh'", "inf"]),
    ("mean-nan", lambda t: _stats(mean=(float("nan"), -19.0)), ValueError, ["mean", "'vv'", "nan"]),
    ("mean-too-short", lambda t: _stats(mean=(-12.0,)), ValueError, ["mean", "1 value", "2 bands"]),
    ("db-too-long", lambda t: _stats(db=(True, True, False)), ValueError, ["db", "3 value", "2 bands"]),
    ("count-negative", lambda t: _stats(count=(100, -1)), ValueError, ["count", "-1"]),
    ("mean-str", lambda t: _stats(mean=("a", -19.0)), ValueError, ["mean", "'a'"]),
    ("stats-dict", lambda t: batching.Normalize({"mean": 0, "std": 1}), TypeError, ["stats", "BandStatistics", "dict"]),
    ("fill-str", lambda t: batching.Normalize(_stats(), fill="zero"), ValueError, ["fill", "'zero'"]),
    ("fill-nan", lambda t: batching.Normalize(_stats(), fill=float("nan")), ValueError, ["fill", "nan"]),
    ("json-garbled", lambda t: batching.load_statistics(_json_file(t, "{not json")), ValueError,
     ["train.stats.json", "not JSON"]),
    ("json-no-mean", lambda t: batching.load_statistics(_json_file(t, json.dumps(
        {k: v for k, v in json.loads(_ok_json()).items() if k != "mean"}))), ValueError,
     ["train.stats.json", "'mean'"]),
    ("json-list", lambda t: batching.load_statistics(_json_file(t, "[1, 2]")), ValueError,
     ["train.stats.json", "object"]),
    ("json-std-zero", lambda t: batching.Normalize(batching.load_statistics(_json_file(t, json.dumps(
        {**json.loads(_ok_json()), "std": [3.0, 0.0]})))), ValueError, ["std", "'vh'", "0"]),
    ("json-empty", lambda t: batching.load_statistics(_json_file(t, "")), ValueError, ["train.stats.json"]),
    ("save-stats-none", lambda t: batching.save_statistics(None, t / "i.parquet"), TypeError, ["stats", "None"]),
    ("save-path-none", lambda t: batching.save_statistics(_stats(), None), TypeError, ["index_path", "None"]),
    ("load-path-none", lambda t: batching.load_statistics(None), TypeError, ["path", "None"]),
    ("band-statistics-none", lambda t: batching.band_statistics(None), TypeError, ["dataset", "None"]),
    ("band-statistics-db-str", lambda t: batching.band_statistics([{"image": torch.ones(3, 2, 2)}], db="yes"),
     ValueError, ["db", "'yes'"]),
    ("band-statistics-no-image", lambda t: batching.band_statistics([{"pixels": torch.ones(3, 2, 2)}]),
     ValueError, ["dataset", "'image'"]),
]


@pytest.mark.parametrize("call, expected, words", [pytest.param(*c[1:], id=c[0]) for c in BAD_INPUTS])
def test_bad_input_is_refused_naming_the_parameter_and_value(tmp_path, call, expected, words):
    assert_refused(lambda: call(tmp_path), expected, words)

