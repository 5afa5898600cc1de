"""The jobs that build the mirror's ``sentinel-2-l2a`` collection: simulate every acquisition, write its COGs and items.

A crop is one job. A whole MGRS tile (10980 x 10980 px) is split so that both cores share it:
blocks of rows simulated and staged by separate jobs, then one job per COG assembling its
pieces (:func:`geolesson.mirror.sentinel2.writing.assemble_cog`: the same bytes as one
writer's), then one job for the thumbnail, the placeholders and the item.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from geolesson.mirror import layout
from geolesson.mirror.jobs import Job
from geolesson.mirror.sentinel2.assets import ASSETS
from geolesson.mirror.sentinel2.geometry import footprint
from geolesson.mirror.sentinel2.items import collection_dict, item_dict
from geolesson.mirror.sentinel2.naming import item_id, item_path, jp2_path
from geolesson.mirror.sentinel2.placeholders import write_placeholders
from geolesson.mirror.sentinel2.scenario import Acquisition, Scenario, Tile, load_scenario
from geolesson.mirror.sentinel2.simulation import STRIP_ROWS, World
from geolesson.mirror.sentinel2.writing import SIMULATED, SceneWriter, assemble_cog, save_thumbnail

COLLECTION = "sentinel-2-l2a"

# Rows of a whole tile simulated by one job: 10980 rows make 6 blocks of about 1830, simulated
# in strips of 256 rows (half simulation.STRIP_ROWS: a block job peaks at 0.5 GB instead of
# 0.85 GB for the same CPU time, so two of them fit beside each other on Binder's 2 GB).
BLOCK_ROWS = 2048
BLOCK_STRIP_ROWS = 256
# Estimated CPU seconds per million 10 m pixels (2 cores, quiet), to order the jobs:
# simulating and staging every asset, and encoding each asset's COG (the 20 m ones a quarter).
SIMULATE_S_PER_MPX = 0.3
CONVERT_S_PER_MPX = 0.06

_world: World | None = None


def _the_world() -> World:
    global _world
    if _world is None:
        _world = World(load_scenario())
    return _world


def _scene(index: int, crop: int) -> tuple[Scenario, Acquisition, Tile, Path]:
    sc = _the_world().scenario
    acq = sc.acquisitions[index]
    tile = sc.tile_for(acq, sc.tiles[crop])
    return sc, acq, tile, item_path(acq, tile)


def _write_rows(index: int, crop: int, out: Path, rows: tuple[int, int] | None) -> tuple[list, np.ndarray]:
    """Simulate and write the scene's ``rows`` (all: its COGs and thumbnail; a block: their pieces);
    the thumbnail's rows and the SCL class counts (of every other pixel)."""
    sc, acq, tile, path = _scene(index, crop)
    counts = np.zeros(12, dtype=np.int64)
    # in strips of rows: a whole MGRS tile's scene at once would take ~9 GB
    with SceneWriter(layout.files_dir(out) / path, tile, sc.epsg, rows) as writer:
        for row, strip in _the_world().strips(acq, tile, BLOCK_STRIP_ROWS if rows else STRIP_ROWS, rows):
            writer.write(row, strip)
            counts += np.bincount(strip.scl[::2, ::2].ravel(), minlength=12)
    return writer.thumbnail, counts


def _finish_item(index: int, crop: int, out: Path, counts: np.ndarray) -> tuple[dict, dict[str, dict]]:
    """The item's placeholders, the item, and the records of its files."""
    sc, acq, tile, path = _scene(index, crop)
    folder, jp2_folder = layout.files_dir(out) / path, layout.files_dir(out) / jp2_path(acq, tile)
    write_placeholders(folder, jp2_folder, sc, acq, tile)
    written = {**layout.records(folder, out), **layout.records(jp2_folder, out)}
    return item_dict(sc, acq, tile, footprint(sc, acq, tile), counts, base_url=""), written


def _simulate_item(index: int, crop: int, out: Path) -> tuple[dict, dict[str, dict]]:
    """The item of acquisition ``index`` over tile ``crop`` in one job, its files written under ``out/files``."""
    _, counts = _write_rows(index, crop, out, None)
    return _finish_item(index, crop, out, counts)


