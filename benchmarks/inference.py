"""End-to-end inference on the full-size 10980 x 10980 item, read from the mirror over HTTP.

    .venv/bin/python benchmarks/inference.py [--runs 3] [--chip-rows N] [--chip 128] [--overlap 32]
                                             [--workers 1] [--output float32|uint8|mask]
                                             [--allocator default|glibc-tunables|torch-thp]
    .venv/bin/python benchmarks/inference.py --setup     # the peers' venvs, once
    .venv/bin/python benchmarks/inference.py --peers [--runs 3] [--chip-rows N]

Cases, each run in a fresh process (cold GDAL cache, own peak RSS), medians printed:
    read      ChipDataset + DataLoader (--workers worker processes) over an overlap_grid of
              the item (red, nir, swir22), Normalize included: the chip-read rate alone
    forward   the model's forward pass alone, on random batches of the same shape
    forward-beside-read
              the same with end2end's torch threads (--threads), while the read case runs
              in another process: how fast the model can be when it shares the machine
              with the reading, as it does in end2end. With end2end's COG conversion, which
              can only start after the last forward pass, it bounds end2end from below on
              this machine, however well the stages overlap
    end2end   model.predict (reading in --workers workers) -> Stitcher -> write_cog
              (a writer thread, then GDAL's COG driver), with the time of each stage:
              read wait (the model's thread between its forward passes: waiting for a
              batch of chips, mostly), forward (the model's thread), forward cpu (that
              thread's CPU time in its forward passes: below forward when it waited for a
              core; the model's own cost with --threads 1, part of it with more), stitch
              wait (the stitcher waiting for predictions), stitch (blend and accumulate),
              write (the writer thread's busy time), write wait (the stitcher waiting for
              the writer) and cog (overviews and compression). The model's, the stitcher's and the
              writer's threads overlap: the stages do not add up to the whole
    stitch    write_cog alone (Stitcher, writer thread, COG conversion) over the same chips,
              each given the same constant probability: no reading, no model. A constant
              compresses best, so this is the least the stage can cost
Each run takes every case once, in the order above, before the next run starts: the host's
speed drifts over minutes (the same end2end took 14.3 s and 17.5 s ten minutes apart), and
the medians of cases measured side by side divide into ratios that drift less. From the
CPU time of the stages measured alone (read, the model beside a read at end2end's --threads,
stitch) the summary bounds end2end from below on this machine's cores: however well they
overlap, the stages cannot take less than their CPU time shared out over the cores.
The model is chapter 7's BurnNet (3 convolutions, width 8) with seeded random weights: the
speed does not depend on what it learned. --chip-rows limits the grid to its first N chip
rows (a band of the scene as wide as the item) for a quicker run; the stitcher's memory
depends on the width, not the number of rows, so peak RSS is reported for 1/4 of the rows
and for all of them (end2end-quarter vs end2end) to show it does not grow with the scene.
--peers runs ours with the uniform window (a plain mean, which both peers can do) against
Raster Vision 0.31 and geoai-py (benchmarks/inference_peers.py, in their own venvs) on the
same scene, model, weights and chips, and compares the stitched probabilities pixel by pixel.
Its summary bounds the ratio from ours' CPU time in the same runs: ours cannot take less
than its work shared out over this machine's cores.
Peak RSS is the whole process tree's (the process and its DataLoader workers, sampled every
20 ms by a process of its own, cases.PeakRSS), which counts twice the pages a forked worker
shares with its parent; peak PSS (each shared page split between its processes, sampled every
500 ms, which keeps the sampler near a twentieth of a core) is what the tree costs the
machine. The quarter of the rows is always run, so that the flatness of both is printed.
Speed depends on the allocator (model.predict's docstring): by default glibc returns the model's freed layer
outputs (8 MiB each for a batch of 16 chips of 128 px through 8 channels) to the system after
every batch, and the next batch takes fresh pages. --allocator runs every case, ours and the
peers', with an allocator setting in the environment: glibc-tunables (GLIBC_TUNABLES: blocks
under 32 MiB from the heap, up to 128 MiB of free memory kept, so each batch reuses the
last one's pages) or torch-thp (THP_MEM_ALLOC_ENABLE=1: PyTorch's tensors of 2 MiB or more
on transparent huge pages of their own); default unsets both. Targets (issue 23): end2end
>= 0.8 x min(read, forward) chips/s; peak RSS <= 1 GiB, flat from a quarter of the rows to
all of them; ours >= 2 x the faster peer's chips/s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cases  # benchmarks/cases.py: this folder is on sys.path when a script runs
from cases import CpuSeconds, PeakRSS
from peers import PeerVenv

BANDS = ("red", "nir", "swir22")
BATCH = 16


def burnnet(bands: int = 3, width: int = 8):
    """Chapter 7's BurnNet, as the chapter writes it, with seeded weights: the weights in
    PyTorch's default layout and the input made channels-last in ``forward``."""
    import torch

    class BurnNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.Sequential(
                torch.nn.Conv2d(bands, width, 3, padding=1), torch.nn.ReLU(True),
                torch.nn.Conv2d(width, width, 3, padding=1), torch.nn.ReLU(True),
                torch.nn.Conv2d(width, 1, 1))

        def forward(self, x):
            return self.layers(x.contiguous(memory_format=torch.channels_last))

    torch.manual_seed(0)
    return BurnNet().eval()


