"""Build the mirror's data: simulate every acquisition, write COGs, STAC items and the collection.

A build writes into a fresh folder inside the mirror home (``.build-<pid>``) and swaps it in
only once complete, so an interrupted build leaves the previous data whole. ``build.json``,
written last, holds the inputs digest and every file's size and SHA-256
(:mod:`geolesson.mirror.manifest`); two builds of the same inputs are byte-identical.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from geolesson._home import SCENARIO_FILE, data_dir, mirror_home
from geolesson.mirror import manifest
from geolesson.mirror.lock import lifecycle_lock
from geolesson.mirror.s1_build import STAC_SUBDIR as S1_STAC_SUBDIR
from geolesson.mirror.s1_build import build_sentinel1
from geolesson.mirror.scenario import Scenario, load_scenario
from geolesson.mirror.simulate import World, footprint
from geolesson.mirror.stac_items import collection_dict, item_dict, item_path
from geolesson.mirror.write import SceneWriter

_world: World | None = None
# processes per core allowed for --workers: each holds one strip of a scene (well under 1 GB)
WORKERS_PER_CORE = 2


def files_dir(home: Path | None = None) -> Path:
    return (home or mirror_home()) / "files"


def stac_dir(home: Path | None = None) -> Path:
    return (home or mirror_home()) / "stac"


def collection_files(home: Path | None = None) -> list[tuple[Path, Path]]:
    """(collection.json, items.ndjson) of every collection the build wrote: sentinel-2-l2a, and
    sentinel-1-rtc where the scenario has a ``[sentinel1]`` section."""
    s2, s1 = stac_dir(home), stac_dir(home) / S1_STAC_SUBDIR
    pairs = [(s2 / "collection.json", s2 / "items.ndjson"), (s1 / "collection.json", s1 / "items.ndjson")]
    return [pair for pair in pairs if pair[0].exists()]


def inputs_digest() -> str:
    """Hash of everything the data depends on: the scenario, the vectors and this package's simulation code."""
    h = hashlib.sha256()
    paths = [data_dir() / SCENARIO_FILE, *sorted(data_dir().glob("rhodes_*.geojson")),
             *sorted(data_dir().glob("*_landcover_true.geojson"))]
    here = Path(__file__).parent
    paths += [here / f"{m}.py" for m in ("scenario", "noise", "simulate", "stac_items", "write", "build",
                                          "s1_scenario", "sentinel1", "s1_items", "s1_write", "s1_build")]
    for p in paths:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def data_problems(home: Path | None = None) -> list[str] | None:
    """None if the data was never built or is out of date; else the missing/truncated files (empty: intact).

    Checks sizes only (a ``stat`` per file); :func:`geolesson.mirror.manifest.hash_problems` reads the bytes.
    """
    home = home or mirror_home()
    built = manifest.read(home)
    if not built or built.get("inputs") != inputs_digest() or "files" not in built:
        return None
    return manifest.size_problems(home, built)


def is_built(home: Path | None = None) -> bool:
    """Whether the data is built from the current inputs with every file present at its built size."""
    return data_problems(home) == []


def check_workers(workers: int | None) -> int:
    """The number of simulation processes: ``workers``, or all cores up to 4 when None.

    Raises:
        TypeError: ``workers`` is not an integer.
        ValueError: ``workers`` is outside 1..2 x the cores this process may use.
    """
    cores = len(os.sched_getaffinity(0))
    if workers is None:
        return min(cores, 4)
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)):
        raise TypeError(f"workers={workers!r} must be an integer number of processes (1..{WORKERS_PER_CORE * cores})")
    if not 1 <= workers <= WORKERS_PER_CORE * cores:
        raise ValueError(f"workers={workers} is not allowed: use 1..{WORKERS_PER_CORE * cores} processes "
                         f"({WORKERS_PER_CORE} per core; this machine lets the build use {cores} cores)")
    return int(workers)


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
        folder = files_dir(out) / item_path(acq, tile)
        counts = np.zeros(12, dtype=np.int64)
        # in strips of rows: a whole MGRS tile's scene at once would take ~9 GB
        with SceneWriter(folder, tile, sc.epsg) as writer:
            for row, strip in _world.strips(acq, tile):
                writer.write(row, strip)
                counts += np.bincount(strip.scl[::2, ::2].ravel(), minlength=12)
        written.update(manifest.records(folder, out))
        items.append(item_dict(sc, acq, tile, footprint(sc, acq, tile), counts, base_url=""))
    return items, written


