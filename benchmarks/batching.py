"""Batching Sentinel-1 chips from two UTM zones into DataLoader tensors: geolesson.batching
against torchgeo and xbatcher, over HTTP from the offline mirror.

    python3 benchmarks/batching.py --setup      # once: the peers' venv (see below)
    .venv/bin/python benchmarks/batching.py [--runs 3] [--items-per-zone N]

Needs the mirror running with its sentinel-1-rtc collection (`.venv/bin/geolesson mirror
start`). The peers' cases are in benchmarks/batching_peers.py. The peers (torchgeo 0.8.1,
xbatcher 0.4.0, with torch 2.13.0 CPU) pull Lightning,
timm, kornia and more that geolesson does not need, so they live in their own git-ignored
venv, benchmarks/.venv-batching, made by `--setup` from benchmarks/requirements-batching.txt
(independent of make; it refuses an install that would bring CUDA packages). PyPI's
torchvision build does not import beside the CPU torch ("operator torchvision::nms does not
exist"): the peer cases define its nms/qnms op schemas with torch.library first
(torchgeo's RasterDataset path never calls them).

Data: the items of both UTM zones (Osaka EPSG:32653, Tokyo EPSG:32654; --items-per-zone:
only the first N of each by datetime); their `vv` and `vh` float32 linear gamma0 COGs (nodata -32768). Batches of
16 x (2, 256, 256); an epoch is every full 256-pixel chip of those items once.

Cases, each in a fresh process (cold caches; the same GDAL HTTP options for all), interleaved
over --runs rounds, medians printed; with the default GDAL cache and with GDAL_CACHEMAX=64
(the data no longer fit: decoding dominates):
    ceiling      sequential decode of the same tiles: rasterio reads every vv/vh file whole
    geolesson    geolesson.batching.ChipDataset (index read without geopandas) + collate,
                 DataLoader num_workers 0 and 2, three samplers: random (RandomChipSampler, a
                 full permutation), block-random (RandomBlockBatchSampler: whole COG blocks in
                 a random order) and grid (BlockRowBatchSampler: block order, block rows
                 sharded to the workers)
    torchgeo     RasterDataset (separate_files vv/vh, one CRS: the first file's) +
                 RandomGeoSampler(length = the epoch's chips) / GridGeoSampler(stride 256) +
                 stack_samples, num_workers 0 and 2
    xbatcher     BatchGenerator(input_dims 256 x 256) per item over rioxarray's lazy vv/vh +
                 xbatcher.loaders.torch.MapDataset (grid order), num_workers 0 and 2 (spawn: under
                 fork its workers inherit the GDAL handles rioxarray opened, checked once)
Measured: batches/s of a whole epoch (worker start-up included) and from its first batch on
("steady": what persistent workers give after the first epoch); peak RSS of the case's
process plus its workers (sampled every 20 ms by a process of its own, cases.PeakRSS); HTTP
bytes of the epoch (the mirror's counters) / bytes of the full-resolution COG tiles the chips
cover; CPU seconds of the mirror's file server during the case (it shares this machine's cores
with the loader).

Fidelity (not timed): what torchgeo's reprojection to one CRS does to the second zone
(std and mean of valid linear gamma0 against the same files read natively; the first zone
as the control), how many of its chips hold nodata against the native grid's, whether the
raw -32768 reaches its tensors unmasked, and whether its sampler's seed fixes the batches.

Targets (issue 8): geolesson >= 2.5x torchgeo's random sampler and >= 3x its grid sampler
(0 workers); 2 workers >= 1.6x 0 workers with GDAL_CACHEMAX=64 and never slower than 0
workers otherwise; bytes per epoch <= 1.05x tile bytes; peak RSS <= 0.6x torchgeo's. The
worker and bytes targets are judged on block-random and grid, the samplers that read each
block once; a full permutation sends a block's chips to different batches (and workers), so
its rows show the cost of that, not a target.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cases  # benchmarks/cases.py: this folder is on sys.path when a script runs
from cases import PeakRSS
from peers import PeerVenv

COLLECTION = "sentinel-1-rtc"
BANDS = ("vv", "vh")
NODATA = -32768.0
CHIP = 256
BATCH = 16
SEED = 42
HERE = Path(__file__).resolve().parent
PEERS = PeerVenv(".venv-batching", "requirements-batching.txt", cpu_torch_only=True)
PEER_SCRIPT = HERE / "batching_peers.py"
#: geolesson's samplers: a full permutation (RandomChipSampler), random batches of whole COG
#: blocks (RandomBlockBatchSampler), block order sharded by block row (BlockRowBatchSampler)
GEOLESSON_SAMPLERS = ("random", "block-random", "grid")
CACHES = {"default": None, "64": "64"}  # GDAL_CACHEMAX (MB); None: GDAL's default (5 % of RAM)


# ---------------------------------------------------------------------------------------
# helpers shared by the cases
# ---------------------------------------------------------------------------------------


def load_items(path: str) -> list[dict]:
    return json.loads(Path(path).read_text())


def full_chips(item: dict) -> int:
    height, width = item["properties"]["proj:shape"]
    return (height // CHIP) * (width // CHIP)


def epoch(loader, key: str, rss: PeakRSS, ids=None) -> dict:
    """Iterate ``loader`` once; seconds (all, and from the first batch on: without starting
    the workers), batches, chips, peak RSS, and the first batches' ids."""
    t0 = time.perf_counter()
    batches = chips = 0
    first = []
    t1 = None
    for batch in loader:
        if t1 is None:
            t1 = time.perf_counter()
        batches += 1
        chips += batch[key].shape[0] if isinstance(batch, dict) else batch.shape[0]
        if ids is not None and batches <= 3:
            first.append(ids(batch))
    t2 = time.perf_counter()
    return {"seconds": t2 - t0, "steady_seconds": t2 - t1, "batches": batches, "chips": chips,
            "peak_rss": rss.peak, "first_ids": first}


