"""Build the mirror's ``sentinel-1-rtc`` collection: simulate every pass, write its files and items."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from geolesson.mirror import layout
from geolesson.mirror.jobs import Job, run_jobs
from geolesson.mirror.sentinel1.items import asset_paths, collection_dict, item_dict, product_folder
from geolesson.mirror.sentinel1.scenario import S1Scenario, load_s1_scenario
from geolesson.mirror.sentinel1.simulation import S1World, footprint
from geolesson.mirror.sentinel1.writing import write_pass

COLLECTION = "sentinel-1-rtc"
# Estimated CPU seconds per million pixels of a pass (both polarizations, preview), to order the build's jobs.
SIMULATE_S_PER_MPX = 2.0

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


def sentinel1_jobs(out: Path) -> tuple[list[Job], Callable[[], tuple[int, dict[str, dict]]]]:
    """The jobs that simulate every pass into the build folder ``out`` (files under ``out/files``),
    and the function to call once they have all run: it writes
    ``out/stac/sentinel-1-rtc/{collection.json, items.ndjson}`` (hrefs relative to ``out/files``)
    and returns the number of items and the manifest records
    (:func:`geolesson.mirror.layout.records`) of the files written. No jobs, and (0, {}) with
    nothing written, when the scenario has no ``[sentinel1]`` section."""
    scenario: S1Scenario | None = load_s1_scenario()
    if scenario is None:
        return [], lambda: (0, {})
    items, written = [], {}

    def done(result) -> list:
        item, records = result
        items.append(item)
        written.update(records)
        return []

    jobs = [Job(f"Sentinel-1 pass {i} over {p.area.name}", SIMULATE_S_PER_MPX * p.area.width * p.area.height / 1e6,
                _simulate_pass, (i, out), then=done) for i, p in enumerate(scenario.passes)]

    def finish() -> tuple[int, dict[str, dict]]:
        layout.write_collection(layout.collection_dir(COLLECTION, out), collection_dict(scenario), items)
        return len(items), written

    return jobs, finish


def build_sentinel1(out: Path, workers: int, log=print) -> tuple[int, dict[str, dict]]:
    """Run :func:`sentinel1_jobs` alone in ``workers`` processes; what its finishing function returns."""
    jobs, finish = sentinel1_jobs(out)
    run_jobs(jobs, workers, log)
    return finish()
