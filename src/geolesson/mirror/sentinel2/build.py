"""Build the mirror's ``sentinel-2-l2a`` collection: simulate every acquisition, write its COGs and items."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from geolesson.mirror import layout
from geolesson.mirror.sentinel2.items import collection_dict, item_dict, item_path
from geolesson.mirror.sentinel2.scenario import Scenario, load_scenario
from geolesson.mirror.sentinel2.simulation import World, footprint
from geolesson.mirror.sentinel2.writing import SceneWriter

COLLECTION = "sentinel-2-l2a"

_world: World | None = None


def _simulate_acquisition(index: int, out: Path) -> tuple[list[dict], dict[str, dict]]:
    """Items of one acquisition date, written under ``out/files``, and the records of the files written."""
    global _world
    if _world is None:
        _world = World(load_scenario())
    sc = _world.scenario
    acq = sc.acquisitions[index]
    items, written = [], {}
    for crop in sc.tiles:
        tile = sc.tile_for(acq, crop)
        folder = layout.files_dir(out) / item_path(acq, tile)
        counts = np.zeros(12, dtype=np.int64)
        # in strips of rows: a whole MGRS tile's scene at once would take ~9 GB
        with SceneWriter(folder, tile, sc.epsg) as writer:
            for row, strip in _world.strips(acq, tile):
                writer.write(row, strip)
                counts += np.bincount(strip.scl[::2, ::2].ravel(), minlength=12)
        written.update(layout.records(folder, out))
        items.append(item_dict(sc, acq, tile, footprint(sc, acq, tile), counts, base_url=""))
    return items, written


def build_sentinel2(out: Path, workers: int, log=print) -> tuple[int, dict[str, dict]]:
    """Simulate every acquisition into the build folder ``out``: COGs under ``out/files`` and
    ``out/stac/{collection.json, items.ndjson}`` (hrefs relative to ``out/files``).

    Returns the number of items and the manifest records (:func:`geolesson.mirror.layout.records`)
    of the files under ``out/files``."""
    scenario: Scenario = load_scenario()
    t0 = time.perf_counter()
    n = len(scenario.acquisitions)
    log(f"simulating {n} dates x {len(scenario.tiles)} tiles with {workers} processes into {out} ...")
    items, written = [], {}
    # spawn: no inherited lock descriptor or GDAL state in the workers
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = pool.map(_simulate_acquisition, range(n), [out] * n)
        for i, (acq_items, acq_files) in enumerate(results, 1):
            items.extend(acq_items)
            written.update(acq_files)
            if i % 6 == 0 or i == n:
                log(f"  {i}/{n} dates written ({time.perf_counter() - t0:.0f} s)")
    layout.write_collection(layout.collection_dir(COLLECTION, out), collection_dict(scenario), items)
    return len(items), written
