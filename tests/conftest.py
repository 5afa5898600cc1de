"""Shared fixtures: the real offline mirror (started once per session) and small COGs made in code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin


@pytest.fixture(scope="session")
def mirror():
    """The running mirror's state (URLs, ports); started here if it was not running, stopped after."""
    from geolesson import mirror

    if not mirror.is_built():
        pytest.fail("the mirror's data is not built: run `make test` (it builds it) or `geolesson mirror build`")
    was_up, _ = mirror.status()
    state = mirror.start(log=lambda *_: None)
    yield state
    if not was_up:
        mirror.stop(log=lambda *_: None)


@pytest.fixture(scope="session")
def built_book(mirror):
    """The book built (executed and rendered) once per session against the mirror: the html folder."""
    root = Path(__file__).resolve().parents[1]
    jb = Path(sys.executable).parent / "jupyter-book"
    r = subprocess.run([str(jb), "build", ".", "--all", "-W", "-n", "--keep-going"], cwd=root,
                       capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout[-5000:] + r.stderr[-5000:]
    return root / "_build" / "html"


@pytest.fixture
def client(mirror):
    """A client on the mirror's current URL (tests/test_faults.py restarts the mirror, on a new port when the old is busy)."""
    import pystac_client

    return pystac_client.Client.open(mirror["api_url"])


@pytest.fixture(scope="session")
def local_items():
    """The mirror's items as built on disk (hrefs relative to the file server root)."""
    import json

    from geolesson.mirror.layout import collection_dir

    with open(collection_dir("sentinel-2-l2a") / "items.ndjson") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="session")
def local_s1_items():
    """The mirror's sentinel-1-rtc items as built on disk (hrefs relative to the file server root)."""
    import json

    from geolesson.mirror.layout import collection_dir

    with open(collection_dir("sentinel-1-rtc") / "items.ndjson") as f:
        return [json.loads(line) for line in f]


def write_test_cog(path, shape=(1000, 700), blocksize=256, dtype="uint16", count=1, seed=0, **extra):
    """A small COG with known pixels: returns the array written ((count, H, W))."""
    rng = np.random.default_rng(seed)
    data = rng.integers(1, 10000, size=(count, *shape)).astype(dtype)
    profile = dict(driver="COG", width=shape[1], height=shape[0], count=count, dtype=dtype,
                   crs="EPSG:32635", transform=from_origin(500000, 4000000, 10, 10), nodata=0,
                   blocksize=blocksize, compress="DEFLATE", **extra)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return data
