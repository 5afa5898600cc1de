"""ChipDataset over HTTP with forked DataLoader workers, after the parent has read over HTTP.

GDAL keeps keep-alive HTTP connections per thread; a forked worker is a copy of its parent
and, unless :mod:`geolesson.sources` drops them before the fork, two workers write to one
inherited socket and read each other's responses. The COGs are made here (Sentinel-1
RTC-like float32, tests/fixtures.py) and served by a stand-in file server in its own
process: Starlette ``StaticFiles`` (HTTP Range, keep-alive) under uvicorn on 127.0.0.1.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import rasterio
from torch.utils.data import DataLoader

from geolesson import batching, chips
from tests.fixtures import OSAKA, S1_NODATA, s1_scene

SHAPE = (512, 512)
CHIP = 128
EPOCHS = 20

SERVER = textwrap.dedent("""
    import sys
    import uvicorn
    from starlette.staticfiles import StaticFiles
    uvicorn.run(StaticFiles(directory=sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]),
                log_level="warning")
""")


@pytest.fixture(scope="module")
def file_server(tmp_path_factory):
    """(root folder, base URL) of a Range-capable HTTP file server in a child process."""
    root = tmp_path_factory.mktemp("cogs")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(root), str(port)],
                              stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    try:
        while True:
            if server.poll() is not None:
                pytest.fail(f"the test file server exited with {server.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("the test file server did not listen within 30 s")
                time.sleep(0.1)
        yield root, f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def http_scenes(file_server):
    """Four items whose assets are on the file server, their local files, and a chip index."""
    root, base = file_server
    items, local = [], {}
    for k in range(4):
        item_id = f"S1A_OSAKA_{k}"
        item, _ = s1_scene(root / item_id, item_id, OSAKA, shape=SHAPE, seed=k)
        for key, asset in item["assets"].items():
            local[(item_id, key)] = asset["href"]
            asset["href"] = f"{base}/{item_id}/{key}.tif"
        items.append(item)
    index = chips.chip_index(items, CHIP)  # reads every vv over HTTP in this process
    return items, local, index


def _direct(local, row):
    """The chip read straight from the local file (rasterio, no HTTP), nodata as NaN."""
    bands = []
    for key in ("vv", "vh"):
        with rasterio.open(local[(row["item_id"], key)]) as f:
            a = f.read(1, window=((row["row_off"], row["row_off"] + row["height"]),
                                  (row["col_off"], row["col_off"] + row["width"])))
        bands.append(np.where(a == S1_NODATA, np.float32(np.nan), a))
    return np.stack(bands)


def test_forked_workers_over_http_read_what_the_files_hold(http_scenes):
    items, local, index = http_scenes
    ds = batching.ChipDataset(index, ("vv", "vh"), items=items)
    rows = {r["chip_id"]: r for r in ds.rows()}
    expected = {chip_id: _direct(local, r) for chip_id, r in rows.items()}
    sampler = batching.RandomChipSampler(ds, seed=0)
    for epoch in range(EPOCHS):
        # the parent reads over HTTP between epochs (e.g. a validation chip), then forks
        probe = index.iloc[epoch % len(index)]
        assert np.array_equal(chips.read_chip_array(probe, ("vv", "vh"), items=items).data,
                              expected[probe.chip_id], equal_nan=True)
        sampler.set_epoch(epoch)
        loader = DataLoader(ds, batch_size=4, sampler=sampler, num_workers=2,
                            multiprocessing_context="fork", collate_fn=batching.collate,
                            timeout=60)
        seen = []
        for batch in loader:
            for chip_id, image in zip(batch["chip_id"], batch["image"]):
                assert np.array_equal(image.numpy(), expected[chip_id], equal_nan=True), \
                    f"epoch {epoch}: chip {chip_id} differs from a direct read of its files"
                seen.append(chip_id)
        assert sorted(seen) == sorted(rows), f"epoch {epoch}: not every chip came once"