# ---------------------------------------------------------------------------------------
# cases (each runs in a fresh process: the geolesson venv or the peers' venv)
# ---------------------------------------------------------------------------------------


def case_ceiling(items_path: str, **_) -> dict:
    import rasterio

    items = load_items(items_path)
    with PeakRSS() as rss:
        t0 = time.perf_counter()
        for item in items:
            for band in BANDS:
                with rasterio.open(item["assets"][band]["href"]) as ds:
                    ds.read(1)
        seconds = time.perf_counter() - t0
    chips = sum(full_chips(i) for i in items)
    return {"seconds": seconds, "steady_seconds": seconds, "batches": chips / BATCH, "chips": chips,
            "peak_rss": rss.peak, "first_ids": []}


def case_geolesson(items_path: str, index_path: str, sampler: str, workers: int, **_) -> dict:
    # rasterio before the clock, as the peers' imports bring it: geolesson imports it at the
    # first read, which put 40-50 ms of importing into the timed epoch
    import rasterio  # noqa: F401
    import torch

    from geolesson import batching, chips

    items = load_items(items_path)
    index = chips.read_index(index_path, geometry=False)  # a training process needs no geopandas
    with PeakRSS() as rss:
        dataset = batching.ChipDataset(index, BANDS, items=items)
        if sampler == "random":  # a full permutation of the chips
            order = {"batch_size": BATCH, "sampler": batching.RandomChipSampler(dataset, seed=SEED)}
        elif sampler == "block-random":  # whole blocks in a random order
            order = {"batch_sampler": batching.RandomBlockBatchSampler(index, BATCH, seed=SEED)}
        else:  # block order, block rows sharded to the workers
            order = {"batch_sampler": batching.BlockRowBatchSampler(index, BATCH, num_workers=workers)}
        loader = torch.utils.data.DataLoader(dataset, num_workers=workers, collate_fn=batching.collate, **order)
        return epoch(loader, "image", rss, ids=lambda b: list(b["chip_id"]))


