"""geolesson.batching.normalize: band statistics against a brute-force computation."""

from __future__ import annotations

import numpy as np
import pytest

from geolesson import batching


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
