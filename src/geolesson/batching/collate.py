"""collate: samples of a ChipDataset -> one batch, georeferencing kept per chip."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import default_collate, get_worker_info

#: Sample keys stacked into tensors; every other key becomes a list, one entry per chip.
_STACKED = ("image", "mask", "valid")


def collate(samples: Sequence[dict]) -> dict:
    """Stack samples of a :class:`~geolesson.batching.ChipDataset` into a batch.

    ``"image"`` ``(C, H, W)`` -> ``(B, C, H, W)``, ``"mask"`` and ``"valid"`` ``(H, W)`` ->
    ``(B, H, W)``, dtypes kept. Samples that are already the consecutive views of one
    ``(B, ...)`` buffer (a batch from ``ChipDataset.__getitems__``, unless a transform
    replaced them) give that buffer, not a copy: the batch shares memory with the samples.
    Otherwise the tensors are copied: in a DataLoader worker with
    ``torch.utils.data.default_collate`` (which puts the batch in shared memory, so it
    reaches the main process without a copy); in the main process (``num_workers=0``) with
    ``numpy.stack``, because ``torch.stack`` copies with a team of OpenMP threads that
    stalls when the CPU is busy (0.2-1.2 s against 0.015 s for 16 x (2, 256, 256) float32,
    measured on 2 shared cores; see ``benchmarks/batching.py``). Every other key
    (``"chip_id"``, ``"item_id"``, ``"crs"``, ``"transform"``, ``"datetime"``) becomes a
    list in chip order, untouched: a batch may hold chips of several CRSs, each with its
    own transform, and nothing is dropped (``default_collate`` would turn the six
    transform numbers into six tensors of B and lose which belongs to which chip).

    Args:
        samples: a non-empty list of sample dicts with the same keys, whose tensors have the
            same shapes.

    Returns:
        A dict with the same keys.

    Raises:
        TypeError: ``samples`` is not a sequence of sample dicts.
        ValueError: ``samples`` is empty, the samples have different keys, or their
            images (masks) have different shapes; the message gives the shapes.
    """
    if not isinstance(samples, Sequence) or isinstance(samples, (str, bytes)):
        raise TypeError(f"samples must be a list of sample dicts (what a ChipDataset gives), not {samples!r}"[:200])
    if not samples:
        raise ValueError("collate needs at least one sample")
    odd = next((s for s in samples if not isinstance(s, Mapping)), None)
    if odd is not None:
        raise TypeError(f"samples must be sample dicts (what a ChipDataset gives); one is a "
                        f"{type(odd).__name__}")
    keys = list(samples[0])
    for s in samples[1:]:
        if list(s) != keys:
            raise ValueError(f"samples have different keys: {keys} and {list(s)}")
    batch = {}
    for key in keys:
        values = [s[key] for s in samples]
        if key in _STACKED:
            shapes = sorted({tuple(v.shape) for v in values})
            if len(shapes) > 1:
                raise ValueError(f"collate: {key!r} tensors of different shapes {shapes} cannot be "
                                 "stacked; use chips of one size (chip_index(..., partial='drop'))")
            whole = _views_of_one_buffer(values)
            if whole is not None:
                batch[key] = whole
            elif get_worker_info() is None and all(_plain_cpu(v) for v in values):
                batch[key] = torch.from_numpy(np.stack([v.numpy() for v in values]))
            else:
                batch[key] = default_collate(values)
        else:
            batch[key] = values
    return batch


def _views_of_one_buffer(values: Sequence) -> torch.Tensor | None:
    """The ``(B, ...)`` tensor whose ``B`` consecutive sub-tensors ``values`` are (as
    ``ChipDataset.__getitems__`` reads a batch), or None: nothing to stack."""
    first = values[0]
    if not isinstance(first, torch.Tensor) or not _plain_cpu(first):
        return None
    storage, n = first.untyped_storage(), first.numel()
    if storage.nbytes() != len(values) * n * first.element_size():
        return None
    for k, v in enumerate(values):
        if (not isinstance(v, torch.Tensor) or v.dtype != first.dtype or v.shape != first.shape
                or not v.is_contiguous() or v.storage_offset() != k * n or not _plain_cpu(v)
                or v.untyped_storage().data_ptr() != storage.data_ptr()):
            return None
    return first.new_empty(0).set_(storage, 0, (len(values), *first.shape))


def _plain_cpu(value) -> bool:
    return isinstance(value, torch.Tensor) and value.device.type == "cpu" and not value.requires_grad