def full_size_item():
    from geolesson import select, sources

    client = sources.open_client("earth-search")
    items = client.search(collections=["sentinel-2-l2a"],
                          datetime="2023-06-01/2023-09-30").item_collection()
    return select.largest_clearest(items)


@dataclass(frozen=True)
class InferenceCase:
    """One timed configuration: the stage measured, over how many chip rows (None: all)."""

    #: the name it is reported under (``end2end-quarter`` runs ``end2end`` on 1/4 of the rows)
    name: str
    #: ``read``, ``forward``, ``forward-beside-read``, ``end2end`` or ``stitch``
    stage: str
    chip_rows: int | None


class ForwardTimer:
    """Times a model's forward passes with forward hooks, so the model stays the
    ``torch.nn.Module`` that ``model.predict`` takes: ``seconds`` inside them, ``cpu`` the
    CPU time inside them of the thread that calls the model (with one torch thread,
    end2end's default ``--threads 1``, what the passes cost apart from waiting for a core;
    with more, the other threads' share is not counted), ``between`` from the end of one to
    the start of the next (in ``model.predict``'s thread: waiting for the next batch, the
    sigmoid, handing the probabilities on)."""

    def __init__(self, net):
        self.seconds, self.cpu, self.between, self._t0, self._t1 = 0.0, 0.0, 0.0, 0.0, None
        self._c0 = 0.0
        net.register_forward_pre_hook(self._start)
        net.register_forward_hook(self._stop)

    def _start(self, module, inputs):
        self._t0, self._c0 = time.perf_counter(), time.thread_time()
        if self._t1 is not None:
            self.between += self._t0 - self._t1

    def _stop(self, module, inputs, output):
        self._t1 = time.perf_counter()
        self.seconds += self._t1 - self._t0
        self.cpu += time.thread_time() - self._c0


def case_inference(case: str, chip: int, overlap: int, chip_rows: int | None, workers: int,
                   output: str, blend: str = "linear", keep: str | None = None,
                   threads: int = 2, passes: int = 1, ready: str | None = None) -> dict:
    """One stage over the item's overlap grid (in a fresh process). ``passes``: how often
    the read case reads the grid; ``ready``: a file the read case creates once it reads."""
    import torch
    from torch.utils.data import DataLoader

    from geolesson import batching, sources, stitching
    from geolesson import model as glmodel

    sources.configure_gdal()
    torch.set_num_threads(threads)
    item = full_size_item()
    grid = stitching.overlap_grid(item, chip, overlap)
    if chip_rows is not None:
        rows = sorted(set(grid.row))[:chip_rows]
        grid = grid[grid.row.isin(rows)]
    stats = batching.BandStatistics(BANDS, STATS_MEAN, STATS_STD, (1, 1, 1),
                                    (False, False, False), 1)
    dataset = batching.ChipDataset(grid, BANDS, items=[item], transform=batching.Normalize(stats, fill=0.0))
    net = burnnet()
    stages, elapsed = {}, None
    with PeakRSS(pss=True) as peak, CpuSeconds(mirror_pids()) as cpu:
        t0 = time.perf_counter()
        if case == "read":
            for _ in range(passes):
                for _ in DataLoader(dataset, batch_size=BATCH, collate_fn=batching.collate,
                                    num_workers=workers):
                    if ready:  # the first batch is read: signal it, once
                        Path(ready).touch()
                        ready = None
        elif case == "forward":
            forward_passes(net, len(grid), chip)
        elif case == "stitch":
            write_constant(dataset, item, output, overlap, blend)
        elif case == "forward-beside-read":
            with ReadBeside(chip, overlap, workers, output) as beside:
                t0 = time.perf_counter()  # from the read's first batch on
                forward_passes(net, len(grid), chip)
                elapsed = time.perf_counter() - t0
                beside.check_still_reading()
        else:
            timer = ForwardTimer(net)
            with tempfile.TemporaryDirectory() as tmp:
                done = stitching.write_cog(
                    glmodel.predict(net, dataset, batch_size=BATCH, num_workers=workers),
                    item, Path(keep or tmp) / "prediction.tif", ramp=overlap, output=output,
                    blend=blend)
            seconds = done["seconds"]
            stages = {"read_wait": timer.between, "forward": timer.seconds, "forward_cpu": timer.cpu,
                      "stitch_wait": seconds["wait"],
                      **{k: seconds[k] for k in ("stitch", "write", "write_wait", "cog")}}
        seconds = time.perf_counter() - t0 if elapsed is None else elapsed
    return {"case": case, "chips": len(grid), "seconds": seconds,
            "chips_per_s": len(grid) / seconds, "peak_rss_mib": peak.peak / 2**20,
            "peak_pss_mib": peak.peak_pss / 2**20, "peak_parent_mib": peak.peak_parent / 2**20,
            "peak_workers_mib": peak.peak_children / 2**20, "cpu_process": cpu.process,
            "cpu_workers": cpu.children, "cpu_mirror": cpu.others, "cpu_total": cpu.total, **stages}


