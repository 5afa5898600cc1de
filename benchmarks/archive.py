"""Index the mirror's whole archive with geolesson.chips.index_archive: serial, 1 and 2 Dask workers.

    .venv/bin/python benchmarks/archive.py [--runs 3] [--chip-size 256]

Needs the mirror running (`.venv/bin/geolesson mirror start`). The items are every item of
every collection the mirror serves (Sentinel-2 L2A and, where built, Sentinel-1 RTC),
fetched once from its STAC API. Every case runs in a fresh process (cold GDAL caches),
the cases are interleaved, and medians of --runs are printed. Imports and the start of a
LocalCluster happen before the clock starts; the clock covers index_archive alone.

    serial      index_archive(..., workers=0): one process, item after item, no Dask
    dask-1      a LocalCluster of 1 worker process (1 thread): the cost of Dask itself
    dask-2      a LocalCluster of 2 worker processes (1 thread each)
    resume      dask-2 again on a folder where every part is up to date: all skipped
    listing     the floor of a resume: list the folder's parts (glob) and read each footer

Printed: items/s, scaling efficiency (items/s with 2 workers / (2 x items/s with 1)),
peak RSS per worker (MiB, the workers' ru_maxrss), and the resume cost against listing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cases  # benchmarks/cases.py: this folder is on sys.path when a script runs


@dataclass(frozen=True)
class ArchiveCase:
    """One timed configuration: how the archive is indexed, into which folder."""

    #: ``serial``, ``dask-1``, ``dask-2`` (workers), ``resume`` (every part up to date) or
    #: ``listing`` (only list and read the parts' footers)
    case: str
    #: the folder of parts: a fresh one per run, or the last dask-2 run's for resume and listing
    out_dir: str


NAMES = ("serial", "dask-1", "dask-2", "resume", "listing")


def _items(path: str) -> list[dict]:
    return json.loads(Path(path).read_text())


def _peak_worker_rss(client) -> list[float]:
    import resource

    def peak() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB

    return sorted(client.run(peak).values())


def _warm_up() -> None:
    """The imports an index task makes lazily, done before the clock in every process."""
    import geopandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import pyproj  # noqa: F401
    import rasterio  # noqa: F401

    import geolesson.chips  # noqa: F401


def case_archive(case: str, items_path: str, out_dir: str, chip_size: int) -> dict:
    """Index the archive (or list its parts) the ``case`` way, in a fresh process."""
    import resource

    from geolesson.chips import index_archive

    _warm_up()
    items = _items(items_path)
    if case == "listing":
        import pyarrow.parquet as pq

        t0 = time.perf_counter()
        parts = sorted(Path(out_dir).glob("item_id=*/part.parquet"))
        rows = sum(pq.read_metadata(p).num_rows for p in parts)
        return {"seconds": time.perf_counter() - t0, "items": len(parts), "chips": rows}
    if case == "serial":
        t0 = time.perf_counter()
        report = index_archive(items, out_dir, chip_size=chip_size, workers=0, progress=False)
        seconds = time.perf_counter() - t0
        rss = [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]
    else:
        import distributed

        n = 1 if case == "dask-1" else 2
        with distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            client.run(_warm_up)
            t0 = time.perf_counter()
            report = index_archive(items, out_dir, chip_size=chip_size, client=client,
                                   progress=False)
            seconds = time.perf_counter() - t0
            rss = _peak_worker_rss(client)
    if report.failed:
        raise RuntimeError(f"{case}: items failed:\n{report}")
    expect_skipped = case == "resume"
    if bool(report.skipped) != expect_skipped or (expect_skipped and report.indexed):
        raise RuntimeError(f"{case}: unexpected report:\n{report}")
    return {"seconds": seconds, "items": report.items, "chips": report.chips,
            "rss_mib": rss}


CASES = cases.collect(globals())


def run(case: ArchiveCase, items_path: str, chip_size: int) -> dict:
    return cases.run(__file__, "archive", sys.executable, case=case.case, items_path=items_path,
                     out_dir=case.out_dir, chip_size=chip_size)


def fetch_items(path: Path) -> dict:
    from geolesson import sources

    client = sources.open_client("earth-search")
    items = []
    for collection in client.get_collections():
        found = client.search(collections=[collection.id], limit=100).items()
        items += [item.to_dict() for item in found]
    path.write_text(json.dumps(items))
    counts: dict[str, int] = {}
    for d in items:
        counts[d["collection"]] = counts.get(d["collection"], 0) + 1
    return counts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--chip-size", type=int, default=256)
    cases.add_arguments(p)
    args = p.parse_args()
    if cases.dispatch(args, CASES):
        return

    with tempfile.TemporaryDirectory(prefix="geolesson-archive-bench-") as tmp:
        items_path = Path(tmp) / "items.json"
        counts = fetch_items(items_path)
        print(f"archive: {sum(counts.values())} items "
              f"({', '.join(f'{n} {c}' for c, n in sorted(counts.items()))}), "
              f"{args.chip_size}-pixel chips, {os.cpu_count()} cores, {args.runs} runs each")
        results: dict[str, list[dict]] = {c: [] for c in NAMES}
        for i in range(args.runs):
            done = str(Path(tmp) / f"dask-2-{i}")  # every part up to date after the dask-2 run
            for case in [ArchiveCase(c, str(Path(tmp) / f"{c}-{i}")) for c in ("serial", "dask-1", "dask-2")] + [
                    ArchiveCase("resume", done), ArchiveCase("listing", done)]:
                results[case.case].append(run(case, str(items_path), args.chip_size))
        report(results)


def report(results: dict[str, list[dict]]) -> None:
    med = {c: statistics.median(r["seconds"] for r in rs) for c, rs in results.items()}
    items = results["serial"][0]["items"]
    rate = {c: items / med[c] for c in ("serial", "dask-1", "dask-2")}
    print(f"\n{'case':10} {'median s':>9} {'items/s':>8} {'peak RSS MiB per worker':>24}")
    for case in NAMES:
        rss = results[case][0].get("rss_mib")
        rss_text = ", ".join(f"{statistics.median(r['rss_mib'][k] for r in results[case]):.0f}"
                             for k in range(len(rss))) if rss else "-"
        speed = f"{rate[case]:8.2f}" if case in rate else f"{'-':>8}"
        print(f"{case:10} {med[case]:9.2f} {speed} {rss_text:>24}")
    print(f"\nscaling efficiency, 2 workers: {rate['dask-2'] / (2 * rate['dask-1']):.2f} "
          f"(items/s 2 workers / (2 x 1 worker)); 2 workers vs serial: "
          f"{rate['dask-2'] / rate['serial']:.2f}x; Dask overhead, 1 worker vs serial: "
          f"{rate['dask-1'] / rate['serial']:.2f}x")
    print(f"resume with every part up to date: {med['resume']:.2f} s, "
          f"{med['resume'] / med['listing']:.1f}x listing the parts ({med['listing']:.3f} s), "
          f"{med['resume'] / med['dask-2']:.3f}x a full dask-2 run")


if __name__ == "__main__":
    main()