CASES = cases.collect(globals())


@dataclass(frozen=True)
class BatchingCase:
    """One timed configuration of the experiment."""

    #: ``ceiling``, ``geolesson``, ``torchgeo`` or ``xbatcher``
    library: str
    #: the order of the chips: ``sequential`` (ceiling), ``random``, ``block-random``, ``grid``
    sampler: str
    #: DataLoader worker processes
    workers: int
    #: GDAL's block cache: ``default`` (5 % of RAM) or ``64`` (MB), a key of CACHES
    cache: str

    @property
    def peer(self) -> bool:
        """Whether the case runs in the peers' venv (batching_peers.py)."""
        return self.library in ("torchgeo", "xbatcher")

    def torchgeo(self, workers: int | None = None) -> BatchingCase:
        """The torchgeo case this one is compared with (its random or grid sampler)."""
        sampler = "grid" if self.sampler == "grid" else "random"
        return BatchingCase("torchgeo", sampler, self.workers if workers is None else workers, self.cache)

    def with_workers(self, workers: int) -> BatchingCase:
        return BatchingCase(self.library, self.sampler, workers, self.cache)

    def __str__(self) -> str:
        return f"{self.library} {self.sampler} {self.workers} workers, cache {self.cache}"


# ---------------------------------------------------------------------------------------
# the driver (geolesson venv)
# ---------------------------------------------------------------------------------------


class Counters:
    """The mirror's per-file HTTP counters (or a stand-in server's, at ``stats_url``)."""

    def __init__(self, stats_url: str | None):
        self.stats_url = stats_url

    def reset(self) -> None:
        from geolesson import sources

        if self.stats_url is None:
            sources.reset_request_counts()
        else:
            import httpx

            httpx.post(self.stats_url + "/reset", timeout=10).raise_for_status()

    def bytes_of(self, hrefs: list[str]) -> int:
        from geolesson import sources

        if self.stats_url is None:
            files = sources.request_counts()["files"]
        else:
            import httpx

            files = httpx.get(self.stats_url, timeout=10).raise_for_status().json()["files"]
        return sum(v["bytes"] for path, v in files.items() if any(h.endswith("/" + path) for h in hrefs))


class ServerCPU:
    """CPU seconds of the mirror's API/file server process: on one machine it shares the
    cores with the loader, which bounds what DataLoader workers can gain."""

    def __init__(self, pid: int | None):
        import psutil

        self._proc = psutil.Process(pid) if pid else None

    def cpu(self) -> float:
        if self._proc is None:
            return float("nan")
        t = self._proc.cpu_times()
        return t.user + t.system


def select_items(items_json: str | None, per_zone: int) -> list[dict]:
    """Raw item dicts (no pystac migration), found by a STAC search of the mirror's Planetary
    Computer API as chapter 6 does: the first ``per_zone`` by datetime of each CRS (None: all)."""
    if items_json:
        features = json.loads(Path(items_json).read_text())
    else:
        from geolesson import sources

        search = sources.open_client("planetary-computer").search(collections=[COLLECTION])
        features = list(search.items_as_dicts())
    zones: dict[int, list[dict]] = {}
    for f in sorted(features, key=lambda f: (f["properties"]["datetime"], f["id"])):
        zones.setdefault(f["properties"]["proj:epsg"], []).append(f)
    per_zone = per_zone or min(len(v) for v in zones.values())
    if len(zones) < 2 or any(len(v) < per_zone for v in zones.values()):
        raise SystemExit(f"need {per_zone} items in each of two CRSs; found {({k: len(v) for k, v in zones.items()})}")
    return [f for epsg in sorted(zones) for f in zones[epsg][:per_zone]]