def write_constant(dataset, item, output: str, overlap: int, blend: str) -> None:
    """``write_cog`` over the dataset's chips, each predicted as the constant 0.5."""
    import numpy as np

    from geolesson import stitching

    constant = {}  # one array per chip shape

    def predictions():
        for row in dataset.rows():
            shape = (1, row["height"], row["width"])
            yield row, constant.setdefault(shape, np.full(shape, 0.5, dtype=np.float32))

    with tempfile.TemporaryDirectory() as tmp:
        stitching.write_cog(predictions(), item,
                            Path(tmp) / "prediction.tif", ramp=overlap, output=output, blend=blend)


def forward_passes(net, chips: int, chip: int) -> None:
    """The model's forward pass over ``chips`` chips, in batches of random input."""
    import torch

    x = torch.randn(BATCH, len(BANDS), chip, chip)
    with torch.no_grad():
        for _ in range(0, chips, BATCH):
            net(x)


class ReadBeside:
    """The read case over the whole item (two passes), in a process of its own, for as long
    as the block runs: what the model's process shares the machine with in end2end. The
    block starts once the read has its first batch."""

    def __init__(self, chip: int, overlap: int, workers: int, output: str):
        self.args = dict(chip=chip, overlap=overlap, chip_rows=None, workers=workers,
                         output=output, passes=2)

    def __enter__(self):
        import subprocess

        self._tmp = tempfile.TemporaryDirectory()
        self._ready = Path(self._tmp.name) / "reading"
        args, env = cases.command(__file__, "inference", sys.executable, case="read",
                                  ready=str(self._ready), **self.args)
        self._process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL)
        while not self._ready.exists():
            if self._process.poll() is not None:
                raise RuntimeError(f"the read beside the model ended with {self._process.returncode} "
                                   "before its first batch")
            time.sleep(0.05)
        return self

    def check_still_reading(self) -> None:
        """RuntimeError if the read ended before the timed block did."""
        if self._process.poll() is not None:
            raise RuntimeError("the read beside the model ended before the model did: the time "
                               "measured was not all beside a read")

    def __exit__(self, *exc):
        self._process.kill()
        self._process.wait()
        self._tmp.cleanup()


def mirror_pids() -> tuple[int, ...]:
    """The mirror's web app, which serves the chips' COG reads (none in live mode)."""
    from geolesson._home import read_state

    state = read_state() or {}
    return (state["api_pid"],) if state.get("api_pid") else ()


