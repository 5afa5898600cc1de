"""Build the mirror's data: both collections into a fresh folder, checked in with ``build.json``.

A build writes into a fresh folder inside the mirror home (``.build-<pid>``) and swaps it in
only once complete, so an interrupted build leaves the previous data whole. ``build.json``,
written last, holds the inputs digest and every file's size and SHA-256
(:mod:`geolesson.mirror.layout`); two builds of the same inputs are byte-identical.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from geolesson._home import mirror_home
from geolesson.mirror import layout
from geolesson.mirror.sentinel1.build import build_sentinel1
from geolesson.mirror.sentinel2.build import build_sentinel2
from geolesson.mirror.server import service
from geolesson.mirror.server.lock import lifecycle_lock

# processes per core allowed for --workers: each holds one strip of a scene (well under 1 GB)
WORKERS_PER_CORE = 2


def check_workers(workers: int | None) -> int:
    """The number of simulation processes: ``workers``, or all cores up to 4 when None.

    Raises:
        TypeError: ``workers`` is not an integer.
        ValueError: ``workers`` is outside 1..2 x the cores this process may use.
    """
    cores = len(os.sched_getaffinity(0))
    if workers is None:
        return min(cores, 4)
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)):
        raise TypeError(f"workers={workers!r} must be an integer number of processes (1..{WORKERS_PER_CORE * cores})")
    if not 1 <= workers <= WORKERS_PER_CORE * cores:
        raise ValueError(f"workers={workers} is not allowed: use 1..{WORKERS_PER_CORE * cores} processes "
                         f"({WORKERS_PER_CORE} per core; this machine lets the build use {cores} cores)")
    return int(workers)


def _swap_in(home: Path, new: Path) -> None:
    """Replace ``home``'s files/ and stac/ by ``new``'s. stac/ (with build.json) leaves first and comes
    back last, so at every moment the data counts as built only if all of it is in place."""
    old = home / f".old-{os.getpid()}"
    old.mkdir()
    for name in ("stac", "files"):
        if (home / name).exists():
            (home / name).rename(old / name)
    for name in ("files", "stac"):
        (new / name).rename(home / name)
    new.rmdir()
    shutil.rmtree(old)


def build(workers: int | None = None, force: bool = False, log=print) -> Path:
    """Simulate the scenario into ``mirror_home()``: ``files/`` (COGs) and ``stac/`` (collection, items).

    Items are written with hrefs relative to the file server root; the loader makes them
    absolute with the running server's URL. Data that is up to date and intact is kept
    (unless ``force``); damaged data (a file missing or of the wrong size) is rebuilt. A
    running mirror keeps serving the old data during the build; it is stopped for the swap
    and started again (both said in the log). Returns the mirror home.

    Raises:
        TypeError, ValueError: ``workers`` is not an integer in 1..2 x cores (checked before
            anything is touched).
    """
    workers = check_workers(workers)
    home = mirror_home()
    with lifecycle_lock(home, "build", log):
        layout.remove_leftovers(home)
        problems = layout.data_problems(home)
        if problems == [] and not force:
            log(f"mirror data is up to date in {home}")
            return home
        if problems:
            log(f"the mirror's data in {home} is damaged ({'; '.join(problems[:5])}"
                f"{f'; and {len(problems) - 5} more' if len(problems) > 5 else ''}); rebuilding it")
        new = home / f".build-{os.getpid()}"
        layout.stac_dir(new).mkdir(parents=True)
        t0 = time.perf_counter()
        n_s2, written = build_sentinel2(new, workers, log)
        n_s1, s1_files = build_sentinel1(new, workers, log)
        written.update(s1_files)
        written.update(layout.records(layout.stac_dir(new), new))
        size = sum(r["size"] for r in written.values())
        (new / layout.MANIFEST).write_text(json.dumps({
            "inputs": layout.inputs_digest(), "items": n_s2 + n_s1, "bytes": size,
            "files": dict(sorted(written.items()))}, indent=0))
        _swap_in_stopping_the_mirror(home, new, log)
        log(f"built {n_s2 + n_s1} items, {size / 1e6:.0f} MB of COGs in {time.perf_counter() - t0:.0f} s -> {home}")
    return home


def _swap_in_stopping_the_mirror(home: Path, new: Path, log) -> None:
    running = service.anything_running(home)
    if running:
        log("stopping the running mirror to swap in the new data; it is started again afterwards")
        service.stop(log=log)
    _swap_in(home, new)
    if running:
        service.start(log=log)
