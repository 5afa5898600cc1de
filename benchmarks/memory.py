"""Peak memory of every chapter, as a Binder session would see it (kernel + mirror <= 1.8 GiB).

    .venv/bin/python benchmarks/memory.py [--chapters book/03_dask_ndvi.md ...] [--mem-limit 2147483648]
    .venv/bin/python benchmarks/memory.py --lab [--chapters ...]     # JupyterLab + kernel + mirror
    .venv/bin/python benchmarks/memory.py --shared-mirror 30        # one mirror for a room of 30

``--lab`` measures what a learner's Binder or hub session holds: a JupyterLab server (as
tests/book/lab.py starts it: set up by book/tools/setup_lab.sh, under a hub prefix, MEM_LIMIT
set) whose browser (headless Chromium, not counted: it runs on the learner's machine) opens
each chapter and runs *Run All*; sampled are the server's process tree (the server, the
chapter's kernel and what it starts) and the mirror, as resident set size (RSS) and as
proportional set size (PSS, /proc/<pid>/smaps_rollup: shared pages divided among the
processes that share them, which is what one more learner adds to a machine). The budget
is checked on PSS here: a container's memory limit (cgroup) charges a shared page once, as
PSS summed over its processes does, while summed RSS counts the libraries that the kernel,
the server and chapter 6's two DataLoader workers share once per process. It ends with
what each extra learner of a workshop hub costs with a mirror of their own (the lab tree's
peak plus the mirror's) and with one shared mirror (the lab tree's peak alone).

``--shared-mirror N`` measures the shared mirror's side: N threads, each a learner's
kernel, search the STAC API and read COG windows over HTTP at once for a while; printed
are the mirror's peak RSS and PSS, against the same mirror idle.

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


def pss_mib(procs: list[psutil.Process]) -> float:
    """Summed proportional set size (Linux /proc/<pid>/smaps_rollup), MiB."""
    total = 0
    for p in procs:
        try:
            with open(f"/proc/{p.pid}/smaps_rollup") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("Pss:")) * 1024
        except (OSError, StopIteration):
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
    """Samples the kernel tree and the mirror every ``interval`` s; keeps the peaks (RSS, and
    PSS when ``pss``)."""

    def __init__(self, kernel_pid, mirror, interval: float = INTERVAL_S, pss: bool = False):
        super().__init__(daemon=True)
        self.kernel_pid, self.mirror, self.interval, self.pss = kernel_pid, mirror, interval, pss
        self.peak = self.peak_kernel = self.peak_mirror = 0.0
        self.peak_pss = self.peak_kernel_pss = self.peak_mirror_pss = 0.0
        self.cell = None  # index of the cell running now (nbclient's on_cell_execute hook)
        self.by_cell: dict[int, float] = {}
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(self.interval):
            pid = self.kernel_pid()
            kernel_procs = tree(pid) if pid else []
            mirror_procs = [p for m in self.mirror for p in tree(m)]
            kernel, mirror = rss_mib(kernel_procs), rss_mib(mirror_procs)
            self.peak_kernel = max(self.peak_kernel, kernel)
            self.peak_mirror = max(self.peak_mirror, mirror)
            self.peak = max(self.peak, kernel + mirror)
            if self.pss:
                kernel_p, mirror_p = pss_mib(kernel_procs), pss_mib(mirror_procs)
                self.peak_kernel_pss = max(self.peak_kernel_pss, kernel_p)
                self.peak_mirror_pss = max(self.peak_mirror_pss, mirror_p)
                self.peak_pss = max(self.peak_pss, kernel_p + mirror_p)
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


def measure_lab(chapters: list[Path], mem_limit: int) -> int:
    """Each chapter's Run All in JupyterLab: the server's tree and the mirror, RSS and PSS."""
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(ROOT))
    from tests.book.lab import NOTEBOOK, LabServer, launch_browser, open_notebook, run_all

    print(f"JupyterLab server + kernel + mirror, MEM_LIMIT={mem_limit}; budget {BUDGET_MIB:.0f} MiB of "
          "PSS; sampled every 250 ms (RSS; PSS in brackets)")
    print(f"{'chapter':<20}{'peak MiB':>16}{'lab tree':>16}{'mirror':>14}{'Run All s':>11}  PSS within budget")
    over, rows = 0, []
    with LabServer(env={"MEM_LIMIT": str(mem_limit)}) as lab, sync_playwright() as pw:
        browser = launch_browser(pw)
        for chapter in chapters:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            open_notebook(page, lab, str(chapter.resolve().relative_to(ROOT)))
            sampler = Sampler(lambda: lab.process.pid, mirror_pids(), interval=0.25, pss=True)
            sampler.start()
            try:
                done, seconds, _ = run_all(page, timeout_s=1800)
            finally:
                sampler.stop.set()
                sampler.join()
                page.evaluate(f"() => {NOTEBOOK}.sessionContext.shutdown()")
                page.close()
            ok = done is True and sampler.peak_pss <= BUDGET_MIB
            over += not ok
            rows.append(sampler)
            print(f"{chapter.stem:<20}{sampler.peak:>8.0f} [{sampler.peak_pss:>5.0f}]"
                  f"{sampler.peak_kernel:>8.0f} [{sampler.peak_kernel_pss:>5.0f}]"
                  f"{sampler.peak_mirror:>6.0f} [{sampler.peak_mirror_pss:>5.0f}]{seconds:>11.0f}  "
                  f"{'yes' if ok else 'NO' if done is True else 'FAILED: a cell raised'}", flush=True)
        browser.close()
        lab.keep = over > 0  # JupyterLab's log for a chapter that failed
    if rows:
        lab_peak = max(r.peak_kernel_pss for r in rows)
        mirror_peak = max(r.peak_mirror_pss for r in rows)
        print(f"\nper extra learner (PSS, the heaviest chapter): with a mirror of their own "
              f"{max(r.peak_pss for r in rows):.0f} MiB; with one shared mirror {lab_peak:.0f} MiB "
              f"(+ {mirror_peak:.0f} MiB once for the room, see --shared-mirror)")
    return 1 if over else 0


def shared_mirror(learners: int, seconds: float) -> int:
    """The mirror's memory while ``learners`` kernels search and read from it at once."""
    import rasterio
    from rasterio.windows import Window

    from geolesson import sources

    sources.configure_gdal()
    client = sources.open_client("earth-search")
    items = list(client.search(collections=["sentinel-2-l2a"], max_items=40).items())
    pids = mirror_pids()
    idle = Sampler(lambda: None, pids, interval=0.25, pss=True)
    idle.start()
    time.sleep(3)
    idle.stop.set()
    idle.join()
    stop_at = time.monotonic() + seconds
    done = [0] * learners

    def learner(k: int) -> None:
        rng = __import__("random").Random(k)
        while time.monotonic() < stop_at:
            list(client.search(collections=["sentinel-2-l2a"], bbox=[27.7, 35.9, 28.3, 36.5],
                               filter=f"eo:cloud_cover < {rng.randint(1, 90)}", max_items=20).items())
            item = rng.choice(items)
            with rasterio.open(item.assets["red"].href) as src:
                src.read(1, window=Window(rng.randrange(0, max(1, src.width - 512)),
                                          rng.randrange(0, max(1, src.height - 512)), 512, 512))
            done[k] += 1

    busy = Sampler(lambda: None, pids, interval=0.25, pss=True)
    busy.start()
    threads = [threading.Thread(target=learner, args=(k,)) for k in range(learners)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    busy.stop.set()
    busy.join()
    print(f"shared mirror, {learners} learners for {seconds:.0f} s ({sum(done)} search + read rounds): "
          f"peak RSS {busy.peak_mirror:.0f} MiB [PSS {busy.peak_mirror_pss:.0f}], "
          f"idle RSS {idle.peak_mirror:.0f} MiB [PSS {idle.peak_mirror_pss:.0f}]")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chapters", nargs="*", type=Path,
                    default=sorted((ROOT / "book").glob("0*.md")), help="default: every chapter book/0*.md")
    ap.add_argument("--mem-limit", type=int, default=BINDER_MEM_LIMIT, help="MEM_LIMIT for the kernel, bytes")
    ap.add_argument("--cells", action="store_true", help="also print the three cells with the highest peaks")
    ap.add_argument("--lab", action="store_true",
                    help="run each chapter in JupyterLab (server + kernel + mirror), as on Binder")
    ap.add_argument("--shared-mirror", type=int, metavar="N",
                    help="the mirror's memory with N learners using it at once (no chapters)")
    ap.add_argument("--seconds", type=float, default=60, help="how long --shared-mirror runs")
    args = ap.parse_args()

    from geolesson import mirror

    mirror.start(log=lambda *_: None)
    if args.shared_mirror:
        return shared_mirror(args.shared_mirror, args.seconds)
    if args.lab:
        return measure_lab(args.chapters, args.mem_limit)
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