MEMORY_KEYS = ("peak_rss_mib", "peak_pss_mib", "peak_parent_mib", "peak_workers_mib")
CPU_KEYS = ("cpu_process", "cpu_workers", "cpu_mirror", "cpu_total")
CASES = cases.collect(globals())
STATS_MEAN, STATS_STD = (0.06, 0.2, 0.12), (0.03, 0.08, 0.05)
#: --allocator: the variables each case runs with (None: unset, whatever the caller's shell has)
ALLOCATORS = {
    "default": {"GLIBC_TUNABLES": None, "THP_MEM_ALLOC_ENABLE": None},
    "glibc-tunables": {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=33554432:"
                                         "glibc.malloc.trim_threshold=134217728",
                       "THP_MEM_ALLOC_ENABLE": None},
    "torch-thp": {"GLIBC_TUNABLES": None, "THP_MEM_ALLOC_ENABLE": "1"},
}
PEERS = {"raster-vision": PeerVenv(".venv-inference-rv", "requirements-inference-rv.txt",
                                   cpu_torch_only=True),
         "geoai": PeerVenv(".venv-inference-geoai", "requirements-inference-geoai.txt",
                           cpu_torch_only=True)}


def peer_inputs(folder: Path, chip: int, overlap: int, chip_rows: int | None) -> tuple[str, dict]:
    """The peers' inputs, written into ``folder``: a VRT of the item's three bands on the 10 m
    grid (swir22 repeated 2 x 2 by nearest neighbour, as ChipDataset reads it) and the
    network's weights, with the reading arithmetic the wrapped model applies. With
    ``chip_rows``, the VRT is the band of the item those chip rows cover (as wide as it)."""
    import torch

    from geolesson.grid import ItemGrid
    from geolesson.items import item_dict

    item = item_dict(full_size_item())
    grid = ItemGrid.from_item(item, "red")
    height, width = grid.shape
    t = grid.transform
    if chip_rows is not None:
        height = min(height, (chip_rows - 1) * (chip - overlap) + chip)
    bands = []
    for i, key in enumerate(BANDS, start=1):
        asset = item["assets"][key]
        h, w = asset["proj:shape"]
        k = width // w  # 1 for 10 m bands, 2 for 20 m
        h = height // k
        bands.append(f"""  <VRTRasterBand dataType="UInt16" band="{i}">
    <SimpleSource resampling="nearest">
      <SourceFilename relativeToVRT="0">/vsicurl/{asset["href"]}</SourceFilename>
      <SourceBand>1</SourceBand>
      <SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>
      <DstRect xOff="0" yOff="0" xSize="{width}" ySize="{height}"/>
    </SimpleSource>
  </VRTRasterBand>""")
    vrt = folder / "scene.vrt"
    vrt.write_text(f"""<VRTDataset rasterXSize="{width}" rasterYSize="{height}">
  <SRS>EPSG:{grid.epsg}</SRS>
  <GeoTransform>{t.c}, {t.a}, {t.b}, {t.f}, {t.d}, {t.e}</GeoTransform>
{chr(10).join(bands)}
</VRTDataset>
""")
    weights = folder / "burnnet.pt"
    torch.save(burnnet().state_dict(), weights)
    raster = [item["assets"][k]["raster:bands"][0] for k in BANDS]
    model = {"weights": str(weights), "scale": [r["scale"] for r in raster],
             "offset": [r["offset"] for r in raster], "mean": list(STATS_MEAN),
             "std": list(STATS_STD), "nodata": float(raster[0]["nodata"])}
    return str(vrt), model


