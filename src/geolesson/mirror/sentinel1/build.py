"""Build the mirror's ``sentinel-1-rtc`` collection: simulate every pass, write its files and items."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from geolesson.mirror import layout
from geolesson.mirror.sentinel1.items import asset_paths, collection_dict, item_dict, product_folder
from geolesson.mirror.sentinel1.scenario import S1Scenario, load_s1_scenario
from geolesson.mirror.sentinel1.simulation import S1World, footprint
from geolesson.mirror.sentinel1.writing import write_pass

COLLECTION = "sentinel-1-rtc"

_world: S1World | None = None


def _simulate_pass(index: int, out: Path) -> tuple[dict, dict[str, dict]]:
    """The item of one pass, its files written under ``out/files``, and the manifest records of those files."""
    global _world
    if _world is None:
        _world = S1World(load_s1_scenario())
    sc = _world.scenario
    p = sc.passes[index]
    scene = _world.scene(p)
    root = layout.files_dir(out)
    files = write_pass({k: root / v for k, v in asset_paths(p).items()}, scene, p.area)
    return item_dict(sc, p, footprint(p), files), layout.records(root / product_folder(p), out)


def build_sentinel1(out: Path, workers: int, log=print) -> tuple[int, dict[str, dict]]:
    """Simulate every pass into the build folder ``out``: files under ``out/files`` and
    ``out/stac/sentinel-1-rtc/{collection.json, items.ndjson}`` (hrefs relative to ``out/files``).

    Returns the number of items and the manifest records (:func:`geolesson.mirror.layout.records`)
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
    layout.write_collection(layout.collection_dir(COLLECTION, out), collection_dict(scenario), items)
    size = sum(r["size"] for r in written.values())
    log(f"  sentinel-1-rtc: {len(items)} items, {size / 1e6:.0f} MB of files in {time.perf_counter() - t0:.0f} s")
    return len(items), written
