"""End-to-end inference on the full-size 10980 x 10980 item, read from the mirror over HTTP.

    .venv/bin/python benchmarks/inference.py [--runs 3] [--chip-rows N] [--chip 128] [--overlap 32]
                                             [--workers 1] [--output float32|uint8|mask]

Cases, each run in a fresh process (cold GDAL cache, own peak RSS), medians printed:
    read      ChipDataset + DataLoader (--workers worker processes) over an overlap_grid of
              the item (red, nir, swir22), Normalize included: the chip-read rate alone
    forward   the model's forward pass alone, on random batches of the same shape
    end2end   model.predict (reading in --workers workers) -> Stitcher -> write_cog
              (a writer thread, then GDAL's COG driver), with the time of each stage:
              read wait (the model waiting for a batch), forward, stitch (blend and
              accumulate), write (the writer thread's busy time, overlapped), write wait
              (the stitcher waiting for the writer) and cog (overviews and compression)
The model is chapter 7's BurnNet (3 convolutions, width 8) with seeded random weights: the
speed does not depend on what it learned. --chip-rows limits the grid to its first N chip
rows (a band of the scene as wide as the item) for a quicker run; the stitcher's memory
depends on the width, not the number of rows, so peak RSS is reported for 1/4 of the rows
and for all of them (end2end-quarter vs end2end) to show it does not grow with the scene.
Peak RSS is the whole process tree's (the process and its DataLoader workers, sampled every
20 ms). Targets (issue 23): end2end >= 0.8 x min(read, forward) chips/s; peak RSS <= 1 GiB,
flat from a quarter of the rows to all of them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cases  # benchmarks/cases.py: this folder is on sys.path when a script runs
from cases import PeakRSS

BANDS = ("red", "nir", "swir22")
BATCH = 16


def burnnet(bands: int = 3, width: int = 8):
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(bands, width, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(width, width, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(width, 1, 1)).to(memory_format=torch.channels_last).eval()


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
    #: ``read``, ``forward`` or ``end2end``
    stage: str
    chip_rows: int | None


class TimedModel:
    """A model whose forward passes are timed (seconds in ``forward_seconds``)."""

    def __init__(self, net):
        self.net, self.forward_seconds = net, 0.0

    def eval(self):
        self.net.eval()
        return self

    def __call__(self, x):
        t0 = time.perf_counter()
        out = self.net(x.contiguous(memory_format=__import__("torch").channels_last))
        self.forward_seconds += time.perf_counter() - t0
        return out


def case_inference(case: str, chip: int, overlap: int, chip_rows: int | None, workers: int,
                   output: str) -> dict:
    """One stage over the item's overlap grid (in a fresh process)."""
    import torch
    from torch.utils.data import DataLoader

    from geolesson import batching, sources, stitching
    from geolesson import model as glmodel

    sources.configure_gdal()
    torch.set_num_threads(2)
    item = full_size_item()
    grid = stitching.overlap_grid(item, chip, overlap)
    if chip_rows is not None:
        rows = sorted(set(grid.row))[:chip_rows]
        grid = grid[grid.row.isin(rows)]
    stats = batching.BandStatistics(BANDS, (0.06, 0.2, 0.12), (0.03, 0.08, 0.05),
                                    (1, 1, 1), (False, False, False), 1)
    dataset = batching.ChipDataset(grid, BANDS, items=[item], transform=batching.Normalize(stats, fill=0.0))
    net = burnnet()
    stages = {}
    with PeakRSS() as peak:
        t0 = time.perf_counter()
        if case == "read":
            for _ in DataLoader(dataset, batch_size=BATCH, collate_fn=batching.collate,
                                num_workers=workers):
                pass
        elif case == "forward":
            x = torch.randn(BATCH, len(BANDS), chip, chip)
            with torch.no_grad():
                for _ in range(0, len(grid), BATCH):
                    net(x.contiguous(memory_format=torch.channels_last))
        else:
            timed = TimedModel(net)
            with tempfile.TemporaryDirectory() as tmp:
                done = stitching.write_cog(
                    glmodel.predict(timed, dataset, batch_size=BATCH, num_workers=workers),
                    item, Path(tmp) / "prediction.tif", ramp=overlap, output=output)
            seconds = done["seconds"]
            stages = {"read_wait": seconds["wait"] - timed.forward_seconds,
                      "forward": timed.forward_seconds,
                      **{k: seconds[k] for k in ("stitch", "write", "write_wait", "cog")}}
        seconds = time.perf_counter() - t0
    return {"case": case, "chips": len(grid), "seconds": seconds,
            "chips_per_s": len(grid) / seconds, "peak_rss_mib": peak.peak / 2**20, **stages}


CASES = cases.collect(globals())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--chip", type=int, default=128)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--chip-rows", type=int, default=None)
    parser.add_argument("--workers", type=int, default=1,
                        help="DataLoader worker processes reading chips (read and end2end)")
    parser.add_argument("--output", default="float32", choices=("float32", "uint8", "mask"),
                        help="write_cog's output encoding")
    cases.add_arguments(parser)
    args = parser.parse_args()
    if cases.dispatch(args, CASES):
        return
    timed = [InferenceCase(stage, stage, args.chip_rows) for stage in ("read", "forward", "end2end")]
    if args.chip_rows:
        timed.append(InferenceCase("end2end-quarter", "end2end", max(1, args.chip_rows // 4)))
    results = {}
    stage_keys = ("read_wait", "forward", "stitch", "write", "write_wait", "cog")
    for c in timed:
        runs = [cases.run(__file__, "inference", sys.executable, case=c.stage, chip=args.chip,
                          overlap=args.overlap, chip_rows=c.chip_rows, workers=args.workers,
                          output=args.output) for _ in range(args.runs)]
        keys = ("chips", "seconds", "chips_per_s", "peak_rss_mib") + (
            stage_keys if c.stage == "end2end" else ())
        results[c.name] = {k: statistics.median(r[k] for r in runs) for k in keys}
        r = results[c.name]
        print(f"{c.name:16s} {r['chips']:6.0f} chips  {r['seconds']:7.1f} s  "
              f"{r['chips_per_s']:7.1f} chips/s  peak RSS {r['peak_rss_mib']:6.0f} MiB", flush=True)
        if c.stage == "end2end":
            print("    stages (s): " + ", ".join(f"{k} {r[k]:.1f}" for k in stage_keys), flush=True)
    e2e, read, fwd = results["end2end"], results["read"], results["forward"]
    slowest = min(read["chips_per_s"], fwd["chips_per_s"])
    print(f"end2end / min(read, forward) rate: {e2e['chips_per_s'] / slowest:.2f} (target >= 0.8); "
          f"end2end peak RSS {e2e['peak_rss_mib'] / 1024:.2f} GiB (target <= 1)")


if __name__ == "__main__":
    main()
