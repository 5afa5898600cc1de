"""Build the mirror's data: simulate every acquisition, write COGs, STAC items and the collection."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from geolesson._home import SCENARIO_FILE, data_dir, mirror_home
from geolesson.mirror.scenario import Scenario, load_scenario
from geolesson.mirror.simulate import World, footprint
from geolesson.mirror.stac_items import collection_dict, item_dict, item_path
from geolesson.mirror.write import write_scene

_world: World | None = None


def files_dir(home: Path | None = None) -> Path:
    return (home or mirror_home()) / "files"


def stac_dir(home: Path | None = None) -> Path:
    return (home or mirror_home()) / "stac"


def inputs_digest() -> str:
    """Hash of everything the data depends on: the scenario, the vectors and this package's simulation code."""
    h = hashlib.sha256()
    paths = [data_dir() / SCENARIO_FILE, *sorted(data_dir().glob("rhodes_*.geojson"))]
    here = Path(__file__).parent
    paths += [here / f"{m}.py" for m in ("scenario", "simulate", "stac_items", "write", "build")]
    for p in paths:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def is_built(home: Path | None = None) -> bool:
    marker = stac_dir(home) / "build.json"
    try:
        return json.loads(marker.read_text())["inputs"] == inputs_digest()
    except (FileNotFoundError, KeyError, json.JSONDecodeError):
        return False


def _simulate_acquisition(index: int) -> list[dict]:
    global _world
    if _world is None:
        _world = World(load_scenario())
    sc = _world.scenario
    acq = sc.acquisitions[index]
    items = []
    for crop in sc.tiles:
        tile = sc.tile_for(acq, crop)
        scene = _world.scene(acq, tile)
        write_scene(files_dir() / item_path(acq, tile), scene, tile, sc.epsg)
        counts = np.bincount(scene.scl[::2, ::2].ravel(), minlength=12)
        items.append(item_dict(sc, acq, tile, footprint(sc, acq, tile), counts, base_url=""))
    return items


def build(workers: int | None = None, force: bool = False, log=print) -> Path:
    """Simulate the scenario into ``mirror_home()``: ``files/`` (COGs) and ``stac/`` (collection, items).

    Items are written with hrefs relative to the file server root; the loader makes them
    absolute with the running server's URL. Returns the mirror home.
    """
    home = mirror_home()
    if is_built(home) and not force:
        log(f"mirror data is up to date in {home}")
        return home
    scenario: Scenario = load_scenario()
    shutil.rmtree(files_dir(home), ignore_errors=True)
    shutil.rmtree(stac_dir(home), ignore_errors=True)
    stac_dir(home).mkdir(parents=True)
    workers = workers or min(len(os.sched_getaffinity(0)), 4)
    t0 = time.perf_counter()
    n = len(scenario.acquisitions)
    log(f"simulating {n} dates x {len(scenario.tiles)} tiles with {workers} processes ...")
    items = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for i, result in enumerate(pool.map(_simulate_acquisition, range(n)), 1):
            items.extend(result)
            if i % 6 == 0 or i == n:
                log(f"  {i}/{n} dates written ({time.perf_counter() - t0:.0f} s)")
    (stac_dir(home) / "collection.json").write_text(json.dumps(collection_dict(scenario), indent=1))
    with open(stac_dir(home) / "items.ndjson", "w") as f:
        for item in sorted(items, key=lambda it: it["id"]):
            f.write(json.dumps(item, separators=(",", ":")) + "\n")
    size = sum(p.stat().st_size for p in files_dir(home).rglob("*") if p.is_file())
    (stac_dir(home) / "build.json").write_text(json.dumps({
        "inputs": inputs_digest(), "items": len(items), "bytes": size,
        "seconds": round(time.perf_counter() - t0, 1)}))
    log(f"built {len(items)} items, {size / 1e6:.0f} MB of COGs in {time.perf_counter() - t0:.0f} s -> {home}")
    return home