def tile_bytes(items: list[dict]) -> int:
    """Bytes of the full-resolution COG tiles (blocks) that the epoch's full chips cover, from
    the TIFF tile byte counts of every vv/vh file."""
    import rasterio

    total = 0
    for item in items:
        for band in BANDS:
            with rasterio.open(item["assets"][band]["href"]) as ds:
                (bh, bw) = ds.block_shapes[0]
                rows, cols = (ds.height // CHIP) * CHIP, (ds.width // CHIP) * CHIP
                total += sum(int(ds.get_tag_item(f"BLOCK_SIZE_{j}_{i}", "TIFF", bidx=1))
                             for i in range(-(-rows // bh)) for j in range(-(-cols // bw)))
    return total


def run(case: str, python: Path, cache: str | None = None, peer: bool = False, **kwargs) -> dict:
    """One case in a fresh process (the peers' cases from batching_peers.py), with GDAL's
    default block cache or ``cache`` MB."""
    return cases.run(PEER_SCRIPT if peer else __file__, case, python, env={"GDAL_CACHEMAX": cache}, **kwargs)


def plan(libs: set[str]) -> list[BatchingCase]:
    """Every timed case, in the order of a round."""
    todo = [BatchingCase("ceiling", "sequential", 0, "default")] if "ceiling" in libs else []
    for cache in CACHES:
        for lib in ("geolesson", "torchgeo"):
            if lib in libs:
                samplers = GEOLESSON_SAMPLERS if lib == "geolesson" else ("random", "grid")
                todo += [BatchingCase(lib, s, w, cache) for s in samplers for w in (0, 2)]
        if "xbatcher" in libs:
            todo += [BatchingCase("xbatcher", "grid", w, cache) for w in (0, 2)]
    return todo


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(timed: list[BatchingCase], results, fidelity, tiles, n_items, runs) -> None:
    keys = ("seconds", "steady_seconds", "batches", "peak_rss", "bytes", "server_cpu")
    med = {c: {k: statistics.median(r[k] for r in results[c]) for k in keys} for c in timed}
    rate = {c: med[c]["batches"] / med[c]["seconds"] for c in timed}
    steady = {c: (med[c]["batches"] - 1) / med[c]["steady_seconds"] for c in timed if med[c]["steady_seconds"]}
    print(f"\n{n_items} Sentinel-1 RTC items (vv + vh) in two UTM zones, batches of {BATCH} x "
          f"({len(BANDS)}, {CHIP}, {CHIP}), median of {runs} fresh processes; "
          f"tile bytes {tiles / 1e6:.1f} MB")
    print("  batch/s: the whole epoch, starting the workers included; steady: from the first batch on;"
          " server s: CPU seconds of the mirror's file server during the case")
    head = (f"  {'library':<10}{'sampler':<13}{'workers':>7}{'cache':>8}{'batches':>8}{'batch/s':>8}"
            f"{'steady':>7}{'x torchgeo':>11}{'x 0 wkrs':>9}{'steady x0':>10}{'RSS MB':>7}{'x tg RSS':>9}"
            f"{'bytes/tiles':>12}{'server s':>9}")
    print(head)
    for c in timed:
        tg, zero = c.torchgeo(), c.with_workers(0)
        vs_tg = f"{rate[c] / rate[tg]:.2f}" if tg in rate and c.library != "torchgeo" else ""
        vs_zero = f"{rate[c] / rate[zero]:.2f}" if c.workers and zero in rate else ""
        st_zero = f"{steady[c] / steady[zero]:.2f}" if c.workers and zero in steady and c in steady else ""
        rss_tg = f"{med[c]['peak_rss'] / med[tg]['peak_rss']:.2f}" if tg in med and c.library != "torchgeo" else ""
        print(f"  {c.library:<10}{c.sampler:<13}{c.workers:>7}{c.cache:>8}{med[c]['batches']:>8.0f}{rate[c]:>8.1f}"
              f"{steady.get(c, float('nan')):>7.1f}{vs_tg:>11}{vs_zero:>9}{st_zero:>10}"
              f"{med[c]['peak_rss'] / 1e6:>7.0f}{rss_tg:>9}{med[c]['bytes'] / tiles:>12.3f}"
              f"{med[c]['server_cpu']:>9.2f}")
    ours = [c for c in timed if c.library == "geolesson"]
    if ours:
        print("\n".join("  " + line for line in _checks(ours, med, rate, steady, results, tiles)))


def _checks(ours, med, rate, steady, results, tiles) -> list[str]:
    """Issue 8's targets. The worker and bytes targets are judged on the samplers that read
    each block once (block-random, grid); the full permutation is reported beside them."""
    def g(sampler: str, workers: int, cache: str) -> BatchingCase:
        return BatchingCase("geolesson", sampler, workers, cache)

    checks = []
    for sampler, target in (("random", 2.5), ("block-random", 2.5), ("grid", 3.0)):
        tg = g(sampler, 0, "default").torchgeo()
        if tg in rate:
            x = rate[g(sampler, 0, "default")] / rate[tg]
            checks.append(f"{sampler} {x:.2f}x torchgeo's {tg.sampler} (0 workers, target >= {target}): "
                          f"{_met(x >= target)}")
    for sampler in GEOLESSON_SAMPLERS:
        x = rate[g(sampler, 2, "64")] / rate[g(sampler, 0, "64")]
        y = steady[g(sampler, 2, "64")] / steady[g(sampler, 0, "64")]
        judged = sampler != "random"
        checks.append(f"{sampler} 2/0 workers with GDAL_CACHEMAX=64 {x:.2f}x, steady {y:.2f}x (target >= 1.6)"
                      + (f": {_met(x >= 1.6)}" if judged else ", not judged: both workers decode each block"))
        x = rate[g(sampler, 2, "default")] / rate[g(sampler, 0, "default")]
        checks.append(f"{sampler} 2/0 workers, default cache {x:.2f}x (target >= 1)"
                      + (f": {_met(x >= 1)}" if judged else ""))
    for label, pick in (("block-random and grid", lambda c: c.sampler != "random"),
                        ("random (permutation)", lambda c: c.sampler == "random")):
        worst = max(med[c]["bytes"] / tiles for c in ours if pick(c))
        checks.append(f"bytes per epoch, {label}, worst case {worst:.3f}x tile bytes (target <= 1.05)"
                      + (f": {_met(worst <= 1.05)}" if label.startswith("block") else ""))
    pairs = [(c, c.torchgeo()) for c in ours]
    ratios = {c: med[c]["peak_rss"] / med[tg]["peak_rss"] for c, tg in pairs if tg in med}
    if ratios:
        worst = max(ratios, key=ratios.get)
        checks.append(f"peak RSS, worst case {ratios[worst]:.2f}x torchgeo's "
                      f"({worst.sampler} {worst.workers} {worst.cache}; "
                      f"target <= 0.6): {_met(ratios[worst] <= 0.6)}")
    for sampler in ("random", "block-random"):
        same = [results[g(sampler, w, "default")][0]["first_ids"] for w in (0, 2)]
        checks.append(f"{sampler}: same seed, same first batches with 0 and 2 workers: {same[0] == same[1]}")
    ceiling = rate.get(BatchingCase("ceiling", "sequential", 0, "default"))
    if ceiling:
        checks.append("grid, 0 workers, default cache: "
                      f"{rate[g('grid', 0, 'default')] / ceiling:.0%} of the sequential-decode ceiling")
    return checks


def _fidelity_report(fidelity) -> None:
    if fidelity:
        print(f"\ntorchgeo fidelity (grid epoch in EPSG:{fidelity['target_epsg']}, the first file's CRS):")
        for epsg, z in fidelity["zones"].items():
            print(f"  EPSG:{epsg} ({'reprojected' if z['reprojected'] else 'native, the control'}): std of valid "
                  f"linear gamma0 {z['std_change']:+.1%}, mean {z['mean_change']:+.1%} against the native files")
        print(f"  chips holding nodata: {fidelity['nodata_chips']} of {fidelity['chips']} (native grid: "
              f"{fidelity['native_nodata_chips']} of {fidelity['native_chips']})")
        print(f"  raw {NODATA:.0f} pixels in its vv tensors, unmasked: {int(fidelity['raw_nodata_pixels'])} "
              f"(minimum value {fidelity['min_value']:.0f})")
        print(f"  the same generator seed gives the same random chips: {fidelity['same_seed_same_chips']}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--setup", action="store_true", help="create the peers' venv and exit")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--items-per-zone", type=int, help="items of each CRS (default: all)")
    p.add_argument("--libs", default="ceiling,geolesson,torchgeo,xbatcher",
                   help="comma-separated subset of ceiling,geolesson,torchgeo,xbatcher")
    p.add_argument("--no-fidelity", action="store_true", help="skip the torchgeo fidelity pass")
    # development against S1-like COGs on a stand-in counting file server, not the mirror
    p.add_argument("--items-json", help=argparse.SUPPRESS)
    p.add_argument("--stats-url", help=argparse.SUPPRESS)
    cases.add_arguments(p)
    args = p.parse_args()
    if cases.dispatch(args, CASES):
        return
    if args.setup:
        PEERS.create()
        return

    from geolesson import sources

    sources.configure_gdal()
    libs = set(args.libs.split(","))
    here = Path(sys.executable)
    # the peers' venv is needed (and checked) only when a peer is benchmarked
    peer = PEERS.existing("run `python3 benchmarks/batching.py --setup`") if libs & {"torchgeo", "xbatcher"} else None
    items = select_items(args.items_json, args.items_per_zone)
    hrefs = [i["assets"][b]["href"] for i in items for b in BANDS]
    counters = Counters(args.stats_url)
    server = ServerCPU(None if args.stats_url else sources.mirror_state(start=False)["api_pid"])
    tiles = tile_bytes(items)
    timed = plan(libs)
    results: dict[BatchingCase, list[dict]] = {c: [] for c in timed}
    failures: dict[BatchingCase, list[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        items_path, index_path = Path(tmp, "items.json"), Path(tmp, "index.parquet")
        items_path.write_text(json.dumps(items))
        if "geolesson" in libs:
            from geolesson import chips

            index = chips.chip_index(items, CHIP)
            chips.write_index(index, index_path)
        for r in range(args.runs):  # interleaved, so a slow spell of the machine hits every case
            for c in timed:
                counters.reset()
                server_cpu = server.cpu()
                try:
                    result = run(c.library, peer if c.peer else here, CACHES[c.cache], peer=c.peer,
                                 items_path=str(items_path), index_path=str(index_path), sampler=c.sampler,
                                 workers=c.workers)
                except RuntimeError as e:
                    if c.library == "geolesson":
                        raise
                    # a peer's failure is a finding
                    failures.setdefault(c, []).append(str(e).strip().splitlines()[-1][:160])
                    print(f"  run {r + 1}: {c}: FAILED", file=sys.stderr)
                    continue
                result["bytes"] = counters.bytes_of(hrefs)
                result["server_cpu"] = server.cpu() - server_cpu
                results[c].append(result)
                print(f"  run {r + 1}: {c}: {result['batches'] / result['seconds']:.1f} batches/s",
                      file=sys.stderr, flush=True)
        fidelity = None if args.no_fidelity or "torchgeo" not in libs else run(
            "torchgeo_fidelity", peer, peer=True, items_path=str(items_path))
        fork = run("xbatcher_fork", peer, peer=True, items_path=str(items_path)) if "xbatcher" in libs else None
    report([c for c in timed if results[c]], results, fidelity, tiles, len(items), args.runs)
    _fidelity_report(fidelity)
    for c, errors in failures.items():
        print(f"  {c}: failed in {len(errors)} of {args.runs} runs: {errors[0]}")
    if fork is not None:
        print("\nxbatcher, 2 workers under fork (DataLoader's default on Linux): "
              + ("ran" if fork["ok"] else f"failed: {fork['error']}"))


if __name__ == "__main__":
    main()
