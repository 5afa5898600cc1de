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
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from geolesson._checks import check_callable, check_int, check_number, check_path, finite_problem
from geolesson.batching import BandStatistics, collate

#: Version of the checkpoint layout written by :func:`save_checkpoint`.
CHECKPOINT_FORMAT = 1


def masked_bce(logits: torch.Tensor, batch: dict, pos_weight: float | None = None) -> torch.Tensor:
    """Mean binary cross-entropy (``torch.nn.functional.binary_cross_entropy_with_logits``)
    of ``(B, 1, H, W)`` logits against ``batch["mask"]`` ``(B, H, W)`` (0/1), over the pixels
    where ``batch["valid"]`` is True (every pixel where the batch has no ``"valid"``).

    ``pos_weight`` multiplies the loss of positive pixels (class imbalance; None: 1).

    Raises:
        ValueError: the batch has no ``"mask"``; the mask holds a value other than 0 and 1
            (an ignore index such as -1 or 255, a class 2: mark such pixels False in
            ``"valid"`` instead, and set them to 0); ``"valid"`` is not a bool tensor of the
            mask's shape; the logits are not ``(B, 1, H, W)`` of the mask; ``pos_weight``
            not a finite number > 0.
    """
    if "mask" not in batch:
        raise ValueError("batch has no 'mask': build the dataset with labels= to train")
    mask = batch["mask"]
    values = torch.unique(mask)
    odd = values[(values != 0) & (values != 1)]
    if len(odd):
        raise ValueError(f"batch['mask'] holds {odd[:5].tolist()}; binary cross-entropy needs the values 0 and 1 "
                         "only. Mark pixels to leave out (an ignore index such as -1 or 255) False in "
                         "batch['valid'] and give them 0, or map classes to 0/1 first")
    target = mask.float()
    if logits.shape != (target.shape[0], 1, *target.shape[1:]):
        raise ValueError(f"logits have shape {tuple(logits.shape)}; expected "
                         f"{(target.shape[0], 1, *target.shape[1:])} (B, 1, H, W) of the mask")
    valid = batch.get("valid")
    if valid is not None and (valid.dtype != torch.bool or valid.shape != mask.shape):
        raise ValueError(f"batch['valid'] must be a bool tensor of the mask's shape {tuple(mask.shape)}, "
                         f"not {valid.dtype} of shape {tuple(valid.shape)}")
    weight = None if pos_weight is None else torch.tensor([check_number("pos_weight", pos_weight, positive=True)])
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        logits[:, 0], target, reduction="none", pos_weight=weight)
    if valid is None:
        return loss.mean()
    valid = valid.float()
    return (loss * valid).sum() / valid.sum().clamp(min=1.0)


def _check_finite_image(batch: dict, where: str) -> None:
    image = batch["image"]
    problem = finite_problem("image", image.numpy() if isinstance(image, torch.Tensor) else np.asarray(image))
    if problem:
        bad = ~torch.isfinite(torch.as_tensor(image)).flatten(1).all(dim=1)
        ids = [batch["chip_id"][i] for i in torch.nonzero(bad).flatten().tolist()] if "chip_id" in batch else []
        raise ValueError(f"{problem} ({where}{', chip(s) ' + str(ids[:5]) if ids else ''}): a network cannot "
                         "learn from NaN or infinity; fill nodata with batching.Normalize(stats, fill=0.0) "
                         "and mask it with the sample's 'valid'")


def _check_finite_loss(loss: torch.Tensor, epoch: int, b: int, optimizer) -> None:
    if not torch.isfinite(loss).all():
        lr = optimizer.param_groups[0].get("lr")
        raise FloatingPointError(f"the training loss is {loss.item()} at epoch {epoch}, batch {b} (its images "
                                 f"are finite): training diverged; lower lr (now {lr}) or check loss_fn")


def train_one_epoch(model, loader, optimizer, loss_fn=masked_bce, *, epoch: int = 1) -> float:
    """One pass over ``loader``: forward, loss, backward, step per batch; mean loss (float).

    Raises:
        ValueError: a batch's image holds NaN or infinity (names the chips).
        FloatingPointError: the loss of a batch is not finite; raised before its backward
            pass and step, so the weights stay as the last finite step left them.
    """
    model.train()
    total, n = 0.0, 0
    for b, batch in enumerate(loader, 1):
        _check_finite_image(batch, f"training batch {b} of epoch {epoch}")
        optimizer.zero_grad()
        loss = loss_fn(model(batch["image"]), batch)
        _check_finite_loss(loss, epoch, b, optimizer)  # before backward: NaN never reaches the weights
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(batch["image"])
        n += len(batch["image"])
    return total / n


