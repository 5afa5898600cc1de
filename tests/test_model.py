"""geolesson.model: seeded training, checkpoints, prediction; small data made here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geolesson import model as glmodel
from geolesson.batching import BandStatistics, Normalize


class TinyNet(torch.nn.Module):
    def __init__(self, bands=2, width=4):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(bands, width, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(width, 1, 3, padding=1))

    def forward(self, x):
        return self.net(x)


STATS = BandStatistics(("red", "nir"), (0.1, 0.3), (0.05, 0.1), (100, 100), (False, False), 4)


def samples(n=24, size=16, seed=0):
    """Images whose 'burned' pixels have low nir: a task a 3x3 network can learn."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        mask = (rng.random((size, size)) < 0.3).astype(np.int64)
        red = rng.normal(0.1, 0.05, (size, size))
        nir = np.where(mask == 1, 0.15, 0.4) + rng.normal(0, 0.05, (size, size))
        image = torch.from_numpy(np.stack([red, nir]).astype(np.float32))
        out.append(Normalize(STATS)({"image": image, "mask": torch.from_numpy(mask),
                                     "chip_id": f"c{i}"}))
    return out


class Rows(list):
    """A list of samples with the ChipDataset rows() predict() needs."""

    def rows(self):
        return [{"chip_id": s["chip_id"]} for s in self]


def train(seed, epochs=3):
    torch.manual_seed(seed)
    net = TinyNet()
    history = glmodel.fit(net, samples(), samples(8, seed=1), epochs=epochs, seed=seed,
                          batch_size=4, lr=0.05)
    return net, history


@pytest.fixture
def deterministic():
    threads = torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(False)


def test_same_seed_trains_the_same_weights_bit_for_bit(deterministic):
    # Bitwise on one machine and thread count (set to 1 here): float sums in another
    # order (another thread count or CPU) may differ in the last bits, so builds on other
    # machines are compared to a tolerance, not bitwise.
    a, ha = train(seed=3)
    b, hb = train(seed=3)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert ha["train_loss"].tolist() == hb["train_loss"].tolist()
    c, _ = train(seed=4)
    assert not torch.equal(a.state_dict()["net.0.weight"], c.state_dict()["net.0.weight"])


def test_training_lowers_the_loss_and_reports_both_losses(deterministic):
    _, history = train(seed=0, epochs=6)
    assert list(history.index) == list(range(1, 7))
    assert history["train_loss"].iloc[-1] < 0.5 * history["train_loss"].iloc[0]
    assert history["val_loss"].notna().all()


def test_saved_and_reloaded_model_and_statistics_give_identical_predictions(tmp_path, deterministic):
    net, _ = train(seed=1)
    path = tmp_path / "burnnet.pt"
    glmodel.save_checkpoint(path, net, STATS, bands=2, width=4)
    loaded, stats, config = glmodel.load_checkpoint(path, TinyNet)
    assert stats == STATS and config == {"bands": 2, "width": 4}
    data = Rows(samples(6, seed=7))
    before = list(glmodel.predict(net, data, batch_size=4))
    after = list(glmodel.predict(loaded, data, batch_size=4))
    assert [r["chip_id"] for r, _ in after] == [s["chip_id"] for s in data]
    for (_, p), (_, q) in zip(before, after):
        assert p.shape == (1, 16, 16) and p.dtype == np.float32
        np.testing.assert_array_equal(p, q)
        assert 0 <= p.min() and p.max() <= 1


def test_masked_loss_ignores_invalid_pixels_and_bad_input_raises(tmp_path):
    logits = torch.zeros(1, 1, 2, 2)
    batch = {"mask": torch.tensor([[[1, 0], [0, 0]]]),
             "valid": torch.tensor([[[True, False], [False, False]]])}
    assert float(glmodel.masked_bce(logits, batch)) == pytest.approx(np.log(2))
    batch["valid"][0, 0, 1] = True
    logits[0, 0, 0, 1] = 100.0  # confidently wrong on a valid pixel: the loss rises
    assert float(glmodel.masked_bce(logits, batch)) > 10
    with pytest.raises(ValueError, match=r"expected \(1, 1, 2, 2\)"):
        glmodel.masked_bce(torch.zeros(1, 2, 2), batch)
    with pytest.raises(ValueError, match=r"epochs must be an integer >= 1, not 0"):
        glmodel.fit(TinyNet(), samples(2), epochs=0, seed=0)
    with pytest.raises(FileNotFoundError, match=r"no checkpoint at"):
        glmodel.load_checkpoint(tmp_path / "missing.pt", TinyNet)
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"not a geolesson checkpoint of format 1"):
        glmodel.load_checkpoint(tmp_path / "other.pt", TinyNet)


def test_prediction_read_by_worker_processes_arrives_in_order_and_equal(deterministic):
    net, _ = train(seed=2, epochs=1)
    data = Rows(samples(10, seed=5))
    here = list(glmodel.predict(net, data, batch_size=3))
    workers = list(glmodel.predict(net, data, batch_size=3, num_workers=2))
    assert [r["chip_id"] for r, _ in workers] == [s["chip_id"] for s in data]
    for (_, p), (_, q) in zip(here, workers):
        np.testing.assert_array_equal(p, q)
    with pytest.raises(ValueError, match=r"num_workers must be an integer >= 0, not -1"):
        next(glmodel.predict(net, data, num_workers=-1))
