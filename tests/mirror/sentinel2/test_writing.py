"""The mirror simulates and writes a scene in strips of rows: the same arrays and the same bytes
as the whole scene at once (a whole MGRS tile at once would take ~9 GB)."""

from __future__ import annotations

import numpy as np
import pytest

from geolesson.mirror.sentinel2 import simulation
from geolesson.mirror.sentinel2.scenario import GSD, Tile
from geolesson.mirror.sentinel2.writing import SceneWriter, write_scene


def _stacked(world, acq, tile, strip_rows):
    strips = list(world.strips(acq, tile, strip_rows))
    assert [row for row, _ in strips] == list(range(0, tile.height, strip_rows))
    return (np.concatenate([s.reflectance for _, s in strips], axis=1),
            np.concatenate([s.scl for _, s in strips]),
            np.concatenate([s.aot for _, s in strips]))


def test_strips_of_the_burnt_cloudy_crop_equal_the_whole_scene(scenario):
    tile = scenario.tiles[0]
    acq = next(a for a in scenario.acquisitions
               if a.datetime.date() > scenario.fire.last_day and 10 < a.cloud_cover < 50)
    whole = simulation.World(scenario).scene(acq, tile)
    # the scar, a village and cloud shadows all cross strip boundaries (every 334 rows)
    surface = simulation.World(scenario).surface_of(tile)
    for mask in (surface.burn_scar, surface.cover == simulation.BUILT, whole.scl == simulation.SCL_SHADOW):
        hit_rows = np.flatnonzero(mask.any(axis=1))
        assert hit_rows.size and (hit_rows // 334).min() < (hit_rows // 334).max()
    refl, scl, aot = _stacked(simulation.World(scenario), acq, tile, 334)
    np.testing.assert_array_equal(scl, whole.scl)
    np.testing.assert_array_equal(refl, whole.reflectance)
    np.testing.assert_array_equal(aot, whole.aot)


def test_strips_of_a_partial_orbit_scene_equal_the_whole_scene(scenario):
    tile = next(t for t in scenario.tiles if t.mgrs in scenario.partial_orbit)
    acq = scenario.acquisitions[scenario.partial_orbit[tile.mgrs][0]]
    small = Tile(tile.mgrs, tile.x_min, tile.y_max - 100 * GSD, 700, 410, tile.origin_x, tile.origin_y)
    whole = simulation.World(scenario).scene(acq, small)
    assert 0 < (whole.scl == simulation.SCL_NODATA).mean() < 1
    refl, scl, aot = _stacked(simulation.World(scenario), acq, small, 64)  # the last strip has 26 rows
    np.testing.assert_array_equal(scl, whole.scl)
    np.testing.assert_array_equal(aot, whole.aot)
    np.testing.assert_array_equal(refl, whole.reflectance)


def test_strip_writer_writes_the_bytes_of_the_whole_scene(scenario, tmp_path):
    tile = scenario.tiles[0]
    # 780 rows: the thumbnail takes every 3rd row, so strips of 128 rows start off its grid
    small = Tile(tile.mgrs, tile.x_min + 3000, tile.y_max - 2000, 600, 780, tile.origin_x, tile.origin_y)
    acq = next(a for a in scenario.acquisitions if 30 < a.cloud_cover < 90)  # SCL with several classes
    world = simulation.World(scenario)
    write_scene(tmp_path / "whole", world.scene(acq, small), small, scenario.epsg)
    with SceneWriter(tmp_path / "strips", small, scenario.epsg) as writer:
        for row, strip in world.strips(acq, small, 128):
            writer.write(row, strip)
    whole = sorted(p.name for p in (tmp_path / "whole").iterdir())
    assert whole == sorted(p.name for p in (tmp_path / "strips").iterdir())
    assert {"B02.tif", "B8A.tif", "B11.tif", "AOT.tif", "WVP.tif", "SCL.tif", "TCI.tif", "thumbnail.jpg"} <= set(whole)
    for name in whole:
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "strips" / name).read_bytes(), name


def test_blocks_of_rows_written_apart_and_assembled_give_the_bytes_of_the_whole_scene(scenario, tmp_path):
    """How the build shares a whole tile between processes: blocks of rows staged as pieces (in any
    order), then each COG assembled from its pieces."""
    from geolesson.mirror.sentinel2.build import blocks
    from geolesson.mirror.sentinel2.writing import SIMULATED, assemble_cog, save_thumbnail

    tile = scenario.tiles[0]
    small = Tile(tile.mgrs, tile.x_min + 3000, tile.y_max - 2000, 600, 780, tile.origin_x, tile.origin_y)
    acq = next(a for a in scenario.acquisitions if 30 < a.cloud_cover < 90)
    world = simulation.World(scenario)
    write_scene(tmp_path / "whole", world.scene(acq, small), small, scenario.epsg)
    rows = blocks(small.height, 300)
    assert rows == [(0, 260), (260, 520), (520, 780)]
    thumbnails = {}
    for start, stop in reversed(rows):
        with SceneWriter(tmp_path / "blocks", small, scenario.epsg, (start, stop)) as writer:
            for row, strip in world.strips(acq, small, 128, (start, stop)):
                writer.write(row, strip)
        thumbnails[start] = writer.thumbnail
    assert not [p for p in (tmp_path / "blocks").iterdir() if not p.name.startswith(".")]  # pieces only
    for key in SIMULATED:
        assemble_cog(tmp_path / "blocks", small, scenario.epsg, key, [start for start, _ in rows])
    save_thumbnail(tmp_path / "blocks", [part for start, _ in rows for part in thumbnails[start]])
    whole = sorted(p.name for p in (tmp_path / "whole").iterdir())
    assert whole == sorted(p.name for p in (tmp_path / "blocks").iterdir())  # and no piece left
    for name in whole:
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "blocks" / name).read_bytes(), name


def test_strip_writer_refuses_gaps_and_leaves_no_files(scenario, tmp_path):
    tile = scenario.tiles[0]
    small = Tile(tile.mgrs, tile.x_min, tile.y_max, 64, 64, tile.origin_x, tile.origin_y)
    acq = scenario.acquisitions[0]
    world = simulation.World(scenario)
    with pytest.raises(ValueError, match="row=32 .* from row 0"):
        with SceneWriter(tmp_path / "gap", small, scenario.epsg) as writer:
            writer.write(32, world.scene(acq, small, (32, 64)))
    with pytest.raises(ValueError, match="strips ended at row 32 of 64"):
        with SceneWriter(tmp_path / "short", small, scenario.epsg) as writer:
            writer.write(0, world.scene(acq, small, (0, 32)))
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
    with pytest.raises(ValueError, match="strip_rows=3"):
        next(world.strips(acq, small, 3))
    with pytest.raises(ValueError, match=r"rows=\(0, 65\)"):
        world.scene(acq, small, (0, 65))