@torch.no_grad()
def evaluate_loss(model, loader, loss_fn=masked_bce) -> float:
    """Mean loss over ``loader`` in evaluation mode, without gradients (float).

    Raises:
        ValueError: a batch's image holds NaN or infinity (names the chips).
    """
    model.eval()
    total, n = 0.0, 0
    for b, batch in enumerate(loader, 1):
        _check_finite_image(batch, f"validation batch {b}")
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
        TypeError: ``model`` is not a ``torch.nn.Module``, ``train`` or ``val`` not a dataset,
            ``loss_fn`` not callable.
        ValueError: ``epochs``, ``batch_size`` or ``seed`` not a positive int (>= 0 for
            ``seed``), ``lr`` not a finite number > 0, ``train`` empty; a batch's image holds
            NaN or infinity (names the chips; nothing learns from them).
        FloatingPointError: the loss became NaN or infinite (names the epoch and batch); the
            step that would have spread it into the weights is not taken.
    """
    import time

    _check_module(model)
    for name, value, low in (("epochs", epochs, 1), ("batch_size", batch_size, 1), ("seed", seed, 0)):
        check_int(name, value, low)
    lr = check_number("lr", lr, positive=True)
    check_callable("loss_fn", loss_fn, "(logits, batch) -> scalar loss, e.g. model.masked_bce")
    for name, data in (("train", train), ("val", val)):
        is_dataset = hasattr(data, "__len__") and hasattr(data, "__getitem__")
        if (data is not None or name == "train") and not is_dataset:
            raise TypeError(f"{name} must be a map-style dataset (a ChipDataset or a list of its samples)"
                            f"{' or None' if name == 'val' else ''}, not {data!r}"[:200])
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
        train_loss = train_one_epoch(model, loader, optimizer, loss_fn, epoch=epoch)
        val_loss = float("nan") if val_loader is None else evaluate_loss(model, val_loader, loss_fn)
        rows.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                     "seconds": time.perf_counter() - t0})
    return pd.DataFrame(rows).set_index("epoch")


def predict(model, dataset: Any, *, batch_size: int = 16, num_workers: int = 0,
            prefetch: int = 4, ahead: int = 2) -> Iterator[tuple[dict, np.ndarray]]:
    """Apply ``model`` to every chip of ``dataset`` in order: ``(row, probability)`` pairs.

    ``probability`` is ``sigmoid(logits)``, float32 ``(1, H, W)`` in [0, 1]; ``row`` is the
    chip's index row (:meth:`geolesson.batching.ChipDataset.rows`), in the dataset's order,
    so an index in row order (:func:`geolesson.chips.overlap_grid`) feeds a
    :class:`~geolesson.stitching.Stitcher` directly. A generator: a few batches are in
    memory at a time (see ``ahead``, plus those the workers have read ahead).

    The model runs in a thread of its own, up to ``ahead`` batches ahead of the caller:
    PyTorch releases Python's global interpreter lock while it computes, so what the caller
    does with each prediction (stitching it, writing it) and the reading of the next batch
    overlap with the forward passes instead of waiting for them. The dataset is read in the
    caller's thread only (or in the workers), never in the model's. Gradients are off in the
    model's thread (``torch.no_grad``), and its forward passes use
    ``torch.set_num_threads``'s threads, as the caller's would. The predictions are the
    same, bit for bit, with or without it.

    Args:
        model: a ``torch.nn.Module`` ``(B, C, H, W)`` -> ``(B, 1, H, W)`` logits.
        dataset: a :class:`~geolesson.batching.ChipDataset`.
        batch_size: chips per forward pass (>= 1).
        num_workers: ``DataLoader`` worker processes that read the next batches while the
            model runs on this one (>= 0; 0: read in the caller's thread, which with
            ``ahead`` >= 1 also overlaps with the model). The batches still arrive in the
            dataset's order. With 1 or 2 CPUs, 1 worker overlaps reading with the model;
            more compete with the model's threads.
        prefetch: batches each worker reads ahead (>= 1; ``DataLoader``'s
            ``prefetch_factor``, whose default is 2; unused without workers). Each is a
            ``(batch_size, C, H, W)`` float32 image in shared memory, 3 MiB for 16 chips of
            3 bands and 128 px: a deeper queue lets the worker absorb the slower batches.
        ahead: batches the model may predict before the caller asks for them (>= 0; 0: no
            thread, the model runs in the caller's thread when the next chip is asked for).
            A batch the caller never asks for (it stopped early) may still be predicted.
            Up to ``ahead + 1`` batches are held at once: read, or predicted and not yet
            asked for.

    Memory and speed over a long run (a whole scene, an archive): PyTorch allocates every
    layer's output afresh for each batch and frees it after (8 MiB for a batch of 16 chips
    of 128 px through 8 channels). With the model in its own thread, glibc's ``malloc``
    serves these from an arena of that thread, apart from the caller's arrays, so they do
    not fragment the caller's heap and memory stays flat (with ``ahead=0`` they share one
    heap, which over thousands of batches may fragment and keep hundreds of MiB, in some
    runs and not in others). By default glibc returns the freed pages to the system after
    every batch (its trim threshold is twice the largest block it has unmapped,
    ``mallopt(3)``) and the next batch takes fresh ones, which costs time. Setting
    ``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=134217728``
    in the environment before Python starts (the glibc manual, "Memory Allocation
    Tunables": blocks under 32 MiB come from the heap, and up to 128 MiB of free memory
    stays there) lets each batch reuse the last one's pages; PyTorch's
    ``THP_MEM_ALLOC_ENABLE=1`` (``c10/core/impl/alloc_cpu.cpp``: tensors of 2 MiB or more
    on transparent huge pages of their own) makes the fresh pages cheaper instead. glibc
    reads its tunables when the process starts and PyTorch its variable at its first
    allocation, so both belong in the environment Python starts in (the shell, a kernel's
    ``env``). ``benchmarks/inference.py --allocator`` measures the three. In a process
    already running (a notebook's kernel), glibc's ``mallopt(3)`` sets the same two
    parameters (``M_MMAP_THRESHOLD`` is -3 and ``M_TRIM_THRESHOLD`` -1 in ``<malloc.h>``):
    ``libc = ctypes.CDLL("libc.so.6")``, then ``libc.mallopt(-3, 33554432)`` and
    ``libc.mallopt(-1, 134217728)`` (each returns 1 when glibc took it), before the first
    batch. It lasts as long as the process: glibc's thresholds no longer adapt to the
    blocks it frees, and up to 128 MiB of freed memory per arena stays with the process.

    Raises:
        TypeError: ``model`` is not a ``torch.nn.Module``; ``dataset`` has no ``rows()`` (not
            a ChipDataset).
        ValueError: ``batch_size`` < 1, ``num_workers`` < 0, ``prefetch`` < 1 or ``ahead`` < 0.
        Exception: whatever the model or the reading raises, in the caller's thread, with
            its traceback.
    """
    _check_module(model)
    if not hasattr(dataset, "rows"):
        raise TypeError(f"dataset must be a ChipDataset (with rows()), not {type(dataset).__name__}")
    batch_size = check_int("batch_size", batch_size, 1)
    num_workers = check_int("num_workers", num_workers, 0)
    prefetch = check_int("prefetch", prefetch, 1)
    ahead = check_int("ahead", ahead, 0)
    rows = dataset.rows()
    model.eval()
    batches = DataLoader(dataset, batch_size=batch_size, collate_fn=collate, num_workers=num_workers,
                         prefetch_factor=prefetch if num_workers else None)

    def forward(batch: dict) -> np.ndarray:
        with torch.no_grad():  # grad mode is per thread
            return torch.sigmoid(model(batch["image"])).numpy()

    i = 0
    for probability in _run_ahead(forward, batches, ahead):
        for p in probability:
            yield rows[i], p
            i += 1


def _run_ahead(fn: Callable[[Any], Any], items: Any, ahead: int) -> Iterator[Any]:
    """``fn(item)`` for each of ``items``, in order. With ``ahead`` >= 1, ``fn`` runs in one
    thread of its own on up to ``ahead`` items whose results are not yet asked for, while
    this thread takes the next item; an exception of ``fn`` is raised here. When the caller
    stops early, the calls not yet started are cancelled and the running one is waited for."""
    if ahead == 0:
        for item in items:
            yield fn(item)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict") as thread:
        pending: deque = deque()
        try:
            for item in items:
                pending.append(thread.submit(fn, item))
                if len(pending) > ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def save_checkpoint(path: str | os.PathLike, model, statistics: BandStatistics, **config) -> None:
    """Write the model's weights and its normalization statistics into one file.

    ``torch.save`` of ``{"format", "state_dict", "statistics" (JSON text), "config"}``;
    ``config`` holds what is needed to rebuild the network (its constructor's keyword
    arguments: ints, floats, strings), e.g. ``bands=3, width=8``.

    Raises:
        TypeError: ``model`` is not a ``torch.nn.Module``, ``statistics`` not a
            :class:`~geolesson.batching.BandStatistics`, ``path`` not a path.
        ValueError: a ``config`` value is not a plain value (int, float, str, bool, None, or
            lists and dicts of them): ``load_checkpoint`` could not read it back.
        FileNotFoundError: the folder of ``path`` does not exist.
    """
    path = check_path("path", path)
    _check_module(model)
    if not isinstance(statistics, BandStatistics):
        raise TypeError(f"statistics must be the BandStatistics the model was trained with (band_statistics or "
                        f"load_statistics give one), not {type(statistics).__name__}: {statistics!r}"[:300])
    for key, value in config.items():
        odd = _not_plain(value)
        if odd is not None:
            raise ValueError(f"config[{key!r}] = {value!r} holds a {type(odd).__name__} ({odd!r}); a checkpoint's "
                             "config holds plain values only (int, float, str, bool, None, lists and dicts of "
                             "them), which load_checkpoint reads back without running code"[:400])
    if not path.parent.is_dir():
        raise FileNotFoundError(f"path: the folder {path.parent} of {path} does not exist; make it first")
    torch.save({"format": CHECKPOINT_FORMAT, "state_dict": model.state_dict(),
                "statistics": statistics.to_json(), "config": dict(config)}, os.fspath(path))


def load_checkpoint(path: str | os.PathLike, build: Callable[..., Any]):
    """Load a checkpoint of :func:`save_checkpoint`: ``(model, statistics, config)``.

    ``build(**config)`` makes the network (e.g. the model's class); its weights are then
    loaded strictly (every tensor must match) and it is put in evaluation mode. The file is
    read with ``torch.load(weights_only=True)``: tensors and plain values only, no code.

    Raises:
        TypeError: ``build`` is not callable, ``path`` not a path.
        FileNotFoundError: no file at ``path``.
        ValueError: not a checkpoint of this layout (names the path and the format found);
            ``build`` refuses the checkpoint's config (names both).
        RuntimeError: (from PyTorch) the weights do not fit the network ``build`` made.
    """
    path = os.fspath(check_path("path", path))
    check_callable("build", build, "config -> network, e.g. the model's class")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch.load raises many kinds for a file that is not its own
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise ValueError(f"{path} is not a geolesson checkpoint of format {CHECKPOINT_FORMAT}: torch.load cannot "
                         f"read it ({type(exc).__name__}: {first})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"{path} is not a geolesson checkpoint of format {CHECKPOINT_FORMAT} "
                         f"(found {found!r}); write it with save_checkpoint")
    config = dict(ckpt["config"])
    try:
        model = build(**config)
    except TypeError as exc:
        raise ValueError(f"build={getattr(build, '__name__', build)!r} does not take the checkpoint's config "
                         f"{config}: {exc}") from None
    model.load_state_dict(ckpt["state_dict"], strict=True)
    model.eval()
    return model, BandStatistics.from_json(ckpt["statistics"]), config


def _check_module(model: Any) -> None:
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module (B, C, H, W) -> (B, 1, H, W), not "
                        f"{type(model).__name__}: {model!r}"[:200])


def _not_plain(value: Any) -> Any:
    """None if ``value`` is plain data (int, float, str, bool, None, lists, tuples and str-keyed
    dicts of them); else the first part that is not."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return None
    if isinstance(value, (list, tuple)):
        return next((odd for v in value if (odd := _not_plain(v)) is not None), None)
    if isinstance(value, dict):
        return next((odd for k, v in value.items()
                     if (odd := (k if not isinstance(k, str) else _not_plain(v))) is not None), None)
    return value
