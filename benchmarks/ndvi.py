"""NDVI on the full-size 10980 x 10980 red/nir pair, read from the mirror over HTTP.

    .venv/bin/python benchmarks/ndvi.py [--runs 3] [--chunk 2048]

Cases, each run in a fresh process (so memory and GDAL caches start cold), medians printed:
    serial       rasterio reads both bands whole, numpy computes reflectance and NDVI
    threads      rioxarray + dask, chunks of --chunk pixels (multiples of the 512 blocks), threaded scheduler
    distributed  the same graph on a dask.distributed LocalCluster (2 workers x 1 thread, in-process)
Each computes the mean NDVI of valid pixels, so all must agree. Peak RSS is the process's
VmHWM (/proc/self/status). Targets (issue 3): threads >= 1.6x faster than serial, peak RSS <= 1/3.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass

import cases  # benchmarks/cases.py: this folder is on sys.path when a script runs
from cases import peak_rss_mib

ITEM = "S2A_35SNA_20230827_0_L2A"


@dataclass(frozen=True)
class NdviCase:
    """One timed configuration: how the mean NDVI is computed, and Dask's chunk side (pixels)."""

    #: ``serial``, ``threads`` or ``distributed``
    case: str
    chunk: int


def case_ndvi(case: str, chunk: int) -> dict:
    """Mean NDVI of the pair, computed the ``case`` way (in a fresh process)."""
    import numpy as np
    import pystac_client

    from geolesson import indices, sources

    sources.configure_gdal()
    item = pystac_client.Client.open(sources.stac_api_url()).get_collection("sentinel-2-l2a").get_item(ITEM)
    red_asset, nir_asset = item.assets["red"], item.assets["nir"]
    t0 = time.perf_counter()
    if case == "serial":
        import rasterio

        with rasterio.open(red_asset.href) as r, rasterio.open(nir_asset.href) as n:
            red = indices.reflectance(r.read(1), red_asset)
            nir = indices.reflectance(n.read(1), nir_asset)
        value = float(np.nanmean(indices.ndvi(red, nir)))
    else:
        import rioxarray

        def band(asset):
            return rioxarray.open_rasterio(asset.href, chunks=chunk).squeeze("band", drop=True)

        red = indices.reflectance(band(red_asset), red_asset)
        nir = indices.reflectance(band(nir_asset), nir_asset)
        mean = indices.ndvi(red, nir).mean(skipna=True)
        if case == "threads":
            value = float(mean.compute(scheduler="threads"))
        elif case == "distributed":
            from dask.distributed import Client, LocalCluster

            with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                              dashboard_address=None) as cluster, Client(cluster):
                value = float(mean.compute())
        else:
            raise ValueError(f"case={case!r}; use serial, threads or distributed")
    return {"case": case, "seconds": time.perf_counter() - t0, "peak_rss_mib": peak_rss_mib(), "mean_ndvi": value}


CASES = cases.collect(globals())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--chunk", type=int, default=2048)
    cases.add_arguments(p)
    args = p.parse_args()
    if cases.dispatch(args, CASES):
        return

    timed = [NdviCase(c, args.chunk) for c in ("serial", "threads", "distributed")]
    results: dict[NdviCase, list[dict]] = {c: [] for c in timed}
    for _ in range(args.runs):
        for c in timed:  # interleaved, so a slow spell of the machine hits every case
            results[c].append(cases.run(__file__, "ndvi", sys.executable, case=c.case, chunk=c.chunk))
    serial = timed[0]
    serial_s = statistics.median(r["seconds"] for r in results[serial])
    serial_rss = statistics.median(r["peak_rss_mib"] for r in results[serial])
    print(f"full-size pair {ITEM} red+nir over HTTP, chunks {args.chunk}, median of {args.runs} fresh processes")
    print(f"{'case':<13}{'seconds':>9}{'speed-up':>10}{'peak RSS MiB':>14}{'RSS / serial':>14}{'mean NDVI':>11}")
    for c in timed:
        s = statistics.median(r["seconds"] for r in results[c])
        rss = statistics.median(r["peak_rss_mib"] for r in results[c])
        ndvi = results[c][0]["mean_ndvi"]
        print(f"{c.case:<13}{s:>9.2f}{serial_s / s:>9.2f}x{rss:>14.0f}{rss / serial_rss:>14.2f}{ndvi:>11.5f}")


if __name__ == "__main__":
    main()
