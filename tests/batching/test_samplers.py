"""geolesson.batching.samplers: seeded, worker-independent batches; whole blocks; block rows per worker."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from torch.utils.data import DataLoader, get_worker_info

from geolesson import batching, chips
from tests.fixtures import assert_refused


def _ids(ds, workers, context, seed, epoch=0):
    sampler = batching.RandomChipSampler(ds, seed=seed)
    sampler.set_epoch(epoch)
    loader = DataLoader(ds, batch_size=4, sampler=sampler, collate_fn=batching.collate,
                        num_workers=workers, multiprocessing_context=context if workers else None)
    return [b["chip_id"] for b in loader]


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_same_seed_same_batches_with_0_and_2_workers(scenes, context):
    items, _, index = scenes
    small = index[index["row"] < 2].iloc[::3]  # 16 chips of both zones: few, workers are slow
    ds = batching.ChipDataset(small, ("vv",), items=items)
    chips.read_chip(small.iloc[0], ("vv",), items=items)  # the parent has open GDAL handles before the fork
    serial = _ids(ds, 0, context, seed=7)
    assert sorted(sum(serial, [])) == sorted(small.chip_id)
    assert _ids(ds, 2, context, seed=7) == serial
    assert _ids(ds, 0, context, seed=8) != serial
    assert _ids(ds, 0, context, seed=7, epoch=1) != serial


def _tag_worker(sample):
    return {**sample, "worker": get_worker_info().id}


def _blocks_of(index, batch, size):
    rows = index.iloc[batch]
    return set(zip(rows.item_id, rows.row_off // size, rows.col_off // size))


def _split_blocks(index, batches, size):
    """Blocks of ``size`` px whose chips are in more than one batch."""
    seen: dict[tuple, int] = {}
    for b in batches:
        for block in _blocks_of(index, b, size):
            seen[block] = seen.get(block, 0) + 1
    return sum(n > 1 for n in seen.values())


def test_random_block_batches_hold_whole_blocks_in_a_seeded_order():
    # 2 items of 1536^2 px, 256 px chips, 512 px blocks (the mirror's Sentinel-1 layout):
    # every block holds 4 chips, so batches of 16 are 4 whole blocks
    full = pd.DataFrame([{"item_id": f"S1A_{i}", "row_off": r, "col_off": c}
                         for i in range(2) for r in range(0, 1536, 256) for c in range(0, 1536, 256)])
    sampler = batching.RandomBlockBatchSampler(full, 16, seed=5)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 72 // 16 + 1
    assert sorted(sum(batches, [])) == list(range(72))
    assert [len(b) for b in batches] == [16] * 4 + [8]
    assert _split_blocks(full, [list(b) for b in batches], 512) == 0
    assert all(len(_blocks_of(full, b, 512)) == len(b) // 4 for b in batches)
    assert list(batching.RandomBlockBatchSampler(full, 16, seed=5)) == batches
    assert list(batching.RandomBlockBatchSampler(full, 16, seed=6)) != batches
    sampler.set_epoch(1)
    assert list(sampler) != batches
    # the blocks come in a random order, not in block order
    firsts = [min(b) for b in batches]
    assert firsts != sorted(firsts)
    # edge blocks of 2 and 1 chips (1500 px: 5 x 5 chips) still give full batches
    edge = pd.DataFrame([{"item_id": f"S1A_{i}", "row_off": r, "col_off": c}
                         for i in range(3) for r in range(0, 1280, 256) for c in range(0, 1280, 256)])
    batches = list(batching.RandomBlockBatchSampler(edge, 16, seed=0))
    assert sorted(sum(batches, [])) == list(range(75))
    assert [len(b) for b in batches] == [16] * 4 + [11]
    assert _split_blocks(edge, batches, 512) == 0  # edge blocks of 2 are paired; the 1s come last
    # a filtered index (chips dropped here and there) still gives whole blocks per batch
    kept = full.drop(index=np.random.default_rng(0).choice(72, 9, replace=False)).reset_index(drop=True)
    batches = list(batching.RandomBlockBatchSampler(kept, 16, seed=1))
    assert sorted(sum(batches, [])) == list(range(63)) and [len(b) for b in batches] == [16] * 3 + [15]
    assert _split_blocks(kept, batches[:-1], 512) == 0


def test_random_block_batches_go_to_one_worker_each_and_ignore_the_worker_count(scenes):
    items, _, index = scenes
    ds = batching.ChipDataset(index, ("vv",), items=items, transform=_tag_worker)
    sampler = batching.RandomBlockBatchSampler(index, 8, seed=2, block_size=256)

    def served(workers):
        loader = DataLoader(ds, batch_sampler=sampler, num_workers=workers, collate_fn=batching.collate,
                            multiprocessing_context="fork" if workers else None)
        return [(list(b["chip_id"]), set(b["worker"]) if workers else None) for b in loader]

    two = served(2)
    serial_ds, ds.transform = ds.transform, None
    serial = [ids for ids, _ in served(0)]
    ds.transform = serial_ds
    assert [ids for ids, _ in two] == serial
    assert all(len(w) == 1 for _, w in two)  # a batch is read by one worker
    workers_of: dict[tuple, set] = {}
    by_id = index.set_index("chip_id")
    for ids, w in two:
        for chip_id in ids:
            r = by_id.loc[chip_id]
            workers_of.setdefault((r.item_id, r.row_off // 256, r.col_off // 256), set()).update(w)
    split = _split_blocks(index, [[int(index.index[index.chip_id == c][0]) for c in ids] for ids in serial], 256)
    assert sum(len(w) > 1 for w in workers_of.values()) <= split


def test_block_row_sharding_gives_each_block_row_to_one_worker(scenes):
    items, _, index = scenes
    ds = batching.ChipDataset(index, ("vv",), items=items, transform=_tag_worker)
    sampler = batching.BlockRowBatchSampler(index, 4, num_workers=2, block_size=256)
    assert sorted(sum(sampler.batches, [])) == list(range(len(index)))  # every chip once
    loader = DataLoader(ds, batch_sampler=sampler, num_workers=2, collate_fn=batching.collate,
                        multiprocessing_context="fork")
    served = {}
    for batch in loader:
        for chip_id, worker in zip(batch["chip_id"], batch["worker"]):
            row = index.loc[index.chip_id == chip_id].iloc[0]
            served.setdefault((row.item_id, row.row_off // 256), set()).add(worker)
    assert len(served) == 4 * 3 and all(len(w) == 1 for w in served.values())
    assert {w for ws in served.values() for w in ws} == {0, 1}
    # each worker's block rows are one contiguous run of block order, of half the chips
    owners = [served[key].pop() for key in sorted(served)]
    assert owners == sorted(owners)
    shares = [sum(len(b) for b in sampler.batches[w::2]) for w in (0, 1)]
    assert abs(shares[0] - shares[1]) <= 5  # a 256-px block row of this index has 5 chips
    # block order: chips of one 256 block follow each other
    order = batching.block_order(index, 256)
    blocks = [(index.item_id.iloc[p], index.row_off.iloc[p] // 256, index.col_off.iloc[p] // 256) for p in order]
    assert sum(a != b for a, b in zip(blocks, blocks[1:])) == len(set(blocks)) - 1
    assert list(batching.GridChipSampler(index, 256)) == order.tolist()


# (id, call(index), expected, words the message must hold): one row per bad input
BAD_INPUTS = [
    ("random-none", lambda ix: batching.RandomChipSampler(None, seed=0), TypeError, ["data_source", "None"]),
    ("random-negative-length", lambda ix: batching.RandomChipSampler(-5, seed=0), ValueError, ["data_source", "-5"]),
    ("random-float-length", lambda ix: batching.RandomChipSampler(2.5, seed=0), TypeError, ["data_source", "2.5"]),
    ("random-seed-negative", lambda ix: batching.RandomChipSampler(10, seed=-1), ValueError, ["seed", "-1"]),
    ("random-seed-float", lambda ix: batching.RandomChipSampler(10, seed=0.5), ValueError, ["seed", "0.5"]),
    ("random-num-samples-zero", lambda ix: batching.RandomChipSampler(10, seed=0, num_samples=0),
     ValueError, ["num_samples", "0"]),
    ("random-too-many", lambda ix: batching.RandomChipSampler(10, seed=0, num_samples=11),
     ValueError, ["num_samples=11", "10 chips"]),
    ("random-epoch-negative", lambda ix: batching.RandomChipSampler(10, seed=0).set_epoch(-1),
     ValueError, ["epoch", "-1"]),
    ("block-none", lambda ix: batching.RandomBlockBatchSampler(None, 16, seed=0), TypeError, ["index", "None"]),
    ("block-int", lambda ix: batching.RandomBlockBatchSampler(100, 16, seed=0), TypeError, ["index", "int"]),
    ("block-no-item-id", lambda ix: batching.RandomBlockBatchSampler(ix.drop(columns=["item_id"]), 16, seed=0),
     ValueError, ["index", "'item_id'"]),
    ("block-batch-zero", lambda ix: batching.RandomBlockBatchSampler(ix, 0, seed=0), ValueError, ["batch_size", "0"]),
    ("block-size-zero", lambda ix: batching.RandomBlockBatchSampler(ix, 8, seed=0, block_size=0),
     ValueError, ["block_size", "0"]),
    ("grid-none", lambda ix: batching.GridChipSampler(None), TypeError, ["index", "None"]),
    ("grid-no-row-off", lambda ix: batching.GridChipSampler(ix.drop(columns=["row_off"])),
     ValueError, ["index", "'row_off'"]),
    ("order-block-size-str", lambda ix: batching.block_order(ix, "512"), ValueError, ["block_size", "'512'"]),
    ("rows-none", lambda ix: batching.BlockRowBatchSampler(None, 16, num_workers=2), TypeError, ["index", "None"]),
    ("rows-workers-negative", lambda ix: batching.BlockRowBatchSampler(ix, 16, num_workers=-1),
     ValueError, ["num_workers", "-1"]),
    ("rows-batch-float", lambda ix: batching.BlockRowBatchSampler(ix, 16.0, num_workers=2),
     ValueError, ["batch_size", "16.0"]),
]


@pytest.mark.parametrize("call, expected, words", [pytest.param(*c[1:], id=c[0]) for c in BAD_INPUTS])
def test_bad_input_is_refused_naming_the_parameter_and_value(scenes, call, expected, words):
    _, _, index = scenes
    assert_refused(lambda: call(index), expected, words)