def remove_leftovers(home: Path) -> None:
    """Delete the folders of builds that were interrupted (call with the lifecycle lock held)."""
    for leftover in [*home.glob(".build-*"), *home.glob(".old-*")]:
        shutil.rmtree(leftover, ignore_errors=True)


def _swap_in(home: Path, new: Path) -> None:
    """Replace ``home``'s files/ and stac/ by ``new``'s. stac/ (with build.json) leaves first and comes
    back last, so at every moment the data counts as built only if all of it is in place."""
    old = home / f".old-{os.getpid()}"
    old.mkdir()
    for name in ("stac", "files"):
        if (home / name).exists():
            (home / name).rename(old / name)
    for name in ("files", "stac"):
        (new / name).rename(home / name)
    new.rmdir()
    shutil.rmtree(old)


def build(workers: int | None = None, force: bool = False, log=print) -> Path:
    """Simulate the scenario into ``mirror_home()``: ``files/`` (COGs) and ``stac/`` (collection, items).

    Items are written with hrefs relative to the file server root; the loader makes them
    absolute with the running server's URL. Data that is up to date and intact is kept
    (unless ``force``); damaged data (a file missing or of the wrong size) is rebuilt. A
    running mirror keeps serving the old data during the build; it is stopped for the swap
    and started again (both said in the log). Returns the mirror home.

    Raises:
        TypeError, ValueError: ``workers`` is not an integer in 1..2 x cores (checked before
            anything is touched).
    """
    workers = check_workers(workers)
    home = mirror_home()
    with lifecycle_lock(home, "build", log):
        remove_leftovers(home)
        problems = data_problems(home)
        if problems == [] and not force:
            log(f"mirror data is up to date in {home}")
            return home
        if problems:
            log(f"the mirror's data in {home} is damaged ({'; '.join(problems[:5])}"
                f"{f'; and {len(problems) - 5} more' if len(problems) > 5 else ''}); rebuilding it")
        new = home / f".build-{os.getpid()}"
        stac_dir(new).mkdir(parents=True)
        scenario: Scenario = load_scenario()
        t0 = time.perf_counter()
        n = len(scenario.acquisitions)
        log(f"simulating {n} dates x {len(scenario.tiles)} tiles with {workers} processes into {new} ...")
        items, written = [], {}
        # spawn: no inherited lock descriptor or GDAL state in the workers
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = pool.map(_simulate_acquisition, range(n), [new] * n)
            for i, (acq_items, acq_files) in enumerate(results, 1):
                items.extend(acq_items)
                written.update(acq_files)
                if i % 6 == 0 or i == n:
                    log(f"  {i}/{n} dates written ({time.perf_counter() - t0:.0f} s)")
        (stac_dir(new) / "collection.json").write_text(json.dumps(collection_dict(scenario), indent=1))
        with open(stac_dir(new) / "items.ndjson", "w") as f:
            for item in sorted(items, key=lambda it: it["id"]):
                f.write(json.dumps(item, separators=(",", ":")) + "\n")
        n_s1, s1_files = build_sentinel1(new, workers, log)
        written.update(s1_files)
        written.update(manifest.records(stac_dir(new), new))
        size = sum(r["size"] for r in written.values())
        (new / manifest.MANIFEST).write_text(json.dumps({
            "inputs": inputs_digest(), "items": len(items) + n_s1, "bytes": size,
            "files": dict(sorted(written.items()))}, indent=0))
        _swap_in_stopping_the_mirror(home, new, log)
        log(f"built {len(items) + n_s1} items, {size / 1e6:.0f} MB of COGs in {time.perf_counter() - t0:.0f} s -> {home}")
    return home


def _swap_in_stopping_the_mirror(home: Path, new: Path, log) -> None:
    from geolesson.mirror import service  # service imports this module

    running = service.anything_running(home)
    if running:
        log("stopping the running mirror to swap in the new data; it is started again afterwards")
        service.stop(log=log)
    _swap_in(home, new)
    if running:
        service.start(log=log)
