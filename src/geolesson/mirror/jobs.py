"""The build's worker processes: one pool for both collections' jobs, the longest chains first.

A build is a few dozen jobs (an item, a pass, a block of rows of a whole tile, one asset's
COG). :func:`run_jobs` keeps at most ``workers`` of them running and, whenever a process is
free, starts the ready job with the most work ahead of it (its own plus what waits on it), so
the whole tile, which ends in a chain of conversions, is never left to run alone at the end.
A job's ``then`` runs in the parent with its result and returns the jobs it made ready.

Faults end the build, not the machine: the first failing job stops the others at once (the
running ones are killed, the queued ones never start) and is raised as a :class:`JobError`
whose message is one line. On Linux every worker asks the kernel to kill it when the build
process dies (``prctl(PR_SET_PDEATHSIG, SIGKILL)``), so a SIGKILLed build leaves no worker
behind. Elsewhere (macOS, Windows) there is no such call: a worker of a killed build finishes
its job and then exits when it finds the build gone, and the next ``geolesson mirror``
command deletes what it left in the build folder.
"""

from __future__ import annotations

import ctypes
import errno
import heapq
import itertools
import multiprocessing
import os
import signal
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from geolesson.mirror.server.database import MirrorError

# <sys/prctl.h>
PR_SET_PDEATHSIG = 1


class JobError(MirrorError):
    """A build job failed: ``label`` says which, ``reason`` why (one line); ``disk_full`` is True when
    the cause was a full disk (``ENOSPC``, or GDAL's "No space left on device")."""

    def __init__(self, label: str, reason: str, disk_full: bool = False):
        super().__init__(label, reason, disk_full)
        self.label, self.reason, self.disk_full = label, reason, disk_full

    def __str__(self) -> str:
        return f"{self.label}: {self.reason}"


@dataclass(frozen=True)
class Job:
    """One unit of a build: ``run(*args)`` in a worker process (``run`` a module-level function,
    ``args`` picklable). ``cost`` is its estimated CPU seconds, ``after`` the estimated seconds of
    the longest chain of jobs that waits on it (they order the queue); ``then(result)``, called in
    the build process, returns the jobs its result made ready; ``label`` names what it makes."""

    label: str
    cost: float
    run: Callable
    args: tuple = ()
    then: Callable[[Any], Iterable["Job"]] | None = None
    after: float = 0.0


def die_with_parent(parent: int) -> None:
    """On Linux, be killed (SIGKILL) when the process ``parent`` that started this one exits; exit
    at once if it already has (it may die before the request is made)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:
        os._exit(1)


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` or any exception it was raised from or during is a full disk: an ``OSError``
    with ``errno.ENOSPC`` (Python's writes), or a message of GDAL's saying so (its writes)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return True
        if "No space left on device" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def run_job(label: str, run: Callable, args: tuple) -> Any:
    """In a worker: ``run(*args)``; any error comes back as a :class:`JobError` (always picklable,
    whatever library raised it; one line, with the last line the job printed to stderr, where
    GDAL and libtiff print their causes: their exception says only "Write failed" where they
    printed "No space left on device"). On Linux the job's stderr is held back in memory and
    printed only if the job succeeds."""
    held = os.memfd_create("job-stderr") if hasattr(os, "memfd_create") else None
    if held is not None:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(held, 2)
    failed = True
    try:
        result = run(*args)
        failed = False
        return result
    except Exception as exc:
        printed = _printed(held)
        first = _first_line(str(exc))
        reason = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
        if printed:
            reason += f" ({printed[-1]})"
        disk_full = is_disk_full(exc) or any("No space left on device" in line for line in printed)
        raise JobError(label, reason, disk_full) from None
    finally:
        if held is not None:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if not failed:
                for line in _printed(held):
                    print(line, file=sys.stderr)
            os.close(held)


def _printed(fd: int | None) -> list[str]:
    """The non-empty lines written to the memory file ``fd``."""
    if fd is None:
        return []
    sys.stderr.flush()
    os.lseek(fd, 0, os.SEEK_SET)
    with os.fdopen(os.dup(fd), "rb") as f:
        return [line.strip() for line in f.read().decode(errors="replace").splitlines() if line.strip()]


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0].strip() if text.strip() else ""


def run_jobs(jobs: Iterable[Job], workers: int, log=print, every: int = 12) -> None:
    """Run ``jobs`` (and the jobs their ``then`` returns) in ``workers`` spawned processes, the ready
    job with the most work ahead of it (``cost + after``; ties in the given order) first; log every
    ``every`` finished jobs.

    Raises:
        JobError: a job failed; the others were stopped and no worker is left (so too on any other
            error: a ``then`` raising, a worker killed or out of memory: ``BrokenProcessPool``).
    """
    order = itertools.count()
    ready: list[tuple[float, int, Job]] = []

    def queue(new: Iterable[Job]) -> None:
        for job in new:
            heapq.heappush(ready, (-(job.cost + job.after), next(order), job))

    queue(jobs)
    total, done, t0 = len(ready), 0, time.perf_counter()
    theirs = set(multiprocessing.active_children())
    # spawn: no inherited lock descriptor or GDAL state in the workers
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=die_with_parent, initargs=(os.getpid(),))
    running: dict = {}
    try:
        while ready or running:
            while ready and len(running) < workers:
                job = heapq.heappop(ready)[2]
                running[pool.submit(run_job, job.label, job.run, job.args)] = job
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in sorted(finished, key=lambda f: running[f].label):
                job = running.pop(future)
                result = future.result()
                if job.then is not None:
                    new = list(job.then(result))
                    total += len(new)
                    queue(new)
                done += 1
                if done % every == 0 or (not ready and not running):
                    log(f"  {done}/{total} jobs done ({time.perf_counter() - t0:.0f} s)")
    except BaseException:
        # stop now: a running job of a whole tile would otherwise go on for minutes
        for process in set(multiprocessing.active_children()) - theirs:
            process.kill()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
