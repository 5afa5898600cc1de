"""Build the mirror's ``sentinel-1-rtc`` collection: simulate every pass, write its files and items."""

from __future__ import annotations

import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from geolesson.mirror import manifest
from geolesson.mirror.s1_items import asset_paths, collection_dict, item_dict, product_folder
from geolesson.mirror.s1_scenario import S1Scenario, load_s1_scenario
from geolesson.mirror.s1_write import write_pass
from geolesson.mirror.sentinel1 import S1World, footprint

STAC_SUBDIR = "sentinel-1-rtc"  # below the mirror's stac/ folder: collection.json, items.ndjson

_world: S1World | None = None


def _simulate_pass(index: int, out: Path) -> tuple[dict, dict[str, dict]]:
    """The item of one pass, its files written under ``out/files``, and the manifest records of those files."""
    global _world
    if _world is None:
        _world = S1World(load_s1_scenario())
    sc = _world.scenario
    p = sc.passes[index]
    scene = _world.scene(p)
    root = out / "files"
    files = write_pass({k: root / v for k, v in asset_paths(p).items()}, scene, p.area)
    return item_dict(sc, p, footprint(p), files), manifest.records(root / product_folder(p), out)


def build_sentinel1(out: Path, workers: int, log=print) -> tuple[int, dict[str, dict]]:
    """Simulate every pass into the build folder ``out``: files under ``out/files`` and
    ``out/stac/sentinel-1-rtc/{collection.json, items.ndjson}`` (hrefs relative to ``out/files``).

    Returns the number of items and the manifest records (:mod:`geolesson.mirror.manifest`)
    of the files under ``out/files``; (0, {}) and nothing written when the scenario has no
    ``[sentinel1]`` section."""
    scenario: S1Scenario | None = load_s1_scenario()
    if scenario is None:
        return 0, {}
    t0 = time.perf_counter()
    n = len(scenario.passes)
    log(f"simulating {n} Sentinel-1 passes over {', '.join(a.name for a in scenario.areas)} "
        f"with {workers} processes ...")
    items, written = [], {}
    # spawn, as the Sentinel-2 part: no inherited lock descriptor or GDAL state in the workers
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        for i, (item, records) in enumerate(pool.map(_simulate_pass, range(n), [out] * n), 1):
            items.append(item)
            written.update(records)
            if i % 5 == 0 or i == n:
                log(f"  {i}/{n} passes written ({time.perf_counter() - t0:.0f} s)")
    stac = out / "stac" / STAC_SUBDIR
    stac.mkdir(parents=True, exist_ok=True)
    (stac / "collection.json").write_text(json.dumps(collection_dict(scenario), indent=1))
    with open(stac / "items.ndjson", "w") as f:
        for item in sorted(items, key=lambda it: it["id"]):
            f.write(json.dumps(item, separators=(",", ":")) + "\n")
    size = sum(r["size"] for r in written.values())
    log(f"  sentinel-1-rtc: {len(items)} items, {size / 1e6:.0f} MB of files in {time.perf_counter() - t0:.0f} s")
    return len(items), written
