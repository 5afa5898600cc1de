"""Mirror benchmarks: cold start, warm start and pystac-client search latency.

    .venv/bin/python benchmarks/mirror.py [--runs 5] [--searches 20]

Runs a second mirror in a temporary home (its data linked to the built one, so the
build itself is not repeated; `geolesson mirror build --force` times that) on its own
ports, each start in a fresh process, and prints medians. Targets (issue 2): warm start
<= 5 s, search p50 <= 50 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from geolesson._home import mirror_home

CLI = [sys.executable, "-m", "geolesson.cli", "mirror"]


def timed(cmd, env) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - t0


def search_p50(api_url: str, n: int) -> tuple[float, float]:
    import pystac_client

    client = pystac_client.Client.open(api_url)
    args = dict(collections=["sentinel-2-l2a"], bbox=[27.86, 36.0, 28.06, 36.22], datetime="2023-07-01/2023-08-31",
                query={"eo:cloud_cover": {"lt": 20}}, max_items=10)
    list(client.search(**args).items())  # warm the connection pool
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        list(client.search(**args).items())
        times.append(time.perf_counter() - t0)
    times.sort()
    return statistics.median(times), times[int(0.9 * (n - 1))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--searches", type=int, default=20)
    args = p.parse_args()

    built = mirror_home()
    with tempfile.TemporaryDirectory(prefix="geolesson-bench-", dir=built.parent) as tmp:
        home = Path(tmp)
        os.chmod(home, 0o755)
        for part in ("files", "stac"):
            (home / part).symlink_to(built / part)
        env = {**os.environ, "GEOLESSON_MIRROR_DIR": str(home),
               "GEOLESSON_MIRROR_PORT": "18765", "GEOLESSON_MIRROR_PG_PORT": "15432"}
        try:
            cold = timed(CLI + ["start"], env)
            timed(CLI + ["stop"], env)
            warm, stops = [], []
            for _ in range(args.runs):
                warm.append(timed(CLI + ["start"], env))
                stops.append(timed(CLI + ["stop"], env))
            timed(CLI + ["start"], env)
            import json

            state = json.loads((home / "run" / "state.json").read_text())
            p50, p90 = search_p50(state["api_url"], args.searches)
        finally:
            subprocess.run(CLI + ["stop"], env=env, capture_output=True)
    print(f"{'case':<42}{'seconds':>10}")
    print(f"{'cold start (initdb, migrate, load, ready)':<42}{cold:>10.2f}")
    print(f"{f'warm start, median of {args.runs}':<42}{statistics.median(warm):>10.2f}")
    print(f"{f'stop, median of {args.runs}':<42}{statistics.median(stops):>10.2f}")
    print(f"{f'search p50 over {args.searches} (ms)':<42}{p50 * 1000:>10.1f}")
    print(f"{f'search p90 over {args.searches} (ms)':<42}{p90 * 1000:>10.1f}")


if __name__ == "__main__":
    main()
