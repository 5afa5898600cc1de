"""Train, save, load and apply a PyTorch segmentation model on chips.

Plain PyTorch (``torch==2.13.0``, the ``ml`` extra): a ``DataLoader`` over chip samples
(dicts of :class:`geolesson.batching.ChipDataset`, or a list of them held in memory), a
seeded shuffle, binary cross-entropy on the valid pixels, Adam. The network itself is the
caller's (any ``torch.nn.Module`` mapping ``(B, C, H, W)`` to ``(B, 1, H, W)`` logits);
chapter 7 defines a small one.

The model's weights and the normalization statistics it was trained with are one unit: a
model fed inputs normalized with other statistics sees other numbers. So
:func:`save_checkpoint` writes them into one file and :func:`load_checkpoint` gives both back.

Data flow: imports :mod:`geolesson.batching` (collate, statistics).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from geolesson._checks import check_int
from geolesson.batching import BandStatistics, collate

#: Version of the checkpoint layout written by :func:`save_checkpoint`.
CHECKPOINT_FORMAT = 1


def masked_bce(logits: torch.Tensor, batch: dict, pos_weight: float | None = None) -> torch.Tensor:
    """Mean binary cross-entropy (``torch.nn.functional.binary_cross_entropy_with_logits``)
    of ``(B, 1, H, W)`` logits against ``batch["mask"]`` ``(B, H, W)`` (0/1), over the pixels
    where ``batch["valid"]`` is True (every pixel where the batch has no ``"valid"``).

    ``pos_weight`` multiplies the loss of positive pixels (class imbalance; None: 1).

    Raises:
        ValueError: the batch has no ``"mask"``, or the logits are not ``(B, 1, H, W)`` of it.
    """
    if "mask" not in batch:
        raise ValueError("batch has no 'mask': build the dataset with labels= to train")
    target = batch["mask"].float()
    if logits.shape != (target.shape[0], 1, *target.shape[1:]):
        raise ValueError(f"logits have shape {tuple(logits.shape)}; expected "
                         f"{(target.shape[0], 1, *target.shape[1:])} (B, 1, H, W) of the mask")
    weight = None if pos_weight is None else torch.tensor([float(pos_weight)])
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        logits[:, 0], target, reduction="none", pos_weight=weight)
    valid = batch.get("valid")
    if valid is None:
        return loss.mean()
    valid = valid.float()
    return (loss * valid).sum() / valid.sum().clamp(min=1.0)


def train_one_epoch(model, loader, optimizer, loss_fn=masked_bce) -> float:
    """One pass over ``loader``: forward, loss, backward, step per batch; mean loss (float)."""
    model.train()
    total, n = 0.0, 0
    for batch in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(batch["image"]), batch)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(batch["image"])
        n += len(batch["image"])
    return total / n


@torch.no_grad()
def evaluate_loss(model, loader, loss_fn=masked_bce) -> float:
    """Mean loss over ``loader`` in evaluation mode, without gradients (float)."""
    model.eval()
    total, n = 0.0, 0
    for batch in loader:
        total += float(loss_fn(model(batch["image"]), batch)) * len(batch["image"])
        n += len(batch["image"])
    return total / n


def fit(model, train: Any, val: Any = None, *, epochs: int, seed: int, batch_size: int = 16,
        lr: float = 1e-2, loss_fn: Callable = masked_bce) -> pd.DataFrame:
    """Train ``model`` in place with Adam; the training and validation loss of every epoch.

    The order of the training samples comes from a ``torch.Generator`` seeded with ``seed``
    (``DataLoader(shuffle=True, generator=...)``), so, with the model's initial weights
    fixed by ``torch.manual_seed`` before it was built, the same seed gives the same
    weights: bit for bit on the same machine and thread count with
    ``torch.use_deterministic_algorithms(True)`` (float sums in another order, e.g. with
    another number of threads, differ in the last bits). No worker processes: the samples
    are read in this process.

    Args:
        model: a ``torch.nn.Module`` ``(B, C, H, W)`` -> ``(B, 1, H, W)`` logits.
        train, val: map-style datasets of samples with ``"image"`` and ``"mask"`` (and
            ``"valid"``): a :class:`~geolesson.batching.ChipDataset` or a list of its samples.
            ``val`` None: no validation loss (NaN).
        epochs: passes over ``train`` (>= 1).
        seed: seed of the shuffle (int >= 0).
        batch_size: samples per batch (>= 1).
        lr: Adam's learning rate (Kingma & Ba, "Adam: A Method for Stochastic
            Optimization", ICLR 2015).
        loss_fn: ``(logits, batch) -> scalar loss`` (default :func:`masked_bce`).

    Returns:
        ``pandas.DataFrame`` indexed by ``epoch`` (1..epochs): ``train_loss``, ``val_loss``,
        ``seconds`` (wall time of the epoch, validation included).

    Raises:
        ValueError: ``epochs``, ``batch_size`` or ``seed`` not a positive int (>= 0 for
            ``seed``), or ``train`` empty.
    """
    import time

    for name, value, low in (("epochs", epochs, 1), ("batch_size", batch_size, 1), ("seed", seed, 0)):
        check_int(name, value, low)
    if len(train) == 0:
        raise ValueError("train is empty: nothing to train on")
    generator = torch.Generator().manual_seed(int(seed))
    loader = DataLoader(train, batch_size=batch_size, shuffle=True, generator=generator,
                        collate_fn=collate)
    val_loader = None if val is None or len(val) == 0 else DataLoader(
        val, batch_size=batch_size, collate_fn=collate)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    rows = []
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        train_loss = train_one_epoch(model, loader, optimizer, loss_fn)
        val_loss = float("nan") if val_loader is None else evaluate_loss(model, val_loader, loss_fn)
        rows.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                     "seconds": time.perf_counter() - t0})
    return pd.DataFrame(rows).set_index("epoch")


@torch.no_grad()
def predict(model, dataset: Any, *, batch_size: int = 16,
            num_workers: int = 0) -> Iterator[tuple[dict, np.ndarray]]:
    """Apply ``model`` to every chip of ``dataset`` in order: ``(row, probability)`` pairs.

    ``probability`` is ``sigmoid(logits)``, float32 ``(1, H, W)`` in [0, 1]; ``row`` is the
    chip's index row (:meth:`geolesson.batching.ChipDataset.rows`), in the dataset's order,
    so an index in row order (:func:`geolesson.chips.overlap_grid`) feeds a
    :class:`~geolesson.stitching.Stitcher` directly. A generator: one batch at a time is
    in memory (plus the batches the workers have read ahead).

    Args:
        model: a ``torch.nn.Module`` ``(B, C, H, W)`` -> ``(B, 1, H, W)`` logits.
        dataset: a :class:`~geolesson.batching.ChipDataset`.
        batch_size: chips per forward pass (>= 1).
        num_workers: ``DataLoader`` worker processes that read the next batches while the
            model runs on this one (>= 0; 0: read here, between forward passes). The batches
            still arrive in the dataset's order. With 1 or 2 CPUs, 1 worker overlaps reading
            with the model; more compete with the model's threads.

    Raises:
        TypeError: ``dataset`` has no ``rows()`` (not a ChipDataset).
        ValueError: ``batch_size`` < 1 or ``num_workers`` < 0.
    """
    if not hasattr(dataset, "rows"):
        raise TypeError(f"dataset must be a ChipDataset (with rows()), not {type(dataset).__name__}")
    batch_size = check_int("batch_size", batch_size, 1)
    num_workers = check_int("num_workers", num_workers, 0)
    rows = dataset.rows()
    model.eval()
    i = 0
    for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collate,
                            num_workers=num_workers):
        probability = torch.sigmoid(model(batch["image"])).numpy()
        for p in probability:
            yield rows[i], p
            i += 1


def save_checkpoint(path: str | os.PathLike, model, statistics: BandStatistics, **config) -> None:
    """Write the model's weights and its normalization statistics into one file.

    ``torch.save`` of ``{"format", "state_dict", "statistics" (JSON text), "config"}``;
    ``config`` holds what is needed to rebuild the network (its constructor's keyword
    arguments: ints, floats, strings), e.g. ``bands=3, width=8``.
    """
    torch.save({"format": CHECKPOINT_FORMAT, "state_dict": model.state_dict(),
                "statistics": statistics.to_json(), "config": dict(config)}, os.fspath(path))


def load_checkpoint(path: str | os.PathLike, build: Callable[..., Any]):
    """Load a checkpoint of :func:`save_checkpoint`: ``(model, statistics, config)``.

    ``build(**config)`` makes the network (e.g. the model's class); its weights are then
    loaded strictly (every tensor must match) and it is put in evaluation mode. The file is
    read with ``torch.load(weights_only=True)``: tensors and plain values only, no code.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not a checkpoint of this layout (names the path and the format found).
        RuntimeError: (from PyTorch) the weights do not fit the network ``build`` made.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    ckpt = torch.load(path, weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"{path} is not a geolesson checkpoint of format {CHECKPOINT_FORMAT} "
                         f"(found {found!r}); write it with save_checkpoint")
    config = dict(ckpt["config"])
    model = build(**config)
    model.load_state_dict(ckpt["state_dict"], strict=True)
    model.eval()
    return model, BandStatistics.from_json(ckpt["statistics"]), config
