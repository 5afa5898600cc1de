"""Fresh-process cases, shared by the benchmarks: each case runs in a new Python process.

A script names its cases ``case_<name>(**kwargs) -> dict`` and calls :func:`dispatch` first
in ``main``; :func:`run` executes one case as ``python script --case <name> --case-args
<json>`` in a new process (cold caches, its own peak RSS) with GDAL's HTTP options in its
environment, and returns the JSON dict the case printed last. Each benchmark describes the
cases it times with a frozen dataclass of its own (``BatchingCase``, ``ChipsCase``, ...),
whose fields are the experiment's parameters; results are keyed by those cases.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import threading
from pathlib import Path


def collect(namespace: dict) -> dict:
    """``{name: fn}`` of the ``case_<name>`` functions in a module's ``globals()``."""
    return {name[len("case_"):]: fn for name, fn in namespace.items() if name.startswith("case_")}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The hidden ``--case`` / ``--case-args`` options :func:`run` passes."""
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--case-args", help=argparse.SUPPRESS)


def dispatch(args: argparse.Namespace, cases: dict) -> bool:
    """Run the case ``args`` name, print its result as JSON; False when there is none."""
    if not args.case:
        return False
    print(json.dumps(cases[args.case](**json.loads(args.case_args or "{}"))))
    return True


def run(script: str | Path, case: str, python: str | Path, /, env: dict | None = None, **kwargs) -> dict:
    """Case ``case`` of ``script`` in a fresh ``python`` process. ``env``: extra variables
    (a value None removes one) on top of this environment and GDAL's HTTP options, the same
    for every case, peers included. RuntimeError with the case's output if it fails."""
    from geolesson.gdal import GDAL_HTTP_OPTIONS

    full = {**os.environ, **GDAL_HTTP_OPTIONS}
    for key, value in (env or {}).items():
        if value is None:
            full.pop(key, None)
        else:
            full[key] = value
    args = [str(python), str(script), "--case", case, "--case-args", json.dumps(kwargs)]
    done = subprocess.run(args, capture_output=True, text=True, env=full, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"case {case} {kwargs} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def peak_rss_mib() -> float:
    """This process's peak resident memory (``VmHWM``), MiB."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


class PeakRSS:
    """Peak resident memory of this process plus all its children (DataLoader workers),
    sampled by a background thread every ``period`` seconds (bytes): ``peak``, the sum of
    their RSS, which counts twice the pages a forked worker shares with its parent (the
    libraries, the interpreter), and with ``pss=True`` also ``peak_pss``, the sum of their
    proportional set sizes (each shared page split between the processes sharing it:
    what the tree costs the machine), and ``peak_parent`` / ``peak_children`` (RSS)."""

    def __init__(self, period: float = 0.02, pss: bool = False):
        import psutil

        self._proc, self._period, self._pss = psutil.Process(), period, pss
        self.peak = self.peak_pss = self.peak_parent = self.peak_children = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            rss, pss, children = 0, 0, 0
            for p in [self._proc, *self._proc.children(recursive=True)]:
                try:
                    info = p.memory_full_info() if self._pss else p.memory_info()
                except psutil.Error:  # a worker that just exited
                    continue
                rss += info.rss
                pss += getattr(info, "pss", 0)
                if p is self._proc:
                    self.peak_parent = max(self.peak_parent, info.rss)
                else:
                    children += info.rss
            self.peak, self.peak_pss = max(self.peak, rss), max(self.peak_pss, pss)
            self.peak_children = max(self.peak_children, children)
            self._stop.wait(self._period)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


class CpuSeconds:
    """CPU seconds (user + system) spent while the block runs: ``process`` by this process
    (all its threads: torch, GDAL, a writer thread), ``children`` by its child processes
    that ended inside the block (DataLoader workers, which the loader joins when it is
    exhausted) and ``others`` by the processes ``pids`` names (e.g. the mirror's web app,
    which serves the COG reads: its CPU is part of what reading costs this machine).
    ``total`` sums them; divided by the cores, it is the shortest wall time the work could
    take on this machine if every core were busy all along (``os.sched_getaffinity``)."""

    def __init__(self, pids: tuple[int, ...] = ()):
        import psutil

        self._others = [psutil.Process(pid) for pid in pids]
        self.process = self.children = self.others = 0.0

    @staticmethod
    def _usage(who: int) -> float:
        import resource

        u = resource.getrusage(who)
        return u.ru_utime + u.ru_stime

    def _other_seconds(self) -> float:
        return sum(t.user + t.system for t in (p.cpu_times() for p in self._others))

    def __enter__(self) -> CpuSeconds:
        import resource

        self._start = (self._usage(resource.RUSAGE_SELF), self._usage(resource.RUSAGE_CHILDREN),
                       self._other_seconds())
        return self

    def __exit__(self, *exc) -> None:
        import resource

        end = (self._usage(resource.RUSAGE_SELF), self._usage(resource.RUSAGE_CHILDREN),
               self._other_seconds())
        self.process, self.children, self.others = (b - a for a, b in zip(self._start, end))

    @property
    def total(self) -> float:
        return self.process + self.children + self.others
