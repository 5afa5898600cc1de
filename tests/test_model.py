"""geolesson.model: seeded training, checkpoints, prediction; small data made here."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from geolesson import model as glmodel
from geolesson.batching import BandStatistics, Normalize
from tests.fixtures import assert_refused


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
    workers = list(glmodel.predict(net, data, batch_size=3, num_workers=2, prefetch=1))
    assert [r["chip_id"] for r, _ in workers] == [s["chip_id"] for s in data]
    for (_, p), (_, q) in zip(here, workers):
        np.testing.assert_array_equal(p, q)
    with pytest.raises(ValueError, match=r"num_workers must be an integer >= 0, not -1"):
        next(glmodel.predict(net, data, num_workers=-1))


class Recording(TinyNet):
    """TinyNet that records, for each forward pass, its thread and grad mode; it raises on
    pass ``fail_at`` (1-based) and sets ``reached`` when it starts pass ``signal_at``."""

    def __init__(self, fail_at=None, signal_at=None):
        super().__init__()
        self.calls, self.fail_at, self.signal_at = [], fail_at, signal_at
        self.reached = threading.Event()

    def forward(self, x):
        self.calls.append((threading.current_thread().name, torch.is_grad_enabled()))
        if len(self.calls) == self.signal_at:
            self.reached.set()
        if len(self.calls) == self.fail_at:
            raise RuntimeError(f"model failed on pass {self.fail_at}")
        return super().forward(x)


def _predict_threads():
    return [t for t in threading.enumerate() if t.name.startswith("predict")]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_the_model_runs_ahead_in_its_own_thread_with_the_same_predictions(deterministic, num_workers):
    torch.manual_seed(0)
    net = Recording()
    data = Rows(samples(10, seed=5))
    caller = list(glmodel.predict(net, data, batch_size=3, num_workers=num_workers, ahead=0))
    assert {name for name, _ in net.calls} == {threading.current_thread().name}
    net.calls.clear()
    ahead = list(glmodel.predict(net, data, batch_size=3, num_workers=num_workers, ahead=2))
    assert [r["chip_id"] for r, _ in ahead] == [s["chip_id"] for s in data]
    for (_, p), (_, q) in zip(caller, ahead):
        np.testing.assert_array_equal(p, q)
    assert len(net.calls) == 4 and all(name.startswith("predict") and not grad for name, grad in net.calls)
    assert not _predict_threads()


def test_the_model_predicts_the_next_batch_before_it_is_asked_for():
    net = Recording(signal_at=2)
    chips = glmodel.predict(net, Rows(samples(9)), batch_size=3, ahead=1)
    next(chips)  # the first chip of batch 1; batch 2 is the model's to start now
    assert net.reached.wait(timeout=60), "the model did not start batch 2 before chips of it were asked for"
    chips.close()


def test_a_model_error_reaches_the_caller_and_stopping_early_ends_the_thread():
    net = Recording(fail_at=3)
    chips = glmodel.predict(net, Rows(samples(12)), batch_size=2, ahead=2)
    got = [next(chips) for _ in range(4)]  # batches 1 and 2
    with pytest.raises(RuntimeError, match="model failed on pass 3"):
        next(chips)
    assert len(got) == 4 and not _predict_threads()
    net = Recording()
    chips = glmodel.predict(net, Rows(samples(12)), batch_size=2, ahead=2)
    next(chips)
    chips.close()
    assert not _predict_threads()
    assert len(net.calls) <= 3, "the model went on after the caller stopped"


def _batch(mask, valid=None):
    batch = {"mask": torch.tensor(mask)}
    if valid is not None:
        batch["valid"] = torch.tensor(valid)
    return batch


def _bce(mask, valid=None, pos_weight=None):
    mask = np.asarray(mask)
    logits = torch.zeros(1, 1, *mask.shape[1:])
    return glmodel.masked_bce(logits, _batch(mask, valid), pos_weight)


def _with_nan(n=8, value=float("nan")):
    data = samples(n)
    data[5]["image"][1, 3, 4] = value
    return data


def _nan_loss(logits, batch):
    return logits.mean() * float("nan")


class NotAModule:
    def __call__(self, x):
        return x


def _fit(**kwargs):
    torch.manual_seed(0)
    args = {"model": TinyNet(), "train": samples(8), "epochs": 1, "seed": 0, "batch_size": 4, **kwargs}
    return glmodel.fit(args.pop("model"), args.pop("train"), **args)


def _saved(tmp_path, **config):
    path = tmp_path / "net.pt"
    glmodel.save_checkpoint(path, TinyNet(), STATS, **config)
    return path


# (id, call(tmp_path), expected, words the message must hold): one row per bad input
BAD_INPUTS = [
    ("mask-class-2", lambda t: _bce([[[0, 1], [2, 0]]]), ValueError, ["mask", "2", "0 and 1", "valid"]),
    ("mask-ignore-index", lambda t: _bce([[[0, 1], [-1, 0]]]), ValueError, ["mask", "-1", "valid"]),
    ("mask-half", lambda t: _bce([[[0.5, 1.0], [0.0, 0.0]]]), ValueError, ["mask", "0.5"]),
    ("mask-missing", lambda t: glmodel.masked_bce(torch.zeros(1, 1, 2, 2), {}), ValueError, ["mask", "labels="]),
    ("valid-shape", lambda t: _bce([[[0, 1], [1, 0]]], valid=[[True, False], [True, True]]),
     ValueError, ["valid", "(2, 2)", "(1, 2, 2)"]),
    ("valid-ints", lambda t: _bce([[[0, 1], [1, 0]]], valid=[[[1, 0], [2, 1]]]), ValueError, ["valid", "bool"]),
    ("pos-weight-negative", lambda t: _bce([[[0, 1], [1, 0]]], pos_weight=-1), ValueError, ["pos_weight", "-1"]),
    ("pos-weight-nan", lambda t: _bce([[[0, 1], [1, 0]]], pos_weight=float("nan")), ValueError, ["pos_weight", "nan"]),
    ("logits-shape", lambda t: glmodel.masked_bce(torch.zeros(1, 2, 2), _batch([[[0, 1], [1, 0]]])),
     ValueError, ["logits", "(1, 1, 2, 2)"]),
    ("fit-nan-image", lambda t: _fit(train=_with_nan()), ValueError, ["image", "1 NaN", "c5", "Normalize", "fill"]),
    ("fit-inf-image", lambda t: _fit(train=_with_nan(value=float("inf"))), ValueError, ["image", "infinite", "c5"]),
    ("fit-nan-val-image", lambda t: _fit(val=_with_nan()), ValueError, ["image", "NaN", "c5"]),
    ("fit-nan-loss", lambda t: _fit(loss_fn=_nan_loss), FloatingPointError,
     ["loss", "nan", "epoch 1", "batch 1", "lr"]),
    ("fit-lr-negative", lambda t: _fit(lr=-0.1), ValueError, ["lr", "-0.1"]),
    ("fit-lr-str", lambda t: _fit(lr="0.01"), ValueError, ["lr", "'0.01'"]),
    ("fit-lr-inf", lambda t: _fit(lr=float("inf")), ValueError, ["lr", "inf"]),
    ("fit-train-none", lambda t: _fit(train=None), TypeError, ["train", "None"]),
    ("fit-train-empty", lambda t: _fit(train=[]), ValueError, ["train", "empty"]),
    ("fit-val-none-type", lambda t: _fit(val=5), TypeError, ["val", "5"]),
    ("fit-model-not-module", lambda t: _fit(model=NotAModule()), TypeError, ["model", "torch.nn.Module", "NotAModule"]),
    ("fit-loss-not-callable", lambda t: _fit(loss_fn="bce"), TypeError, ["loss_fn", "'bce'"]),
    ("fit-epochs-zero", lambda t: _fit(epochs=0), ValueError, ["epochs", "0"]),
    ("fit-batch-size-float", lambda t: _fit(batch_size=4.0), ValueError, ["batch_size", "4.0"]),
    ("fit-no-mask", lambda t: _fit(train=[{k: v for k, v in s.items() if k != "mask"} for s in samples(4)]),
     ValueError, ["mask", "labels="]),
    ("predict-batch-size-zero", lambda t: list(glmodel.predict(TinyNet(), Rows(samples(2)), batch_size=0)),
     ValueError, ["batch_size", "0"]),
    ("predict-model-not-module", lambda t: list(glmodel.predict(NotAModule(), Rows(samples(2)))),
     TypeError, ["model", "NotAModule"]),
    ("predict-list", lambda t: list(glmodel.predict(TinyNet(), samples(2))), TypeError, ["dataset", "list"]),
    ("predict-prefetch-zero", lambda t: list(glmodel.predict(TinyNet(), Rows(samples(2)), prefetch=0)),
     ValueError, ["prefetch", "0"]),
    ("predict-ahead-negative", lambda t: list(glmodel.predict(TinyNet(), Rows(samples(2)), ahead=-1)),
     ValueError, ["ahead", "-1"]),
    ("save-config-class", lambda t: _saved(t, activation=torch.nn.ReLU), ValueError,
     ["config", "'activation'", "ReLU", "int, float, str"]),
    ("save-config-function", lambda t: _saved(t, init=len), ValueError, ["config", "'init'", "builtin_function"]),
    ("save-config-nested", lambda t: _saved(t, layers={"a": object()}), ValueError, ["config", "'layers'", "object"]),
    ("save-statistics-none", lambda t: glmodel.save_checkpoint(t / "n.pt", TinyNet(), None), TypeError,
     ["statistics", "BandStatistics", "None"]),
    ("save-model-not-module", lambda t: glmodel.save_checkpoint(t / "n.pt", NotAModule(), STATS), TypeError,
     ["model", "NotAModule"]),
    ("save-folder-missing", lambda t: glmodel.save_checkpoint(t / "no" / "n.pt", TinyNet(), STATS), FileNotFoundError,
     ["path", "no"]),
    ("load-build-not-callable", lambda t: glmodel.load_checkpoint(_saved(t), "TinyNet"), TypeError,
     ["build", "'TinyNet'"]),
    ("load-not-a-checkpoint",
     lambda t: glmodel.load_checkpoint((t / "a.pt", (t / "a.pt").write_text("hello"))[0], TinyNet), ValueError,
     ["a.pt", "not a geolesson checkpoint"]),
    ("load-missing", lambda t: glmodel.load_checkpoint(t / "missing.pt", TinyNet), FileNotFoundError, ["missing.pt"]),
    ("load-config-mismatch", lambda t: glmodel.load_checkpoint(_saved(t, bands=2, width=4, depth=3), TinyNet),
     ValueError, ["build", "'depth'", "config"]),
]


@pytest.mark.parametrize("call, expected, words", [pytest.param(*c[1:], id=c[0]) for c in BAD_INPUTS])
def test_bad_input_is_refused_naming_the_parameter_and_value(tmp_path, call, expected, words):
    assert_refused(lambda: call(tmp_path), expected, words)


def test_training_stops_before_a_non_finite_step_changes_the_weights():
    """A NaN loss is caught before backward and step: the weights stay as they were."""
    torch.manual_seed(0)
    net = TinyNet()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(FloatingPointError):
        glmodel.fit(net, samples(8), epochs=1, seed=0, batch_size=4, loss_fn=_nan_loss)
    for name, value in net.state_dict().items():
        assert torch.equal(value, before[name]), name
