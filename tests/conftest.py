"""Shared fixtures: the real offline mirror (started once per session), its built data, the
built book, and a Sentinel-2-like scene made in code (:mod:`tests.fixtures` makes the data).

The mirror's own tests (``tests/mirror/``: simulation, builds, servers, faults) and every
test that uses the running mirror or its built data (the ``mirror``, ``client``,
``local_items``, ``local_s1_items`` or ``built_book`` fixtures, or any fixture that uses one
of them, such as ``book_build``) are marked ``mirror`` here, so ``pytest -m "not mirror"``
runs the teaching helpers' unit tests alone.

``make test`` runs two pytest-xdist workers (``-n 2 --dist loadgroup``) side by side: the
book's tests (those that use ``book_build``, directly or through ``built_book``: the build,
the rendered site, the JupyterLab run) in one, against the mirror of ``data/mirror``; every
other test in the other, on a private copy of the mirror's data with its own PostgreSQL,
ports and request counters. The fault tests kill and restart their mirror, and chapter 2
counts the requests its mirror serves: neither may reach the other worker's mirror.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures import ROOT, s2_scene

#: fixtures that need the mirror's built data or the running mirror
MIRROR_FIXTURES = {"mirror", "client", "local_items", "local_s1_items", "built_book"}


MIRROR_TESTS = Path(__file__).parent / "mirror"


#: the two pytest-xdist groups of ``make test``: the book's tests, and every other test
BOOK_GROUP, OTHER_GROUP = "book", "rest"


def xdist_group(item) -> str:
    # fixturenames holds every fixture a test needs, directly or through another: a test of
    # the build (book_build) or of its pages (built_book, which uses book_build) runs where
    # the book is built. Anywhere else it would build the book a second time, at once, into
    # the same _build/html the book's tests are reading
    return BOOK_GROUP if "book_build" in getattr(item, "fixturenames", ()) else OTHER_GROUP


def pytest_itemcollected(item):
    # as each test is collected, before any pytest_collection_modifyitems: pytest-xdist's
    # reads the groups into the test ids there
    if item.config.pluginmanager.hasplugin("xdist"):
        item.add_marker(pytest.mark.xdist_group(xdist_group(item)))


def pytest_collection_modifyitems(items):
    for item in items:
        if MIRROR_FIXTURES & set(getattr(item, "fixturenames", ())) or MIRROR_TESTS in item.path.parents:
            item.add_marker(pytest.mark.mirror)


#: the group this xdist worker runs, and its private mirror home (the other group's worker)
_worker = {"group": None, "home": None}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """In the xdist worker of the other tests: before the first test, a private copy of the
    built mirror data (``files/`` and ``stac/``; a fresh PostgreSQL cluster is made and
    loaded by the first start) becomes the mirror home (``GEOLESSON_MIRROR_DIR``)."""
    if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) < 2:
        return
    group = xdist_group(item)
    if _worker["group"] is None:
        _worker["group"] = group
        if group == OTHER_GROUP:
            _worker["home"] = _private_mirror_home()
            os.environ["GEOLESSON_MIRROR_DIR"] = str(_worker["home"])
            # preferred ports of its own: both workers' mirrors start at once, and two starts
            # preferring the same free port race for it between choosing and binding
            os.environ["GEOLESSON_MIRROR_PORT"], os.environ["GEOLESSON_MIRROR_PG_PORT"] = map(str, _free_ports(2))
    elif group != _worker["group"]:
        pytest.exit(f"one xdist worker was given both test groups ({_worker['group']!r}, then {group!r}): "
                    "run `pytest -n 2 --dist loadgroup` (make test) or without -n", returncode=3)


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _private_mirror_home() -> Path:
    from geolesson._home import mirror_home

    src = mirror_home()
    home = Path(tempfile.mkdtemp(prefix="geolesson-test-mirror-"))
    home.chmod(0o755)  # mkdtemp's 0700 would lock out the unprivileged account PostgreSQL runs as under root
    for name in ("files", "stac"):
        if (src / name).is_dir():
            shutil.copytree(src / name, home / name)
    return home


@pytest.hookimpl(trylast=True)  # after the session fixtures' teardown (the mirror fixture stops what it started)
def pytest_sessionfinish(session):
    """The worker's private mirror stopped (if still running) and its copy deleted."""
    home = _worker["home"]
    if home is not None and home.exists():
        stop = subprocess.run([sys.executable, "-m", "geolesson.cli", "mirror", "stop"], capture_output=True,
                              text=True, timeout=120, env={**os.environ, "GEOLESSON_MIRROR_DIR": str(home)})
        if stop.returncode:
            sys.stderr.write(f"could not stop the test mirror in {home} (left in place):\n{stop.stdout}{stop.stderr}")
            return
        shutil.rmtree(home)


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


@dataclass(frozen=True)
class BookBuild:
    """One build of the book: its html folder, and the names its kernels left in the build's
    own temporary folder (TMPDIR), which the build then removes."""

    html: Path
    temp_names: tuple[str, ...]


@pytest.fixture(scope="session")
def book_build(mirror) -> BookBuild:
    """The book built (executed and rendered) once per session against the mirror. Its kernels
    get a TMPDIR of their own, removed after the build, as `make book` gives them, so that
    what they leave (a failed chapter's working folder, Dask's scratch space) does not pile
    up in /tmp build after build."""
    if _worker["group"] == OTHER_GROUP:  # xdist_group sent a test of the build to the wrong worker
        pytest.fail("the book would be built a second time, by the worker of the other tests, into the "
                    "_build/html the book's tests read: group tests that use book_build with them (xdist_group)")
    jb = Path(sys.executable).parent / "jupyter-book"
    with tempfile.TemporaryDirectory(prefix="geolesson-book-") as tmp:
        r = subprocess.run([str(jb), "build", ".", "--all", "-W", "-n", "--keep-going"], cwd=ROOT,
                           capture_output=True, text=True, timeout=1800, env={**os.environ, "TMPDIR": tmp})
        names = tuple(sorted(p.name for p in Path(tmp).iterdir()))
    assert r.returncode == 0, r.stdout[-5000:] + r.stderr[-5000:]
    return BookBuild(ROOT / "_build" / "html", names)


@pytest.fixture(scope="session")
def built_book(book_build) -> Path:
    """The html folder of the session's build of the book (:func:`book_build`)."""
    return book_build.html


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
