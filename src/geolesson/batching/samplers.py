"""Samplers over a chip index: seeded random order, random batches of whole COG blocks,
block order, and batches sharded to DataLoader workers by COG block row. All are
``torch.utils.data.Sampler`` subclasses that run in the main process and read only the
index (no file)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from torch.utils.data import Sampler

from geolesson._checks import check_columns, check_int

#: The COG block (tile) side assumed when none is given, 512 px as in Planetary
#: Computer's Sentinel-1 RTC and this book's mirror. A STAC item does not say it; read it
#: with ``rasterio.open(href).block_shapes`` (or :func:`geolesson.cog.inspect`) if unsure.
DEFAULT_BLOCK_SIZE = 512


#: Index columns the block samplers read.
_COLUMNS = ("item_id", "row_off", "col_off")


def _index_frame(index: Any):
    """The index as a DataFrame with the columns the block samplers read (a ChipDataset's rows).

    Raises:
        TypeError: ``index`` is neither a chip index nor a ChipDataset.
        ValueError: it lacks ``item_id``, ``row_off`` or ``col_off``.
    """
    import pandas as pd

    if hasattr(index, "rows") and callable(index.rows):  # a ChipDataset
        index = pd.DataFrame(index.rows())
    check_columns("index", index, _COLUMNS, "a chip index or the ChipDataset built on it")
    return index


class RandomChipSampler(Sampler[int]):
    """A seeded random permutation of the chips, a new one each epoch.

    The order is a function of ``(seed, epoch)`` only: ``numpy.random.default_rng([seed,
    epoch]).permutation(n)`` (NumPy's ``SeedSequence`` mixes both numbers). It runs in the
    main process, so the batches are the same with 0 or any number of DataLoader workers,
    under ``fork`` or ``spawn``. Call :meth:`set_epoch` before each epoch (as with
    ``DistributedSampler``) to get a different but reproducible order per epoch.

    Args:
        data_source: the dataset (anything with ``len()``), or the number of chips.
        seed: a non-negative int.
        num_samples: chips per epoch (default all); with ``replacement`` any number.
        replacement: draw with replacement (``rng.integers``) instead of a permutation.

    Raises:
        TypeError: ``data_source`` has no length and is not an int.
        ValueError: ``data_source`` a negative number; ``seed`` negative or not an int;
            ``num_samples`` < 1 or (without replacement) more than the chips.
    """

    def __init__(self, data_source: Any, *, seed: int, num_samples: int | None = None,
                 replacement: bool = False):
        if isinstance(data_source, (int, np.integer)) and not isinstance(data_source, bool):
            self.n = check_int("data_source (the number of chips)", data_source, 0)
        elif hasattr(data_source, "__len__"):
            self.n = len(data_source)
        else:
            raise TypeError(f"data_source must be the dataset (anything with len()) or the number of "
                            f"chips, not {data_source!r}")
        self.seed = check_int("seed", seed, 0)
        self.replacement = bool(replacement)
        self.num_samples = self.n if num_samples is None else check_int("num_samples", num_samples, 1)
        if not self.replacement and self.num_samples > self.n:
            raise ValueError(f"num_samples={num_samples} is more than the {self.n} chips; use "
                             "replacement=True to draw more")
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` (a non-negative int) from the next iteration on."""
        self.epoch = check_int("epoch", epoch, 0)

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.replacement:
            order = rng.integers(0, self.n, size=self.num_samples)
        else:
            order = rng.permutation(self.n)[:self.num_samples]
        return iter(order.tolist())


def _block_keys(frame, block_size: int) -> np.ndarray:
    """An int64 id per row of its COG block (item, block row, block column)."""
    row_off = np.asarray(frame["row_off"], dtype=np.int64)
    col_off = np.asarray(frame["col_off"], dtype=np.int64)
    item = np.unique(np.asarray(frame["item_id"], dtype=str), return_inverse=True)[1]
    keys = np.stack([item, row_off // block_size, col_off // block_size], axis=1)
    return np.unique(keys, axis=0, return_inverse=True)[1].reshape(-1)


class RandomBlockBatchSampler(Sampler[list[int]]):
    """Random batches made of whole COG blocks, a new order each epoch: every block is
    decoded once per epoch, by one process, with any number of workers.

    A chip of 256 px in a COG of 512 px blocks shares its block with 3 others. In a full
    permutation (:class:`RandomChipSampler`) those 4 chips land in different batches: with
    2 DataLoader workers both decode most blocks (each has its own GDAL cache), and when the
    blocks do not fit the cache (``GDAL_CACHEMAX``) a block is fetched and decoded again for
    each of its chips. This sampler shuffles *blocks* instead: the blocks (item, block row,
    block column) in a random order, the chips of each block in a random order, both from
    ``numpy.random.default_rng([seed, epoch])``; batches are cut from that sequence of whole
    blocks. So a batch is decoded by one worker and a block only needs to stay in the cache
    while its own chips are read. Blocks with fewer chips than the fullest (at scene edges,
    or where an index was filtered) are first packed together into groups of that many
    chips (best-fit decreasing), which are shuffled in with the full blocks; the groups
    left short come last, in a random order too, and may be split between batches. So with
    ``batch_size`` a multiple of the chips of a full block, no block is split before that
    last part of the epoch (none at all where only scene edges are partial). The batches
    depend on ``(seed, epoch)`` only: the same with 0 or any number of workers, under
    ``fork`` or ``spawn``.

    The price is less randomness inside a batch: its chips come from ``batch_size /
    chips per block`` blocks, each a neighbourhood of ``block_size`` pixels (4 blocks of 4
    chips for batches of 16 chips of 256 px in 512 px blocks). torchgeo's
    ``RandomBatchGeoSampler`` goes further for the same reason (every chip of a batch from
    one scene). Make ``batch_size`` a multiple of the chips per block: otherwise blocks are
    split between consecutive batches (and may be decoded by two workers).

    Use it as ``DataLoader(ds, batch_sampler=RandomBlockBatchSampler(index, 16, seed=0),
    num_workers=2)``; call :meth:`set_epoch` before each epoch.

    Args:
        index: a chip index or the :class:`ChipDataset` built on it: ``item_id``,
            ``row_off``, ``col_off`` (pixels of the chip grid, blocks counted from 0).
        batch_size: chips per batch (>= 1).
        seed: a non-negative int.
        block_size: the COG block side in pixels (:data:`~geolesson.batching.samplers.DEFAULT_BLOCK_SIZE`).
        drop_last: drop the last batch if it is incomplete.

    Raises:
        TypeError: ``index`` is neither a chip index nor a ChipDataset.
        ValueError: ``batch_size`` < 1, ``seed`` negative, ``block_size`` < 1 (or not ints);
            the index lacks ``item_id``, ``row_off`` or ``col_off``.
    """

    def __init__(self, index: Any, batch_size: int, *, seed: int,
                 block_size: int = DEFAULT_BLOCK_SIZE, drop_last: bool = False):
        frame = _index_frame(index)
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.seed = check_int("seed", seed, 0)
        self.block_of = _block_keys(frame, check_int("block_size", block_size, 1))  # per chip
        self.drop_last = bool(drop_last)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` (a non-negative int) from the next iteration on."""
        self.epoch = check_int("epoch", epoch, 0)

    def __len__(self) -> int:
        n = len(self.block_of)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        chips = rng.permutation(len(self.block_of))  # the chips' order inside their blocks
        chips = chips[np.argsort(self.block_of[chips], kind="stable")]
        blocks = np.split(chips, np.flatnonzero(np.diff(self.block_of[chips])) + 1) if len(chips) else []
        blocks = [blocks[k] for k in rng.permutation(len(blocks))]  # the blocks' order
        full = max((len(b) for b in blocks), default=0)
        units = [b for b in blocks if len(b) == full]
        # best-fit decreasing of the partial blocks into groups of `full` chips, by the room
        # left in each open group (sizes are small integers: linear in the blocks)
        room: dict[int, list[list[np.ndarray]]] = {r: [] for r in range(1, full)}
        for b in sorted((b for b in blocks if len(b) < full), key=len, reverse=True):
            fit = next((r for r in range(len(b), full) if room[r]), None)
            group = [b] if fit is None else [*room[fit].pop(), b]
            left = (full if fit is None else fit) - len(b)
            if left:
                room[left].append(group)
            else:
                units.append(np.concatenate(group))
        tail = [np.concatenate(g) for r in range(1, full) for g in room[r]]
        tail = [tail[k] for k in rng.permutation(len(tail))]
        units = [units[k] for k in rng.permutation(len(units))] + tail
        order = np.concatenate(units).tolist() if units else []
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        return iter(batches)


def block_order(index: Any, block_size: int = DEFAULT_BLOCK_SIZE) -> np.ndarray:
    """Positions of the index's rows in block order: by item, COG block row, block column,
    then chip row and column, so that the chips of one block follow each other and a block
    is decoded once while it is in GDAL's cache.

    Args:
        index: a chip index (or a :class:`ChipDataset`): ``item_id``, ``row_off``, ``col_off``.
        block_size: the COG block side in pixels of the chip grid
            (:data:`~geolesson.batching.samplers.DEFAULT_BLOCK_SIZE`).

    Returns:
        int64 positions ``0..len(index)-1``.

    Raises:
        TypeError, ValueError: as :class:`RandomBlockBatchSampler` for ``index`` and ``block_size``.
    """
    frame = _index_frame(index)
    block_size = check_int("block_size", block_size, 1)
    row_off = np.asarray(frame["row_off"], dtype=np.int64)
    col_off = np.asarray(frame["col_off"], dtype=np.int64)
    item = np.unique(np.asarray(frame["item_id"], dtype=str), return_inverse=True)[1]
    return np.lexsort((col_off, row_off, col_off // block_size, row_off // block_size, item))


class GridChipSampler(Sampler[int]):
    """Every chip once, in block order (:func:`block_order`): the order for inference, or
    for reading a whole scene fast. Deterministic; the same every epoch.

    Args:
        index: a chip index or the :class:`ChipDataset` built on it (same row order).
        block_size: COG block side in pixels (:data:`~geolesson.batching.samplers.DEFAULT_BLOCK_SIZE`).

    Raises:
        TypeError, ValueError: as :func:`block_order`.
    """

    def __init__(self, index: Any, block_size: int = DEFAULT_BLOCK_SIZE):
        self.order = block_order(index, block_size)

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self) -> Iterator[int]:
        return iter(self.order.tolist())


class BlockRowBatchSampler(Sampler[list[int]]):
    """Batches in block order, sharded to DataLoader workers by COG block row.

    A ``DataLoader`` hands batch ``k`` to worker ``k % num_workers`` (round robin, while
    every worker is alive). This sampler puts in batch ``k`` only chips whose block rows
    (item, ``row_off // block_size``) belong to worker ``k % num_workers``: each block row
    goes to one worker, so no two workers decode the same COG block, and each worker reads
    its block rows in block order (its GDAL cache holds the blocks its next chips need).
    The block rows, in block order, are cut into ``num_workers`` contiguous runs of nearly
    equal chips (to within a block row), one per worker: a worker reads its files and
    blocks in file order, so what GDAL reads ahead over HTTP after a block row (it doubles
    its requests on consecutive reads) is the next block row this worker needs, not one
    of another worker's. Dealing block rows out in turn sent 1.12x the tiles' bytes with 2
    workers, contiguous runs 1.00x (``benchmarks/batching.py``). When one worker's share
    ends before the others', the rest of the batches still go out round robin (a few
    blocks may then be decoded twice at the very end).

    Use it as ``DataLoader(ds, batch_sampler=BlockRowBatchSampler(index, 16,
    num_workers=2), num_workers=2)``; with ``num_workers=0`` it yields the batches of
    :class:`GridChipSampler` order.

    Args:
        index: a chip index or the :class:`ChipDataset` built on it.
        batch_size: chips per batch (>= 1).
        num_workers: the DataLoader's ``num_workers`` (0 or more).
        block_size: COG block side in pixels (:data:`~geolesson.batching.samplers.DEFAULT_BLOCK_SIZE`).
        drop_last: drop each worker's last incomplete batch.

    Raises:
        TypeError, ValueError: as :class:`RandomBlockBatchSampler`; ``num_workers`` < 0.
    """

    def __init__(self, index: Any, batch_size: int, *, num_workers: int,
                 block_size: int = DEFAULT_BLOCK_SIZE, drop_last: bool = False):
        frame = _index_frame(index)
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.num_workers = check_int("num_workers", num_workers, 0)
        block_size = check_int("block_size", block_size, 1)
        order = block_order(frame, block_size)
        items = np.asarray(frame["item_id"], dtype=str)[order]
        block_rows = np.asarray(frame["row_off"], dtype=np.int64)[order] // block_size
        shares = max(1, self.num_workers)
        groups: dict[tuple, list[int]] = {}
        for pos, item, br in zip(order.tolist(), items.tolist(), block_rows.tolist()):
            groups.setdefault((item, br), []).append(pos)
        # contiguous runs: worker w gets the block rows whose chips start in the w-th
        # 1/num_workers of the epoch's chips (in block order); the midpoint rule balances
        # runs to within a block row
        total = sum(len(g) for g in groups.values())
        owner: dict[tuple, int] = {}
        before = 0
        for key, group in groups.items():  # insertion order: block order
            owner[key] = min(shares - 1, int((before + len(group) / 2) * shares // max(total, 1)))
            before += len(group)
        per_worker: list[list[list[int]]] = []
        for w in range(shares):
            chips_w = [p for key in groups if owner[key] == w for p in groups[key]]  # block order
            batches = [chips_w[i:i + self.batch_size] for i in range(0, len(chips_w), self.batch_size)]
            if drop_last and batches and len(batches[-1]) < self.batch_size:
                batches.pop()
            per_worker.append(batches)
        self.batches: list[list[int]] = []
        for k in range(max((len(b) for b in per_worker), default=0)):
            self.batches.extend(b[k] for b in per_worker if k < len(b))

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        return iter([list(b) for b in self.batches])