def agreement(ours: Path, theirs: Path, band: int, chip: int, overlap: int) -> dict:
    """Pixel-by-pixel difference of two stitched probability rasters over the region both
    cover with the same chips: a peer's sliding windows (no padding) stop at the last whole
    stride, where overlap_grid adds one more chip aligned with the item's edge, so rows and
    columns from the last whole stride's start on are left out."""
    import numpy as np
    import rasterio

    with rasterio.open(ours) as a, rasterio.open(theirs) as b:
        height, width = b.height, b.width  # a peer given a band of the item has its height
        stride = chip - overlap
        edge_r = ((height - chip) // stride) * stride
        edge_c = ((width - chip) // stride) * stride
        worst, within, total = 0.0, 0, 0
        for r0 in range(0, edge_r, 1024):
            window = rasterio.windows.Window(0, r0, edge_c, min(1024, edge_r - r0))
            x, y = a.read(1, window=window), b.read(band, window=window).astype(np.float32)
            diff = np.abs(x - y)
            worst = max(worst, float(np.nanmax(diff)))
            within += int((diff <= 1e-5).sum())
            total += diff.size
    return {"max_abs_diff": worst, "share_within_1e-5": within / total,
            "compared": f"rows and columns [0, {edge_r}) x [0, {edge_c})"}


def compare_peers(args, env: dict) -> None:
    """Ours (uniform blend, the peers' kind of averaging) against each peer on the same
    scene, model and chips, every process with the variables ``env``: medians of fresh
    processes, then the outputs' agreement."""
    # beside the benchmark (the outputs are 0.5 GB each); git-ignored, should a killed run leave it
    with tempfile.TemporaryDirectory(prefix=".peers-", dir=Path(__file__).parent) as tmp:
        tmp = Path(tmp)
        vrt, model = peer_inputs(tmp, args.chip, args.overlap, args.chip_rows)
        ours_dir = tmp / "ours"
        ours_dir.mkdir()
        pythons = {name: venv.existing("run benchmarks/inference.py --setup") for name, venv in PEERS.items()}
        rows = {name: [] for name in ("geolesson (uniform)", *PEERS)}
        for _ in range(args.runs):  # ours and each peer once per round, as main() does
            rows["geolesson (uniform)"].append(cases.run(
                __file__, "inference", sys.executable, env=env, case="end2end", chip=args.chip,
                overlap=args.overlap, chip_rows=args.chip_rows, workers=args.workers, output="float32",
                blend="uniform", keep=str(ours_dir), threads=args.threads))
            for name, python in pythons.items():
                rows[name].append(cases.run(
                    Path(__file__).parent / "inference_peers.py", name.replace("-", "_"), python, env=env,
                    vrt=vrt, out=str(tmp / name), chip=args.chip, overlap=args.overlap,
                    workers=args.workers, model=model))
        outputs = {name: (Path(rows[name][-1]["scores"]), rows[name][-1]["band"]) for name in PEERS}
        med = {n: {k: statistics.median(r[k] for r in runs)
                   for k in ("chips", "seconds", "chips_per_s", "peak_rss_mib")}
               for n, runs in rows.items()}
        ours = med["geolesson (uniform)"]
        for n, r in med.items():
            vs = "" if n.startswith("geolesson") else f"  ours / theirs {ours['chips_per_s'] / r['chips_per_s']:.2f}x"
            print(f"{n:22s} {r['chips']:6.0f} chips {r['seconds']:7.1f} s {r['chips_per_s']:7.1f} chips/s "
                  f"peak RSS {r['peak_rss_mib']:6.0f} MiB{vs}", flush=True)
        work = statistics.median(r["cpu_total"] for r in rows["geolesson (uniform)"])
        cores = len(os.sched_getaffinity(0))
        fastest = max(r["chips_per_s"] for n, r in med.items() if n in PEERS)
        print(f"ours' work is {work:.1f} CPU-s: on {cores} cores it takes at least {work / cores:.1f} s, "
              f"{ours['chips'] / (work / cores) / fastest:.2f} x the faster peer at best (target >= 2)", flush=True)
        for n, (path, band) in outputs.items():
            print(f"agreement with {n}: "
                  f"{agreement(ours_dir / 'prediction.tif', path, band, args.chip, args.overlap)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--chip", type=int, default=128)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--chip-rows", type=int, default=None)
    parser.add_argument("--workers", type=int, default=1,
                        help="DataLoader worker processes reading chips (read and end2end)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of the model's process in end2end (ours, --peers too); 1 "
                             "beside 1 reading worker fills 2 cores, 2 oversubscribe them")
    parser.add_argument("--output", default="float32", choices=("float32", "uint8", "mask"),
                        help="write_cog's output encoding")
    parser.add_argument("--allocator", default="default", choices=tuple(ALLOCATORS),
                        help="the memory allocator's setting in every case's environment, ours and "
                             "the peers' (see model.predict's docstring)")
    parser.add_argument("--setup", action="store_true",
                        help="make the peers' venvs (benchmarks/.venv-inference-*) and stop")
    parser.add_argument("--peers", action="store_true",
                        help="ours against Raster Vision and geoai on the same scene, model and chips")
    cases.add_arguments(parser)
    args = parser.parse_args()
    if cases.dispatch(args, CASES):
        return
    if args.setup:
        for venv in PEERS.values():
            venv.ensure()
        return
    env = ALLOCATORS[args.allocator]
    print("in every case: " + ", ".join(f"{k}={v or '(unset)'}" for k, v in env.items()), flush=True)
    if args.peers:
        compare_peers(args, env)
        return
    timed = [InferenceCase(stage, stage, args.chip_rows)
             for stage in ("read", "forward", "forward-beside-read", "end2end")]
    timed.append(InferenceCase("end2end-quarter", "end2end", max(1, (args.chip_rows or chip_rows_of_item(args)) // 4)))
    timed.append(InferenceCase("stitch", "stitch", args.chip_rows))
    results = {}
    stage_keys = ("read_wait", "forward", "forward_cpu", "stitch_wait", "stitch", "write", "write_wait", "cog")
    runs = {c.name: [] for c in timed}
    for _ in range(args.runs):  # every case once per round: the host's drift spreads over all
        for c in timed:
            runs[c.name].append(cases.run(
                __file__, "inference", sys.executable, env=env, case=c.stage, chip=args.chip,
                overlap=args.overlap, chip_rows=c.chip_rows, workers=args.workers, output=args.output,
                threads=2 if c.stage in ("read", "forward") else args.threads))
    for c in timed:
        keys = ("chips", "seconds", "chips_per_s", *MEMORY_KEYS, *CPU_KEYS,
                *(stage_keys if c.stage == "end2end" else ()))
        results[c.name] = {k: statistics.median(r[k] for r in runs[c.name]) for k in keys}
        r = results[c.name]
        if c.stage == "forward-beside-read":  # its memory and CPU include the read's process
            print(f"{c.name:19s} {r['chips']:6.0f} chips  {r['seconds']:7.1f} s  {r['chips_per_s']:7.1f} chips/s  "
                  f"({args.threads} torch thread(s), while the read case runs in another process)", flush=True)
            continue
        print(f"{c.name:19s} {r['chips']:6.0f} chips  {r['seconds']:7.1f} s  {r['chips_per_s']:7.1f} chips/s  "
              f"peak RSS {r['peak_rss_mib']:5.0f} MiB (process {r['peak_parent_mib']:.0f} + workers "
              f"{r['peak_workers_mib']:.0f}), PSS {r['peak_pss_mib']:5.0f} MiB", flush=True)
        print(f"    CPU (s): {r['cpu_total']:.1f} = process {r['cpu_process']:.1f} + workers "
              f"{r['cpu_workers']:.1f} + mirror {r['cpu_mirror']:.1f}", flush=True)
        if c.stage == "end2end":
            print("    stages (s): " + ", ".join(f"{k} {r[k]:.1f}" for k in stage_keys), flush=True)
    e2e, read, fwd = results["end2end"], results["read"], results["forward"]
    slowest = min(read["chips_per_s"], fwd["chips_per_s"])
    quarter = results["end2end-quarter"]
    cores = len(os.sched_getaffinity(0))
    floor = e2e["cpu_total"] / cores
    print(f"end2end's work is {e2e['cpu_total']:.1f} CPU-s: on {cores} cores it takes at least {floor:.1f} s, "
          f"{e2e['chips'] / floor:.0f} chips/s, {e2e['chips'] / floor / slowest:.2f} x min(read, forward) at best")
    beside = results["forward-beside-read"]["seconds"]
    serial = beside + e2e["cog"]
    print(f"end2end's serial path: the model beside a read {beside:.1f} s, then the COG conversion "
          f"{e2e['cog']:.1f} s = {serial:.1f} s at least, {e2e['chips'] / serial / slowest:.2f} x "
          "min(read, forward) at best on this machine")
    alone = {"read": read["cpu_total"], "the model beside a read": results["forward-beside-read"]["cpu_process"],
             "stitch": results["stitch"]["cpu_total"]}
    least = sum(alone.values()) / cores
    print("the stages alone: " + " + ".join(f"{k} {v:.1f}" for k, v in alone.items())
          + f" = {sum(alone.values()):.1f} CPU-s: on {cores} cores end2end takes at least {least:.1f} s, "
          f"{e2e['chips'] / least / slowest:.2f} x min(read, forward) at best, however the stages overlap")
    print(f"end2end / min(read, forward) rate: {e2e['chips_per_s'] / slowest:.2f} (target >= 0.8); "
          f"end2end peak RSS {e2e['peak_rss_mib'] / 1024:.2f} GiB, PSS {e2e['peak_pss_mib'] / 1024:.2f} GiB "
          f"(target <= 1), against a quarter of the rows: RSS {e2e['peak_rss_mib'] / quarter['peak_rss_mib']:.2f}x, "
          f"PSS {e2e['peak_pss_mib'] / quarter['peak_pss_mib']:.2f}x (flat: 1)")


def chip_rows_of_item(args) -> int:
    """How many chip rows the overlap grid of the whole item has."""
    from geolesson import stitching

    return stitching.overlap_grid(full_size_item(), args.chip, args.overlap).row.nunique()


if __name__ == "__main__":
    main()
