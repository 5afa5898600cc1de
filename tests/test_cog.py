"""geolesson.cog on COGs the tests make."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from geolesson import cog
from tests.fixtures import random_cog


@pytest.fixture
def small_cog(tmp_path):
    path = tmp_path / "small.tif"
    random_cog(path, shape=(1000, 700), blocksize=256, overview_count=2)
    return path


def test_inspect_reports_the_layout_it_was_written_with(small_cog):
    info = cog.inspect(small_cog)
    assert (info.height, info.width, info.count, info.dtype) == (1000, 700, 1, "uint16")
    assert info.block_shape == (256, 256)
    assert info.blocks == (4, 3)
    assert info.overviews == [2, 4]
    assert info.overview_shapes == [(500, 350), (250, 175)]
    assert info.compression == "deflate"
    assert info.crs == "EPSG:32635" and info.resolution == (10.0, 10.0)
    assert info.bounds == (500000.0, 3990000.0, 507000.0, 4000000.0)
    assert info.nodata == 0
    assert info.file_size == small_cog.stat().st_size
    assert info.uncompressed_size == 1000 * 700 * 2
    assert info.is_valid_cog and info.cog_errors == []


def test_inspect_flags_a_plain_striped_geotiff(tmp_path):
    path = tmp_path / "striped.tif"
    data = np.ones((1, 1200, 900), dtype="uint8")
    with rasterio.open(path, "w", driver="GTiff", width=900, height=1200, count=1, dtype="uint8",
                       crs="EPSG:32635", transform=rasterio.transform.from_origin(0, 0, 10, 10)) as dst:
        dst.write(data)
    info = cog.inspect(path)
    assert not info.is_valid_cog and info.cog_errors
    assert info.block_shape[1] == 900  # strips: one block is a full row band
    assert info.overviews == []


def test_inspect_names_the_href_that_failed(tmp_path):
    missing = tmp_path / "nope.tif"
    with pytest.raises(rasterio.errors.RasterioIOError, match="nope.tif"):
        cog.inspect(missing)


@pytest.mark.parametrize("window", [
    Window(0, 0, 256, 256), Window(0, 0, 257, 256), Window(255, 255, 2, 2), Window(100, 900, 600, 100),
    Window(600, 0, 500, 500), Window(0, 0, 700, 1000), Window(699, 999, 1, 1),
])
def test_blocks_touched_matches_brute_force(small_cog, window):
    info = cog.inspect(small_cog)
    r0, c0 = int(window.row_off), int(window.col_off)
    r1, c1 = min(info.height, r0 + int(window.height)), min(info.width, c0 + int(window.width))
    brute = {(r // 256, c // 256) for r, c in itertools.product(range(r0, r1), range(c0, c1))}
    assert cog.blocks_touched(info, window) == len(brute)


def test_blocks_touched_outside_the_image_is_zero(small_cog):
    assert cog.blocks_touched(cog.inspect(small_cog), Window(800, 0, 10, 10)) == 0


def test_count_reads_refuses_hrefs_off_the_mirror(mirror, small_cog):
    with pytest.raises(ValueError, match="not on the offline mirror"):
        with cog.count_reads(str(small_cog)):
            pass


def test_count_reads_counts_a_window_read(mirror, local_items):
    href = mirror["files_url"] + local_items[0]["assets"]["nir"]["href"].lstrip("/")
    info = cog.inspect(href)
    from geolesson import gdal

    with rasterio.Env(**gdal.GDAL_HTTP_OPTIONS):
        gdal._drop_gdal_http_connections()  # and GDAL's /vsicurl/ cache: earlier tests read this file
        with cog.count_reads(href) as counted:
            with rasterio.open(href) as ds:
                ds.read(1, window=Window(0, 0, 512, 512))
    assert 1 <= counted.requests <= 4
    assert 0 < counted.bytes < info.file_size / 4
