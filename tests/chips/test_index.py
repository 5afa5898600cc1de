"""geolesson.chips.index: chip_index's grid, statistics against a brute-force count, filters, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geolesson import chips, stitching
from tests.fixtures import (
    CLOUD,
    METADATA_EPSG,
    S1_NODATA,
    X0,
    Y0,
    metadata_item,
    s1_scene,
    s2_scene,
    write_s1_band,
)


def brute_stats(scl, shape10, chip_size, partial):
    """Per-chip Python loop: SCL pixels touched by each chip footprint (20 m over 10 m)."""
    h, w = shape10
    nr = h // chip_size if partial == "drop" else -(-h // chip_size)
    nc = w // chip_size if partial == "drop" else -(-w // chip_size)
    out = {}
    for r in range(nr):
        for c in range(nc):
            r0, c0 = r * chip_size, c * chip_size
            r1, c1 = min(r0 + chip_size, h), min(c0 + chip_size, w)
            block = scl[r0 // 2:-(-r1 // 2), c0 // 2:-(-c1 // 2)]
            n = block.size
            nod = int((block == 0).sum())
            cld = int(np.isin(block, CLOUD).sum())
            out[(r, c)] = (nod / n, cld / (n - nod) if n > nod else 0.0, r1 - r0, c1 - c0)
    return out


def assert_matches_brute_force(idx, scl, shape10, chip_size, partial):
    expected = brute_stats(scl, shape10, chip_size, partial)
    assert len(idx) == len(expected)
    for r in idx.itertuples():
        nod, cld, hh, ww = expected[(r.row, r.col)]
        assert (r.height, r.width) == (hh, ww)
        assert r.nodata_fraction == pytest.approx(nod, abs=1e-12)
        assert r.cloud_fraction == pytest.approx(cld, abs=1e-12)


@pytest.mark.parametrize("partial", ["drop", "keep"])
@pytest.mark.parametrize("chip_size", [256, 100, 64])
def test_statistics_equal_brute_force(scene, partial, chip_size):
    item, arrays = scene
    idx = chips.chip_index(item, chip_size, partial=partial)
    assert_matches_brute_force(idx, arrays["scl"], (1000, 700), chip_size, partial)
    for r in idx.itertuples():
        assert r.chip_id == f"sentinel-2-l2a_T_1_{chip_size}px_{r.row}_{r.col}"
        assert (r.row_off, r.col_off) == (r.row * chip_size, r.col * chip_size)


def test_odd_sizes_keep_partial(tmp_path):
    # 10 m 1001 x 703 with SCL 501 x 352: the last SCL pixel is half outside the grid
    item, arrays = s2_scene(tmp_path, shape10=(1001, 703), with_swir=False)
    idx = chips.chip_index(item, 256, partial="keep")
    assert len(idx) == 4 * 3
    assert sorted(set(idx.height)) == [233, 256] and sorted(set(idx.width)) == [191, 256]
    assert_matches_brute_force(idx, arrays["scl"], (1001, 703), 256, "keep")
    assert len(chips.chip_index(item, 256, partial="drop")) == 3 * 2


@pytest.mark.parametrize("chip_size", [64, 200, 300])
def test_tall_scene_read_in_several_strips(tmp_path, chip_size, monkeypatch):
    # SCL 1051 x 151 read in strips of about 200 rows (whole rows of chips): the chips that
    # start, follow or end a strip are counted like the others
    monkeypatch.setattr(chips.statistics, "STRIP_ROWS", 200)
    item, arrays = s2_scene(tmp_path, shape10=(2101, 301), with_swir=False, bands=("red",))
    for partial in ("drop", "keep"):
        idx = chips.chip_index(item, chip_size, partial=partial)
        assert_matches_brute_force(idx, arrays["scl"], (2101, 301), chip_size, partial)


def test_nodata_edges_all_cloud_and_empty_chip(tmp_path):
    scl = np.full((500, 350), 9, dtype="uint8")  # all cloud (high probability)
    scl[:, :64] = 0  # a no-data swath edge: chips in column 0 are half empty
    scl[384:, :] = 0  # bottom chips (and the partial row) entirely without data
    item, _ = s2_scene(tmp_path, scl=scl, with_swir=False)
    idx = chips.chip_index(item, 256, partial="keep")
    assert_matches_brute_force(idx, scl, (1000, 700), 256, "keep")
    assert not idx[["nodata_fraction", "cloud_fraction"]].isna().any().any()
    empty = idx[idx.nodata_fraction == 1]
    assert len(empty) > 0 and (empty.cloud_fraction == 0).all()  # documented: 0, not NaN
    full = idx[idx.nodata_fraction == 0]
    assert len(full) > 0 and (full.cloud_fraction == 1).all()
    half = idx[(idx.row == 0) & (idx.col == 0)].iloc[0]
    assert half.nodata_fraction == pytest.approx(0.5) and half.cloud_fraction == 1.0


def test_filters_and_cloud_classes(scene):
    item, arrays = scene
    idx = chips.chip_index(item, 100)
    f = chips.chip_index(item, 100, max_nodata=0.05, max_cloud=0.3)
    expected = idx[(idx.nodata_fraction <= 0.05) & (idx.cloud_fraction <= 0.3)]
    assert list(f.chip_id) == list(expected.chip_id)
    only9 = chips.chip_index(item, 100, cloud_classes=(9,))
    r = only9.iloc[0]
    block = arrays["scl"][:50, :50]
    assert r.cloud_fraction == pytest.approx((block == 9).sum() / (block != 0).sum())
    none = chips.chip_index(item, 100, max_nodata=0.0, max_cloud=0.0)
    assert len(none) == 0 and list(none.columns) == list(idx.columns)


def test_grid_covers_scene_without_overlap(scene):
    item, _ = scene
    for partial, covered in (("keep", (1000, 700)), ("drop", (768, 512))):
        idx = chips.chip_index(item, 256, partial=partial)
        count = np.zeros((1000, 700), dtype=int)
        for r in idx.itertuples():
            count[r.row_off:r.row_off + r.height, r.col_off:r.col_off + r.width] += 1
        assert count.max() == 1
        assert count[:covered[0], :covered[1]].min() == 1 and count.sum() == covered[0] * covered[1]


def test_columns_dtypes_and_footprints(scene):
    import geopandas as gpd
    from pyproj import Transformer

    item, _ = scene
    idx = chips.chip_index(item, 256, partial="keep")
    assert isinstance(idx, gpd.GeoDataFrame) and idx.crs.to_epsg() == 4326
    assert list(idx.columns) == [*chips.INDEX_COLUMNS, "geometry"]
    for c in ("crs", "col", "row", "col_off", "row_off", "width", "height"):
        assert idx[c].dtype == np.int64, c
    assert str(idx["datetime"].dt.tz) == "UTC"
    assert idx["datetime"].iloc[0] == pd.Timestamp("2023-07-02T09:06:19Z")
    assert (idx["crs"] == 32635).all() and (idx.collection == "sentinel-2-l2a").all()
    # the footprint's corners are the exact UTM window corners, reprojected
    to_utm = Transformer.from_crs(4326, 32635, always_xy=True)
    r = idx.iloc[-1]
    xs, ys = to_utm.transform(*np.asarray(r.geometry.exterior.coords).T)
    assert min(xs) == pytest.approx(X0 + r.col_off * 10, abs=1e-4)
    assert max(xs) == pytest.approx(X0 + (r.col_off + r.width) * 10, abs=1e-4)
    assert max(ys) == pytest.approx(Y0 - r.row_off * 10, abs=1e-4)
    assert min(ys) == pytest.approx(Y0 - (r.row_off + r.height) * 10, abs=1e-4)
    assert len(r.geometry.exterior.coords) == 17 and r.geometry.is_valid
    # neighbouring chips touch and do not overlap
    a, b = idx.geometry.iloc[0], idx.geometry.iloc[1]
    assert a.intersection(b).area < 1e-9 * a.area


def test_proj_code_and_item_list(tmp_path):
    a, _ = s2_scene(tmp_path, item_id="A", epsg_field=("proj:code", "EPSG:32635"), with_swir=False)
    b, _ = s2_scene(tmp_path, item_id="B", seed=1, with_swir=False)
    idx = chips.chip_index([a, b.to_dict()], 256)
    assert list(idx.item_id.unique()) == ["A", "B"] and len(idx) == 12 and (idx["crs"] == 32635).all()
    # merging indexes is concatenation
    merged = pd.concat([chips.chip_index(a, 256), chips.chip_index(b, 256)], ignore_index=True)
    pd.testing.assert_frame_equal(pd.DataFrame(merged), pd.DataFrame(idx))


@pytest.mark.parametrize("chip_size, match", [
    (0, "chip_size must be a positive integer"), (-5, "chip_size must be a positive integer"),
    (2.5, "chip_size must be a positive integer"), (1001, "larger than the scene"),
    (701, "larger than the scene"), (255, "whole number"),
])
def test_bad_chip_size(scene, chip_size, match):
    with pytest.raises(ValueError, match=match):
        chips.chip_index(scene[0], chip_size)


def test_bad_arguments(scene):
    item, _ = scene
    with pytest.raises(ValueError, match="partial must be one of"):
        chips.chip_index(item, partial="pad")
    with pytest.raises(ValueError, match="max_cloud must be None or a fraction"):
        chips.chip_index(item, max_cloud=1.5)
    with pytest.raises(ValueError, match="cloud_classes: \\[12\\]"):
        chips.chip_index(item, cloud_classes=(9, 12))


def test_item_without_scl(scene):
    item, arrays = scene
    del item.assets["scl"]
    with pytest.raises(ValueError, match="no asset 'scl'"):
        chips.chip_index(item, statistics="scl")
    # "auto" falls back to the nodata (0) of the reference asset, red
    idx = chips.chip_index(item, 100)
    red = arrays["red"]
    for r in idx.itertuples():
        assert r.nodata_fraction == (red[r.row_off:r.row_off + 100, r.col_off:r.col_off + 100] == 0).mean()
    assert idx.cloud_fraction.isna().all() and (idx.nodata_fraction[idx.row_off == 0].iloc[0] > 0)


def test_scl_file_not_the_size_its_item_says(scene):
    item, _ = scene
    item.assets["scl"].extra_fields["proj:shape"] = [501, 350]  # the file is 500 x 350
    with pytest.raises(ValueError, match=r"scl.tif' is 500 x 350 pixels, but item 'T_1', asset 'scl', says "
                                         r"proj:shape \[501, 350\]"):
        chips.chip_index(item)


def test_empty_items_and_bad_statistics(scene):
    with pytest.raises(ValueError, match="items is empty.*search that matched no item"):
        chips.chip_index([])
    with pytest.raises(ValueError, match="statistics must be one of"):
        chips.chip_index(scene[0], statistics="cloud")


def test_crs_not_in_metres(tmp_path):
    item, _ = s2_scene(tmp_path, epsg_field=("proj:epsg", 4326), with_swir=False)
    with pytest.raises(ValueError, match="projected CRS in metres"):
        chips.chip_index(item)
    item2, _ = s2_scene(tmp_path, item_id="F", epsg_field=("proj:code", "EPSG:2227"), with_swir=False)
    with pytest.raises(ValueError, match="US survey foot|projected CRS in metres"):  # California, US feet
        chips.chip_index(item2)


def test_unknown_epsg_code(tmp_path, capfd):
    item, _ = s2_scene(tmp_path, epsg_field=("proj:epsg", 999999), with_swir=False)
    with pytest.raises(ValueError, match="EPSG code 999999 is not a known CRS"):
        chips.chip_index(item)
    assert "ERROR" not in capfd.readouterr().err  # GDAL's own message is not printed as well


def test_item_without_proj(tmp_path):
    item, _ = s2_scene(tmp_path, epsg_field=None, with_swir=False)
    with pytest.raises(ValueError, match="no proj:epsg or proj:code"):
        chips.chip_index(item)
    item2, _ = s2_scene(tmp_path, item_id="S", with_swir=False)
    del item2.assets["scl"].extra_fields["proj:transform"]
    with pytest.raises(ValueError, match="asset 'scl': no proj:transform"):
        chips.chip_index(item2)
    del item2.assets["red"].extra_fields["proj:shape"]
    with pytest.raises(ValueError, match="asset 'red': no proj:shape"):
        chips.chip_index(item2)


def test_mirror_item_partial_orbit(mirror):
    import time

    import pystac_client

    from geolesson.mirror.sentinel2.scenario import load_scenario

    # a crop of 35SNV on a date its swath's edge crosses it
    client = pystac_client.Client.open(mirror["api_url"])
    found = list(client.search(collections=["sentinel-2-l2a"], max_items=1,
                               filter="s2:nodata_pixel_percentage > 0 AND mgrs:grid_square = 'NV'").items())
    assert len(found) == 1
    t0 = time.perf_counter()
    idx = chips.chip_index(found[0], 256)
    elapsed = time.perf_counter() - t0
    print(f"chip_index on one mirror item: {elapsed * 1000:.0f} ms")
    height, width = found[0].assets["red"].extra_fields["proj:shape"]
    crop = next(t for t in load_scenario().tiles if t.mgrs == "35SNV")
    assert (height, width) == (crop.height, crop.width)
    assert len(idx) == (height // 256) * (width // 256) >= 28
    assert idx.nodata_fraction.max() > 0 and idx.nodata_fraction.mean() > 0
    da = chips.read_chip(idx.iloc[27], ("red", "swir16"), items=found)
    assert da.shape == (2, 256, 256) and da.dtype == np.float32


def test_sentinel1_nodata_statistics(tmp_path):
    item, arrays = s1_scene(tmp_path / "S1A_OSAKA", "S1A_OSAKA")
    arrays["vh"][600:, 300:] = S1_NODATA  # vh has more nodata than vv
    write_s1_band(tmp_path / "S1A_OSAKA", "vh", arrays["vh"])
    idx = chips.chip_index(item, 128, partial="keep")
    assert (idx.reference_asset == "vv").all() and (idx["crs"] == 32653).all()
    assert idx.cloud_fraction.isna().all() and (idx.collection == "sentinel-1-rtc").all()
    for key, index in (("vv", idx), ("vh", chips.chip_index(item, 128, partial="keep", nodata_asset="vh"))):
        a = arrays[key]
        for r in index.itertuples():
            window = a[r.row_off:r.row_off + r.height, r.col_off:r.col_off + r.width]
            assert r.nodata_fraction == pytest.approx((window == S1_NODATA).mean(), abs=1e-12)
    assert idx.nodata_fraction.iloc[0] == pytest.approx(40 / 128)
    assert len(chips.chip_index(item, 128, max_nodata=0.0)) == 6 * 4  # first column of chips dropped
    with pytest.raises(ValueError, match="max_cloud=0.1 needs cloud statistics"):
        chips.chip_index(item, max_cloud=0.1)
    del item["assets"]["vv"]["raster:bands"][0]["nodata"]
    with pytest.raises(ValueError, match="asset 'vv' has no raster:bands nodata"):
        chips.chip_index(item)


def test_overlap_grid_covers_the_scene_with_full_chips_inside_it():
    item = metadata_item((300, 430))
    grid = chips.overlap_grid(item, chip_size=64, overlap=24)
    assert stitching.overlap_grid is chips.overlap_grid  # the name the chapters use
    assert (grid.row_off + grid.height).max() == 300 and (grid.col_off + grid.width).max() == 430
    assert set(grid.width) == {64} and grid.row_off.min() == 0 and grid.col_off.min() == 0
    starts = sorted(set(grid.col_off))
    assert np.diff(starts)[:-1].tolist() == [40] * (len(starts) - 2)  # stride = 64 - 24
    assert grid.chip_id.is_unique
    assert list(grid.sort_values(["row_off", "col_off"]).index) == list(grid.index)  # row order
    # footprint of the first chip in lon/lat, from the transform: its UTM corner
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(METADATA_EPSG, 4326, always_xy=True).transform(576000.0, 4010680.0)
    x0, _, _, y1 = grid.geometry.iloc[0].bounds
    assert x0 == pytest.approx(lon, abs=1e-3) and y1 == pytest.approx(lat, abs=1e-3)
