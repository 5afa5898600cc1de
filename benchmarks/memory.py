"""Peak memory of every chapter, as a Binder session would see it (kernel + mirror <= 1.8 GiB).

    .venv/bin/python benchmarks/memory.py [--chapters book/03_dask_ndvi.md ...] [--mem-limit 2147483648]

Executes each chapter in a fresh kernel (nbclient, as the book build does) against the
running mirror (started if it is not) and, every 100 ms, sums the resident set size (RSS,
psutil) of the kernel's process tree (the kernel and every process it starts: chapter 3's
measurement runs, Dask workers) and of the mirror's processes (the API/file server and the
PostgreSQL cluster). The kernel gets MEM_LIMIT (default 2 GiB, what mybinder.org sets), so
chapters that size a demonstration from the memory available size it as on Binder.
Prints one row per chapter: peak MiB of the sum, of the kernel tree and of the mirror, the
wall time, and whether the peak is within the 1.8 GiB budget; exits 1 if one is not.
``--cells`` adds the three cells with the highest peaks (their first line), to find what to fix.
Summed RSS counts pages shared between processes (PostgreSQL's shared buffers, libraries)
once per process, so it errs on the high side.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import jupytext
import nbclient
import psutil

ROOT = Path(__file__).resolve().parents[1]
BUDGET_MIB = 1.8 * 1024
BINDER_MEM_LIMIT = 2 * 2**30
INTERVAL_S = 0.1


def tree(pid: int) -> list[psutil.Process]:
    try:
        proc = psutil.Process(pid)
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def rss_mib(procs: list[psutil.Process]) -> float:
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def mirror_pids() -> list[int]:
    """The API/file server's pid and the PostgreSQL postmaster's (first line of postmaster.pid)."""
    from geolesson._home import read_state

    state = read_state() or {}
    pids = [int(state["api_pid"])] if state.get("api_pid") else []
    pidfile = Path(state.get("pgdata", "")) / "postmaster.pid"
    if pidfile.is_file():
        pids.append(int(pidfile.read_text().split()[0]))
    return pids


class Sampler(threading.Thread):
    """Samples the kernel tree and the mirror every INTERVAL_S; keeps the peaks."""

    def __init__(self, kernel_pid, mirror):
        super().__init__(daemon=True)
        self.kernel_pid, self.mirror = kernel_pid, mirror
        self.peak = self.peak_kernel = self.peak_mirror = 0.0
        self.cell = None  # index of the cell running now (nbclient's on_cell_execute hook)
        self.by_cell: dict[int, float] = {}
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(INTERVAL_S):
            pid = self.kernel_pid()
            kernel = rss_mib(tree(pid)) if pid else 0.0
            mirror = rss_mib([p for m in self.mirror for p in tree(m)])
            self.peak_kernel = max(self.peak_kernel, kernel)
            self.peak_mirror = max(self.peak_mirror, mirror)
            self.peak = max(self.peak, kernel + mirror)
            if self.cell is not None:
                self.by_cell[self.cell] = max(self.by_cell.get(self.cell, 0.0), kernel + mirror)


def measure(chapter: Path, mem_limit: int) -> dict:
    nb = jupytext.read(chapter)
    client = nbclient.NotebookClient(nb, timeout=1800, kernel_name="python3",
                                     resources={"metadata": {"path": str(chapter.parent)}})
    os.environ["MEM_LIMIT"] = str(mem_limit)  # the kernel inherits this process's environment

    def kernel_pid():
        km = client.km
        provisioner = getattr(km, "provisioner", None) if km else None
        return getattr(provisioner, "pid", None) if provisioner else None

    sampler = Sampler(kernel_pid, mirror_pids())
    client.on_cell_execute = lambda cell, cell_index: setattr(sampler, "cell", cell_index)
    sampler.start()
    t0 = time.perf_counter()
    try:
        client.execute()
    finally:
        sampler.stop.set()
        sampler.join()
    top = sorted(sampler.by_cell.items(), key=lambda kv: -kv[1])[:3]
    cells = [(mib, nb.cells[i].source.strip().splitlines()[0][:60] if nb.cells[i].source.strip() else "")
             for i, mib in top]
    return {"peak": sampler.peak, "kernel": sampler.peak_kernel, "mirror": sampler.peak_mirror,
            "wall": time.perf_counter() - t0, "cells": cells}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chapters", nargs="*", type=Path,
                    default=sorted((ROOT / "book").glob("0*.md")), help="default: every chapter book/0*.md")
    ap.add_argument("--mem-limit", type=int, default=BINDER_MEM_LIMIT, help="MEM_LIMIT for the kernel, bytes")
    ap.add_argument("--cells", action="store_true", help="also print the three cells with the highest peaks")
    args = ap.parse_args()

    from geolesson import mirror

    mirror.start(log=lambda *_: None)
    print(f"MEM_LIMIT={args.mem_limit} for the kernels; budget {BUDGET_MIB:.0f} MiB (1.8 GiB); "
          f"RSS sampled every {INTERVAL_S * 1000:.0f} ms")
    print(f"{'chapter':<26}{'peak MiB':>10}{'kernel tree':>13}{'mirror':>9}{'wall s':>9}  within budget")
    over = 0
    for chapter in args.chapters:
        r = measure(chapter.resolve(), args.mem_limit)
        ok = r["peak"] <= BUDGET_MIB
        over += not ok
        print(f"{chapter.stem:<26}{r['peak']:>10.0f}{r['kernel']:>13.0f}{r['mirror']:>9.0f}{r['wall']:>9.0f}  "
              f"{'yes' if ok else 'NO'}", flush=True)
        if args.cells:
            for mib, first_line in r["cells"]:
                print(f"{'':<4}{mib:>8.0f} MiB during: {first_line}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
