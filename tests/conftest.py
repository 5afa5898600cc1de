"""Shared fixtures: the real offline mirror (started once per session), its built data, the
built book, and a Sentinel-2-like scene made in code (:mod:`tests.fixtures` makes the data).

The mirror's own tests (``tests/mirror/``: simulation, builds, servers, faults) and every
test that uses the running mirror or its built data (the ``mirror``, ``client``,
``local_items``, ``local_s1_items`` or ``built_book`` fixtures) are marked ``mirror`` here, so
``pytest -m "not mirror"`` runs the teaching helpers' unit tests alone.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures import ROOT, s2_scene

#: fixtures that need the mirror's built data or the running mirror
MIRROR_FIXTURES = {"mirror", "client", "local_items", "local_s1_items", "built_book"}


MIRROR_TESTS = Path(__file__).parent / "mirror"


def pytest_collection_modifyitems(items):
    for item in items:
        if MIRROR_FIXTURES & set(getattr(item, "fixturenames", ())) or MIRROR_TESTS in item.path.parents:
            item.add_marker(pytest.mark.mirror)


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
    root = ROOT
    jb = Path(sys.executable).parent / "jupyter-book"
    r = subprocess.run([str(jb), "build", ".", "--all", "-W", "-n", "--keep-going"], cwd=root,
                       capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout[-5000:] + r.stderr[-5000:]
    return root / "_build" / "html"


@pytest.fixture
def client(mirror):
    """A client on the mirror's current URL (tests/mirror/server/test_faults.py restarts the mirror,
    on a new port when the old is busy)."""
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


@pytest.fixture(scope="module")
def scene_files(tmp_path_factory):
    """The files of :func:`scene`, written once per test module."""
    return s2_scene(tmp_path_factory.mktemp("s2"))


@pytest.fixture
def scene(scene_files):
    """A Sentinel-2 L2A-like item (1000 x 700 at 10 m, swir16 and SCL at 20 m) and its arrays:
    the item a fresh copy for each test (tests change its metadata), the files and arrays shared."""
    item, arrays = scene_files
    return item.clone(), arrays
