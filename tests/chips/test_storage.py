"""geolesson.chips.storage: the chip index as GeoParquet, one file or a folder per item."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geolesson import chips
from tests.fixtures import (
    TOKYO,
    s1_scene,
    s2_scene,
)


def _same(a, b):
    a = a.sort_values("chip_id").reset_index(drop=True)
    b = b.sort_values("chip_id").reset_index(drop=True)
    assert a.crs == b.crs
    assert dict(a.dtypes) == dict(b.dtypes)
    pd.testing.assert_frame_equal(pd.DataFrame(a.drop(columns="geometry")), pd.DataFrame(b.drop(columns="geometry")))
    assert a.geometry.geom_equals_exact(b.geometry, tolerance=0).all()


@pytest.mark.parametrize("partition", [False, True])
def test_geoparquet_round_trip(tmp_path, partition):
    a, _ = s2_scene(tmp_path, item_id="A", with_swir=False)
    b, _ = s2_scene(tmp_path, item_id="B", seed=1, with_swir=False)
    idx = chips.chip_index([a, b], 256, partial="keep")
    path = tmp_path / ("index" if partition else "index.parquet")
    chips.write_index(idx, path, partition_by_item=partition)
    if partition:
        assert sorted(p.name for p in path.iterdir()) == ["item_id=A", "item_id=B"]
        assert (path / "item_id=A" / "part.parquet").is_file()
    back = chips.read_index(path)
    assert back.crs.to_epsg() == 4326
    for c in ("crs", "col", "row", "col_off", "row_off", "width", "height"):
        assert back[c].dtype == np.int64
    assert str(back["datetime"].dt.tz) == "UTC"
    _same(idx, back)
    plain = chips.read_index(path, geometry=False)  # for training processes: no geopandas
    assert type(plain) is pd.DataFrame and "geometry" not in plain.columns
    pd.testing.assert_frame_equal(plain, pd.DataFrame(idx.drop(columns="geometry")))


def test_read_index_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="no chip index"):
        chips.read_index(tmp_path / "nope.parquet")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="item_id="):
        chips.read_index(tmp_path / "empty")


def test_read_index_of_files_that_are_not_indexes(tmp_path):
    text = tmp_path / "notes.parquet"
    text.write_text("not parquet")
    with pytest.raises(ValueError, match="notes.parquet is not a Parquet file"):
        chips.read_index(text)
    plain = tmp_path / "plain.parquet"
    pd.DataFrame({"a": [1, 2]}).to_parquet(plain)
    for geometry in (True, False):
        with pytest.raises(ValueError, match="plain.parquet is a Parquet file without a GeoParquet geometry"):
            chips.read_index(plain, geometry=geometry)
    with pytest.raises(ValueError, match="notes.parquet is not a Parquet file"):
        chips.read_index(text, geometry=False)


def test_indexes_of_collections_zones_and_sizes_merge(tmp_path):
    s2, _ = s2_scene(tmp_path, item_id="T_1", with_swir=False)
    osaka, _ = s1_scene(tmp_path / "S1A_OSAKA", "S1A_OSAKA")
    tokyo, _ = s1_scene(tmp_path / "S1A_TOKYO", "S1A_TOKYO", TOKYO, seed=1)
    parts = [chips.chip_index(s2, 256), chips.chip_index([osaka, tokyo], 256),
             chips.chip_index([osaka, tokyo], 128), chips.chip_index(s2, 128)]
    merged = pd.concat(parts, ignore_index=True)
    assert merged["chip_id"].is_unique and len(merged) == sum(map(len, parts))
    assert sorted(merged["crs"].unique()) == [32635, 32653, 32654]
    assert set(merged.reference_asset) == {"red", "vv"} and set(merged.chip_size) == {128, 256}
    assert all((p.dtypes == parts[0].dtypes).all() for p in parts)
    assert merged.crs.to_epsg() == 4326
    back = chips.read_index(chips.write_index(merged, tmp_path / "merged.parquet"))
    _same(merged, back)
    # the row's reference_asset picks the grid: S1 and S2 rows read with no reference_asset=
    s1_row = merged[merged.collection == "sentinel-1-rtc"].iloc[-1]
    assert chips.read_chip(s1_row, ("vv", "vh"), items=[osaka, tokyo]).shape == (2, 128, 128)
