"""The slowest cells of the book on Binder's one CPU: no learner should wait more than 10 s.

    .venv/bin/python benchmarks/cells.py [--chapters book/03_dask_ndvi.md ...] [--runs 3]
                                         [--top 15] [--cpu 0] [--mem-limit 2147483648]

Executes every chapter as a learner's notebook would run (nbclient, a fresh kernel per
chapter and run, cells in order, as *Run All* does) on one CPU: this process, and so the
kernel and everything it starts (chapter 3's measurement runs, Dask workers, DataLoader
workers), is pinned to ``--cpu`` with ``sched_setaffinity`` (what ``taskset -c 0`` does),
and so are the mirror's processes (its API/file server and its PostgreSQL cluster) for the
duration, then given their CPUs back. The kernel gets ``MEM_LIMIT`` (default 2 GiB, what
mybinder.org sets), so chapters that size a demonstration from the memory available size
it as on Binder.

Each cell's wall time is taken from the moment nbclient sends it to the moment its reply
arrives; its CPU time is the user + system seconds the kernel's process tree (with the
children it reaped: Dask and DataLoader workers) and the mirror's processes spent meanwhile,
a second number that a busy shared machine disturbs less than the wall time. With
``--runs N`` every chapter runs N times in fresh kernels and each cell's median is kept.
Prints each chapter's total, then the ``--top`` slowest cells (chapter, cell number,
first line of code, median wall and CPU seconds) and every cell over the 10 s target;
exits 1 when one is over. Run it on a quiet machine (``cat /proc/loadavg``): the numbers
are wall times.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jupytext
import nbclient
import psutil
from memory import mirror_pids, tree  # benchmarks/memory.py: this folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 10.0
BINDER_MEM_LIMIT = 2 * 2**30


def mirror_processes() -> list[psutil.Process]:
    """The mirror's processes: the API/file server and the PostgreSQL cluster, with children."""
    return [p for pid in mirror_pids() for p in tree(pid)]


class Pinned:
    """Pins this process and the mirror's processes to one CPU; restores their CPUs on exit."""

    def __init__(self, cpu: int):
        self.cpu, self.saved = cpu, {}

    def __enter__(self) -> "Pinned":
        for proc in [psutil.Process(), *mirror_processes()]:
            try:
                self.saved[proc.pid] = proc.cpu_affinity()
                proc.cpu_affinity([self.cpu])
            except psutil.Error as error:  # a process gone, or not ours: say so, go on
                print(f"warning: could not pin pid {proc.pid}: {error}", file=sys.stderr)
        return self

    def __exit__(self, *exc) -> None:
        for pid, cpus in self.saved.items():
            try:
                psutil.Process(pid).cpu_affinity(cpus)
            except psutil.Error:
                pass


def cpu_seconds(procs: list[psutil.Process]) -> float:
    """User + system seconds of these processes, with the children each has reaped."""
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.Error:  # ended since it was listed
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def cell_times(chapter: Path, mem_limit: int) -> tuple[dict[int, float], dict[int, float]]:
    """Wall seconds and CPU seconds of each code cell of one run of the chapter in a fresh kernel."""
    nb = jupytext.read(chapter)
    client = nbclient.NotebookClient(nb, timeout=1800, kernel_name="python3",
                                     resources={"metadata": {"path": str(chapter.parent)}})
    os.environ["MEM_LIMIT"] = str(mem_limit)  # the kernel inherits this process's environment
    started: dict[int, tuple[float, float]] = {}
    times: dict[int, float] = {}
    cpu: dict[int, float] = {}

    def used() -> float:
        return cpu_seconds([*tree(client.km.provisioner.pid), *mirror_processes()])

    def before(cell, cell_index):
        started[cell_index] = (time.perf_counter(), used())

    def after(cell, cell_index, execute_reply):
        wall0, cpu0 = started[cell_index]
        times[cell_index] = time.perf_counter() - wall0
        cpu[cell_index] = used() - cpu0

    client.on_cell_execute, client.on_cell_executed = before, after
    client.execute()
    return times, cpu


def first_line(chapter: Path, index: int) -> str:
    source = jupytext.read(chapter).cells[index].source.strip().splitlines()
    code = [s for s in source if s.strip() and not s.lstrip().startswith("#")]
    return (code or source or [""])[0][:70]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chapters", nargs="*", type=Path,
                    default=sorted((ROOT / "book").glob("0*.md")), help="default: every chapter book/0*.md")
    ap.add_argument("--runs", type=int, default=1, help="fresh-kernel runs per chapter (median per cell)")
    ap.add_argument("--top", type=int, default=15, help="how many of the slowest cells to print")
    ap.add_argument("--cpu", type=int, default=0, help="the one CPU everything runs on")
    ap.add_argument("--mem-limit", type=int, default=BINDER_MEM_LIMIT, help="MEM_LIMIT for the kernel, bytes")
    args = ap.parse_args()

    from geolesson import mirror

    mirror.start(log=lambda *_: None)
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; CPU {args.cpu} only "
          f"(kernel and mirror), MEM_LIMIT={args.mem_limit}, {args.runs} run(s) per chapter")
    medians: dict[tuple[str, int], float] = {}
    cpu_medians: dict[tuple[str, int], float] = {}
    with Pinned(args.cpu), tempfile.TemporaryDirectory(prefix="geolesson-cells-") as tmp:
        os.environ["TMPDIR"] = tmp  # the kernels inherit it: what they leave goes with it
        for chapter in args.chapters:
            pairs = [cell_times(chapter, args.mem_limit) for _ in range(args.runs)]
            runs = [wall for wall, _ in pairs]
            per_cell = {i: statistics.median(r[i] for r in runs) for i in runs[0]}
            medians |= {(chapter.stem, i): s for i, s in per_cell.items()}
            cpu_medians |= {(chapter.stem, i): statistics.median(c[i] for _, c in pairs)
                            for i in runs[0]}
            totals = [sum(r.values()) for r in runs]
            print(f"{chapter.stem:<16} {statistics.median(totals):7.1f} s in all "
                  f"(runs: {', '.join(f'{t:.1f}' for t in totals)}); slowest cell "
                  f"{max(per_cell.values()):.1f} s", flush=True)
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"\nthe book in all: {sum(medians.values()):.0f} s of cells")
    print(f"\nthe {args.top} slowest cells (median of {args.runs} run(s); wall, CPU):")
    ranked = sorted(medians.items(), key=lambda kv: -kv[1])
    for (stem, index), seconds in ranked[:args.top]:
        print(f"{seconds:7.1f} s {cpu_medians[stem, index]:6.1f} s CPU  {stem:<16} cell {index:<3} "
              f"{first_line(ROOT / 'book' / f'{stem}.md', index)}")
    over = [(k, s) for k, s in ranked if s > TARGET_S]
    print(f"\ncells over {TARGET_S:.0f} s: {len(over) or 'none'}")
    for (stem, index), seconds in over:
        print(f"  {stem} cell {index}: {seconds:.1f} s")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
