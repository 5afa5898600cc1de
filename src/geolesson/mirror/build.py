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
import traceback
from pathlib import Path

import numpy as np

from geolesson._home import mirror_home
from geolesson.mirror import layout
from geolesson.mirror.jobs import JobError, is_disk_full, run_jobs
from geolesson.mirror.sentinel1.build import sentinel1_jobs
from geolesson.mirror.sentinel2.build import sentinel2_jobs
from geolesson.mirror.server import service
from geolesson.mirror.server.database import MirrorError
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
    and started again (both said in the log). Both collections' jobs share one pool of
    ``workers`` processes (:func:`geolesson.mirror.jobs.run_jobs`). A build that fails deletes
    its folder and leaves the previous data as they were. Returns the mirror home.

    Raises:
        TypeError, ValueError: ``workers`` is not an integer in 1..2 x cores (checked before
            anything is touched).
        BuildError: the build failed (one line: the disk is full, with the space free and the space
            the last build took; or which job failed and why). The traceback is in
            ``run/build-error.txt``.
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
        try:
            n_items, size, seconds = _build_into(new, workers, log)
        except BaseException as exc:
            free, partial = shutil.disk_usage(home).free, _bytes_under(new)
            shutil.rmtree(new, ignore_errors=True)
            if isinstance(exc, Exception):
                raise _failure(exc, home, disk_full=is_disk_full(exc) or free < DISK_FULL_BYTES,
                               partial=partial) from exc
            raise
        _swap_in_stopping_the_mirror(home, new, log)
        log(f"built {n_items} items, {size / 1e6:.0f} MB of COGs in {seconds:.0f} s -> {home}")
    return home


# Free bytes below which a failed build counts as a full disk: GDAL reports a failed write as
# "Write failed" whatever the cause, and its blocks are at most a few MB.
DISK_FULL_BYTES = 64 * 2**20


class BuildError(MirrorError):
    """A build failed; the message is one line."""


def _build_into(new: Path, workers: int, log) -> tuple[int, int, float]:
    layout.stac_dir(new).mkdir(parents=True)
    t0 = time.perf_counter()
    s2_jobs, s2_finish = sentinel2_jobs(new)
    s1_jobs, s1_finish = sentinel1_jobs(new)
    log(f"simulating Sentinel-2 and Sentinel-1 in {len(s2_jobs) + len(s1_jobs)} jobs (more follow from the "
        f"whole tiles) with {workers} processes into {new} ...")
    run_jobs(s2_jobs + s1_jobs, workers, log)
    n_s2, written = s2_finish()
    n_s1, s1_files = s1_finish()
    written.update(s1_files)
    written.update(layout.records(layout.stac_dir(new), new))
    size = sum(r["size"] for r in written.values())
    (new / layout.MANIFEST).write_text(json.dumps({
        "inputs": layout.inputs_digest(), "items": n_s2 + n_s1, "bytes": size,
        "files": dict(sorted(written.items()))}, indent=0))
    return n_s2 + n_s1, size, time.perf_counter() - t0


def _bytes_under(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def _failure(exc: Exception, home: Path, disk_full: bool, partial: int) -> BuildError:
    """One line for a failed build (a full disk named as such, with the space free and what the build
    had written); the traceback goes to ``run/build-error.txt`` where the disk takes it."""
    details = ""
    try:
        (home / "run").mkdir(exist_ok=True)
        (home / "run" / "build-error.txt").write_text("".join(traceback.format_exception(exc)))
        details = f" (details: {home / 'run' / 'build-error.txt'})"
    except OSError:
        pass  # a full disk may not take even this
    if disk_full or (isinstance(exc, JobError) and exc.disk_full):
        last = layout.read_manifest(home)
        wanted = (f"; the last complete build took {last['bytes'] / 1e6:.0f} MB, which a build needs free "
                  "besides the data it replaces" if last and "bytes" in last else "")
        where = f" while writing {exc.label}" if isinstance(exc, JobError) else ""
        return BuildError(f"mirror build failed: the disk is full: no space left on the device of {home}{where} "
                          f"(the build had written {partial / 1e6:.0f} MB; {shutil.disk_usage(home).free / 1e6:.0f}"
                          f" MB are free now that it is deleted{wanted})")
    reason = str(exc) if isinstance(exc, JobError) else f"{type(exc).__name__}: {str(exc).strip()}"
    reason = reason.strip().splitlines()[0] if reason.strip() else type(exc).__name__
    return BuildError(f"mirror build failed: {reason}; the partial build was deleted{details}")


def _swap_in_stopping_the_mirror(home: Path, new: Path, log) -> None:
    running = service.anything_running(home)
    if running:
        log("stopping the running mirror to swap in the new data; it is started again afterwards")
        service.stop(log=log)
    _swap_in(home, new)
    if running:
        service.start(log=log)
