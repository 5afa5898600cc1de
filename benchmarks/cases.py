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
import itertools
import json
import os
import subprocess
import sys
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


def command(script: str | Path, case: str, python: str | Path, /, env: dict | None = None,
            **kwargs) -> tuple[list[str], dict]:
    """The arguments and environment that run case ``case`` of ``script`` in a fresh
    ``python`` process. ``env``: extra variables (a value None removes one) on top of this
    environment and GDAL's HTTP options, the same for every case, peers included."""
    from geolesson.gdal import GDAL_HTTP_OPTIONS

    full = {**os.environ, **GDAL_HTTP_OPTIONS}
    for key, value in (env or {}).items():
        if value is None:
            full.pop(key, None)
        else:
            full[key] = value
    return [str(python), str(script), "--case", case, "--case-args", json.dumps(kwargs)], full


def run(script: str | Path, case: str, python: str | Path, /, env: dict | None = None, **kwargs) -> dict:
    """Case ``case`` of ``script`` in a fresh ``python`` process (:func:`command`); the dict
    it printed. RuntimeError with the case's output if it fails."""
    args, full = command(script, case, python, env=env, **kwargs)
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
    sampled every ``period`` seconds (bytes): ``peak``, the sum of their RSS, which counts
    twice the pages a forked worker shares with its parent (the libraries, the
    interpreter), and with ``pss=True`` also ``peak_pss``, the sum of their proportional
    set sizes (each shared page split between the processes sharing it: what the tree
    costs the machine), and ``peak_parent`` / ``peak_children`` (RSS). Read inside the
    block, they are the peaks so far.

    The sampler shares the machine with what it measures, so what costs it CPU is done
    seldom: PSS every ``pss_period`` seconds, because reading it
    (``/proc/<pid>/smaps_rollup``) walks the page tables of each process (6.8 ms for a
    430 MiB process with torch loaded); the list of processes every ``tree_period``
    seconds, because finding the children scans every process of the machine (1.2 ms).
    With PSS every 0.1 s and the list every 20 ms, the sampler of a torch process and one
    worker took 0.22-0.24 of a core, a ninth of this 2-core machine, beside the inference
    benchmark's cases. A process that starts between two lists is sampled from the next.

    The sampler is a process of its own (:func:`sample_memory`, with psutil), not a
    thread: a thread here would take the GIL from the threads it measures (the model's,
    a stitcher's, a writer's). Its own memory is left out. Linux only."""

    def __init__(self, period: float = 0.02, pss: bool = False, pss_period: float = 0.5,
                 tree_period: float = 0.5):
        self._period, self._pss = period, pss
        self._pss_every = max(1, round(pss_period / period))
        self._tree_every = max(1, round(tree_period / period))
        self._sampler: subprocess.Popen | None = None
        self._final: dict | None = None

    def __enter__(self) -> PeakRSS:
        code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import cases; "
                f"cases.sample_memory({os.getpid()}, {self._period!r}, {self._pss!r}, {self._pss_every}, "
                f"{self._tree_every})")
        self._sampler = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True)
        self._peaks()  # the first sample is taken
        return self

    def __exit__(self, *exc) -> None:
        self._sampler.stdin.close()  # end of input: the sampler prints its peaks and ends
        out = self._sampler.stdout.read()
        if self._sampler.wait() != 0 or not out.strip():
            raise RuntimeError(f"the memory sampler failed (exit {self._sampler.returncode})")
        self._final = json.loads(out.strip().splitlines()[-1])

    def _peaks(self) -> dict:
        if self._final is not None:
            return self._final
        self._sampler.stdin.write("?\n")
        self._sampler.stdin.flush()
        return json.loads(self._sampler.stdout.readline())

    peak = property(lambda self: self._peaks()["rss"])
    peak_pss = property(lambda self: self._peaks()["pss"])
    peak_parent = property(lambda self: self._peaks()["parent"])
    peak_children = property(lambda self: self._peaks()["children"])


def sample_memory(pid: int, period: float, pss: bool, pss_every: int = 1, tree_every: int = 1) -> None:
    """The sampler process of :class:`PeakRSS`: samples ``pid`` and its descendants (not
    itself) every ``period`` seconds (PSS, with ``pss``, every ``pss_every`` samples; the
    descendants are listed again every ``tree_every`` samples); answers a line on stdin
    with the peaks so far, as a JSON line, and prints them once more and ends when stdin
    closes."""
    import select

    import psutil

    me, parent = os.getpid(), psutil.Process(pid)
    peaks = dict.fromkeys(("rss", "pss", "parent", "children"), 0)
    tree = []
    for sample in itertools.count():
        if sample % tree_every == 0:
            tree = [p for p in [parent, *parent.children(recursive=True)] if p.pid != me]
        rss = total_pss = children = 0
        for p in tree:
            try:
                info = p.memory_full_info() if pss and sample % pss_every == 0 else p.memory_info()
            except psutil.Error:  # a worker that has exited since the list was made
                continue
            rss, total_pss = rss + info.rss, total_pss + getattr(info, "pss", 0)
            if p.pid == pid:
                peaks["parent"] = max(peaks["parent"], info.rss)
            else:
                children += info.rss
        peaks["rss"], peaks["pss"] = max(peaks["rss"], rss), max(peaks["pss"], total_pss)
        peaks["children"] = max(peaks["children"], children)
        if select.select([sys.stdin], [], [], period)[0]:
            line = sys.stdin.readline()
            print(json.dumps(peaks), flush=True)
            if not line:  # stdin closed
                return


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
