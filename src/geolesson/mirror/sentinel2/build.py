"""Build the mirror's ``sentinel-2-l2a`` collection: simulate every acquisition, write its COGs and items."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from geolesson.mirror import layout
from geolesson.mirror.sentinel2.geometry import footprint
from geolesson.mirror.sentinel2.items import collection_dict, item_dict
from geolesson.mirror.sentinel2.naming import item_path, jp2_path
from geolesson.mirror.sentinel2.placeholders import write_placeholders
from geolesson.mirror.sentinel2.scenario import Scenario, load_scenario
from geolesson.mirror.sentinel2.simulation import World
from geolesson.mirror.sentinel2.writing import SceneWriter

COLLECTION = "sentinel-2-l2a"

_world: World | None = None


def _simulate_item(index: int, crop: int, out: Path) -> tuple[dict, dict[str, dict]]:
    """The item of acquisition ``index`` over tile ``crop`` (its crop or whole MGRS tile), its files
    written under ``out/files``, and the records of the files written."""
    global _world
    if _world is None:
        _world = World(load_scenario())
    sc = _world.scenario
    acq = sc.acquisitions[index]
    tile = sc.tile_for(acq, sc.tiles[crop])
    folder = layout.files_dir(out) / item_path(acq, tile)
    counts = np.zeros(12, dtype=np.int64)
    # in strips of rows: a whole MGRS tile's scene at once would take ~9 GB
    with SceneWriter(folder, tile, sc.epsg) as writer:
        for row, strip in _world.strips(acq, tile):
            writer.write(row, strip)
            counts += np.bincount(strip.scl[::2, ::2].ravel(), minlength=12)
    jp2_folder = layout.files_dir(out) / jp2_path(acq, tile)
    write_placeholders(folder, jp2_folder, sc, acq, tile)
    written = {**layout.records(folder, out), **layout.records(jp2_folder, out)}
    return item_dict(sc, acq, tile, footprint(sc, acq, tile), counts, base_url=""), written


def build_sentinel2(out: Path, workers: int, log=print) -> tuple[int, dict[str, dict]]:
    """Simulate every acquisition into the build folder ``out``: COGs under ``out/files`` and
    ``out/stac/{collection.json, items.ndjson}`` (hrefs relative to ``out/files``).

    Returns the number of items and the manifest records (:func:`geolesson.mirror.layout.records`)
    of the files under ``out/files``."""
    scenario: Scenario = load_scenario()
    t0 = time.perf_counter()
    jobs = [(i, c) for i in range(len(scenario.acquisitions)) for c in range(len(scenario.tiles))]
    # whole-tile items first: each takes about as long as all the crops together, and started
    # last it would run alone at the end
    jobs.sort(key=lambda job: job[0] not in scenario.full_size.get(scenario.tiles[job[1]].mgrs, ()))
    log(f"simulating {len(scenario.acquisitions)} dates x {len(scenario.tiles)} tiles with {workers} "
        f"processes into {out} ...")
    items, written = [], {}
    # spawn: no inherited lock descriptor or GDAL state in the workers
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_simulate_item, i, c, out) for i, c in jobs]
        for done, future in enumerate(as_completed(futures), 1):
            item, files = future.result()
            items.append(item)
            written.update(files)
            if done % 12 == 0 or done == len(jobs):
                log(f"  {done}/{len(jobs)} items written ({time.perf_counter() - t0:.0f} s)")
    layout.write_collection(layout.collection_dir(COLLECTION, out), collection_dict(scenario), items)
    return len(items), written
