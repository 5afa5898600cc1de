"""geolesson.chips.files: one open dataset per href, process and thread; forgotten after a fork."""

from __future__ import annotations

import os

from geolesson import chips


def test_dataset_cache_reused_and_reset_after_fork(scene):
    item, _ = scene
    idx = chips.chip_index(item, 256)
    chips.close_datasets()
    chips.read_chip(idx.iloc[0], ("red",), items=item)
    ds = chips.files._cache()[item.assets["red"].href]
    chips.read_chip(idx.iloc[1], ("red",), items=item)
    assert chips.files._cache()[item.assets["red"].href] is ds and len(chips.files._cache()) == 1
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: empty cache, reads still work
        ok = len(chips.files._cache()) == 0
        try:
            chips.read_chip(idx.iloc[2], ("red",), items=item)
        except Exception:  # noqa: BLE001
            ok = False
        os.write(w, b"1" if ok else b"0")
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(r, 1) == b"1"
    assert chips.files._cache()[item.assets["red"].href] is ds
    chips.close_datasets()
    assert chips.files._cache() == {}