def _assemble(index: int, crop: int, out: Path, key: str, starts: list[int]) -> None:
    sc, acq, tile, path = _scene(index, crop)
    assemble_cog(layout.files_dir(out) / path, tile, sc.epsg, key, starts)


def _finish_whole_tile(index: int, crop: int, out: Path, parts: list, counts: np.ndarray) -> tuple[dict, dict]:
    _, _, _, path = _scene(index, crop)
    save_thumbnail(layout.files_dir(out) / path, parts)
    return _finish_item(index, crop, out, counts)


def blocks(height: int, block_rows: int = BLOCK_ROWS) -> list[tuple[int, int]]:
    """``height`` rows in about equal blocks of at most ``block_rows`` (even starts; (start, stop) pairs)."""
    n = -(-height // block_rows)
    starts = [2 * round(i * height / n / 2) for i in range(n)]
    return list(zip(starts, [*starts[1:], height]))


def _whole_tile_jobs(sc: Scenario, index: int, crop: int, out: Path, done: Callable) -> list[Job]:
    """Blocks of rows, then a COG from each asset's pieces, then the item; ``done(result)`` gets the item."""
    acq = sc.acquisitions[index]
    tile = sc.tile_for(acq, sc.tiles[crop])
    name = item_id(acq, tile)
    rows = blocks(tile.height)
    mpx = tile.width * tile.height / 1e6
    convert = {key: CONVERT_S_PER_MPX * mpx * _share(key) for key in SIMULATED}
    results: dict[int, tuple[list, np.ndarray]] = {}
    assembled: list[str] = []

    def finish() -> Job:
        parts = [part for start, _ in rows for part in results[start][0]]
        counts = sum(results[start][1] for start, _ in rows)
        return Job(f"{name}: thumbnail, placeholders and item", 1.0, _finish_whole_tile,
                   (index, crop, out, parts, counts), then=done)

    def block_done(start: int):
        def then(result):
            results[start] = result
            if len(results) < len(rows):
                return []
            return [Job(f"{name}: {key} COG", convert[key], _assemble,
                        (index, crop, out, key, [s for s, _ in rows]), then=asset_done(key), after=1.0)
                    for key in SIMULATED]
        return then

    def asset_done(key: str):
        def then(_):
            assembled.append(key)
            return [finish()] if len(assembled) == len(SIMULATED) else []
        return then

    return [Job(f"{name}: rows {start}-{stop}", SIMULATE_S_PER_MPX * mpx * (stop - start) / tile.height,
                _write_rows, (index, crop, out, (start, stop)), then=block_done(start),
                after=max(convert.values()) + 1.0)
            for start, stop in rows]


def _share(key: str) -> float:
    """Samples of simulated asset ``key`` per 10 m pixel: 3 for the true-colour image, 1/4 at 20 m."""
    return (3 if key == "visual" else 1) / (ASSETS[key].resolution // 10) ** 2


def sentinel2_jobs(out: Path) -> tuple[list[Job], Callable[[], tuple[int, dict[str, dict]]]]:
    """The jobs that simulate every acquisition into the build folder ``out`` (COGs under
    ``out/files``), and the function to call once they have all run: it writes
    ``out/stac/sentinel-2-l2a/{collection.json, items.ndjson}`` (hrefs relative to ``out/files``)
    and returns the number of items and the manifest records
    (:func:`geolesson.mirror.layout.records`) of the files written."""
    scenario = load_scenario()
    items, written = [], {}

    def done(result) -> list:
        item, files = result
        items.append(item)
        written.update(files)
        return []

    jobs = []
    for index, acq in enumerate(scenario.acquisitions):
        for crop in range(len(scenario.tiles)):
            tile = scenario.tile_for(acq, scenario.tiles[crop])
            if tile.height > BLOCK_ROWS:
                jobs += _whole_tile_jobs(scenario, index, crop, out, done)
            else:
                mpx = tile.width * tile.height / 1e6
                seconds = (SIMULATE_S_PER_MPX + CONVERT_S_PER_MPX * sum(map(_share, SIMULATED))) * mpx
                jobs.append(Job(item_id(acq, tile), seconds, _simulate_item, (index, crop, out), then=done))

    def finish() -> tuple[int, dict[str, dict]]:
        layout.write_collection(layout.collection_dir(COLLECTION, out), collection_dict(scenario), items)
        return len(items), written

    return jobs, finish
