"""geolesson.chips.reads: chip reads equal the files' own windows, scaled; errors name the href."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from geolesson import chips
from geolesson.indices import reflectance
from tests.fixtures import (
    S1_NODATA,
    TOKYO,
    X0,
    Y0,
    s1_scene,
)


def _expected(arrays, item, key, r):
    a = arrays[key]
    if key == "swir16":
        a = np.repeat(np.repeat(a, 2, axis=0), 2, axis=1)
    dn = a[r.row_off:r.row_off + r.height, r.col_off:r.col_off + r.width]
    return reflectance(dn, item.assets[key])


def test_read_chip_equals_full_array(scene):
    item, arrays = scene
    idx = chips.chip_index(item, 256, partial="keep")
    assets = ("red", "nir", "swir16")
    for _, r in idx.iterrows():
        da = chips.read_chip(r, assets, items={item.id: item})
        assert da.dims == ("band", "y", "x") and da.dtype == np.float32
        assert da.shape == (3, r.height, r.width) and list(da.band.values) == list(assets)
        for i, key in enumerate(assets):
            np.testing.assert_array_equal(da.values[i], _expected(arrays, item, key, r))
        assert da.rio.crs.to_epsg() == 32635
        assert da.x.values[0] == X0 + (r.col_off + 0.5) * 10 and da.y.values[0] == Y0 - (r.row_off + 0.5) * 10
        assert da.rio.transform().c == X0 + r.col_off * 10
        assert da.attrs["chip_id"] == r.chip_id
    assert np.isnan(chips.read_chip(idx.iloc[0], items=item).values[0, :3, :5]).all()  # nodata -> NaN


def test_read_chips_one_pass(scene):
    item, arrays = scene
    idx = chips.chip_index(item, 128, partial="keep")
    some = idx.iloc[[0, 3, 7, len(idx) - 1]]
    out = chips.read_chips(some, ("green", "swir16"), items=[item])
    assert len(out) == 4
    for (_, r), da in zip(some.iterrows(), out):
        for i, key in enumerate(("green", "swir16")):
            np.testing.assert_array_equal(da.values[i], _expected(arrays, item, key, r))
    full = idx[(idx.width == 128) & (idx.height == 128)].iloc[:5]
    st = chips.read_chips(full, ("red", "blue"), items=item, stack=True)
    assert st.dims == ("chip", "band", "y", "x") and st.shape == (5, 2, 128, 128)
    assert list(st.chip.values) == list(full.chip_id) and st.rio.crs.to_epsg() == 32635
    for j, (_, r) in enumerate(full.iterrows()):
        np.testing.assert_array_equal(st.values[j, 1], _expected(arrays, item, "blue", r))
    with pytest.raises(ValueError, match="one size"):
        chips.read_chips(some, items=item, stack=True)


def _overlapping_windows(height, width, chip=128, stride=96):
    """A row of overlapping chips, the next row's first ones, chips over the right and
    bottom edges, and a far one: shuffled, as a batch might hold them."""
    windows = [(0, c, chip, chip) for c in range(0, 5 * stride, stride)]
    windows += [(stride, 0, chip, chip), (stride, stride, chip, chip)]
    windows += [(height - 60, width - 50, chip, chip), (height - 60, width - 50 - stride, chip, chip)]
    windows += [(height // 2 + 7, 3, chip, chip)]
    order = np.random.default_rng(0).permutation(len(windows))
    return [windows[i] for i in order]


@pytest.mark.parametrize("kind", ["sentinel-2", "sentinel-1"])
def test_read_many_equals_read_into_with_fewer_reads(scene, tmp_path, monkeypatch, kind):
    """Neighbouring chips share one read per asset; the pixels are read_into's, bit for bit:
    scaled DN and a 20 m band upsampled (Sentinel-2), float32 with nodata (Sentinel-1),
    chips over the edges padded with NaN."""
    if kind == "sentinel-2":
        item, _ = scene
        assets = ("red", "nir", "swir16")
    else:
        item, _ = s1_scene(tmp_path / "S1A_OSAKA", "S1A_OSAKA", TOKYO)
        assets = ("vv", "vh")
    reader = chips.ItemReader(item, assets)
    windows = _overlapping_windows(reader.ref.height, reader.ref.width)
    one_by_one = [np.empty((len(assets), 128, 128), dtype=np.float32) for _ in windows]
    for w, out in zip(windows, one_by_one):
        reader.read_into(w, out)
    reads = []
    counted = chips.reads.read_window
    monkeypatch.setattr(chips.reads, "read_window", lambda *a: reads.append(a) or counted(*a))
    together = [np.full((len(assets), 128, 128), 7, dtype=np.float32) for _ in windows]
    reader.read_many(windows, together)
    for a, b in zip(one_by_one, together):
        assert a.tobytes() == b.tobytes()  # NaN in the same places, every other bit equal
    assert any(np.isnan(a).any() for a in together)
    # groups: the first row's 5 chips, the next row's 2 (with the first row they would read
    # more pixels than chip by chip), the 2 over the corner, and the far one alone, which
    # read_into reads (Sentinel-1's float32 straight into its buffer, not through read_window)
    groups = 3 if kind == "sentinel-1" else 4
    assert len(reads) == groups * len(assets)


def test_read_many_checks_its_arguments(scene):
    item, _ = scene
    reader = chips.ItemReader(item, ("red", "nir"))
    window = (0, 0, 64, 64)
    with pytest.raises(ValueError, match="one entry per chip, got 2 windows and 1 outs"):
        reader.read_many([window, window], [np.empty((2, 64, 64), dtype=np.float32)])
    with pytest.raises(ValueError, match=r"out must be a C-contiguous float32 array of shape \(2, 64, 64\)"):
        reader.read_many([window], [np.empty((3, 64, 64), dtype=np.float32)])
    with pytest.raises(ValueError, match="lies wholly outside"):
        reader.read_many([(5000, 0, 64, 64)], [np.empty((2, 64, 64), dtype=np.float32)])


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_lookup_table_scaling_equals_reflectance(dtype):
    """Large windows are scaled through a lookup table; small ones with reflectance(): same values."""
    asset = {"raster:bands": [{"scale": 0.0001, "offset": -0.1, "nodata": 0}]}
    info = np.iinfo(dtype)
    big = np.random.default_rng(1).integers(0, info.max, size=(700, 1000), endpoint=True).astype(dtype)
    big[0, :10] = 0
    small = big[:40, :40]
    for window in (big, small):
        out = np.empty(window.shape, dtype=np.float32)
        chips.reads._scaler(window, asset)(window, out)
        np.testing.assert_array_equal(out, reflectance(window, asset))
    assert np.isnan(out[0, :10]).all()


def test_failed_read_names_href(scene, tmp_path):
    item, _ = scene
    idx = chips.chip_index(item, 256)
    broken = item.clone()
    bad = str(tmp_path / "missing" / "B04.tif")
    broken.assets["red"].href = bad
    chips.close_datasets()
    with pytest.raises(OSError, match="missing/B04.tif"):
        chips.read_chip(idx.iloc[0], ("red",), items=broken)
    broken.assets["scl"].href = str(tmp_path / "missing" / "SCL.tif")
    with pytest.raises(OSError, match="missing/SCL.tif"):
        chips.chip_index(broken)
    with pytest.raises(KeyError, match="not among"):
        chips.read_chip(idx.iloc[0], items=[])


def test_reads_without_scale_are_physical_float32(tmp_path):
    item, arrays = s1_scene(tmp_path / "S1A_OSAKA", "S1A_OSAKA", TOKYO)
    idx = chips.chip_index(item, 128, partial="keep")
    for _, r in idx.iloc[[0, 5, len(idx) - 1]].iterrows():
        da = chips.read_chip(r, ("vv", "vh"), items=item)
        assert da.name == "value" and da.dtype == np.float32 and da.rio.crs.to_epsg() == 32654
        for i, key in enumerate(("vv", "vh")):
            with rasterio.open(item["assets"][key]["href"]) as ds:
                direct = ds.read(1, window=((r.row_off, r.row_off + r.height), (r.col_off, r.col_off + r.width)))
            expected = np.where(direct == S1_NODATA, np.float32(np.nan), direct)
            np.testing.assert_array_equal(da.values[i], expected)  # NaN == NaN here; bit for bit otherwise
        arr = chips.read_chip_array(r, ("vv", "vh"), items={item["id"]: item})
        np.testing.assert_array_equal(arr.data, da.values)
        assert arr.epsg == 32654 and tuple(arr.transform)[:6] == tuple(da.rio.transform())[:6]
    assert np.isnan(chips.read_chip(idx.iloc[0], ("vv",), items=item).values[0, :, :40]).all()


def test_windows_outside_or_empty_are_errors(tmp_path):
    item, arrays = s1_scene(tmp_path / "S1A_OSAKA", "S1A_OSAKA")  # 768 x 640
    row = {"item_id": item["id"], "row_off": 0, "col_off": 0, "height": 128, "width": 128}
    for bad, match in (({"row_off": 5000}, "row_off=5000, col_off=0: the window rows \\[5000, 5128\\)"),
                       ({"col_off": -300}, "col_off=-300: .* lies wholly outside item 'S1A_OSAKA'"),
                       ({"height": 0}, "height=0: a chip window needs a positive"),
                       ({"width": -2}, "width=-2")):
        with pytest.raises(ValueError, match=match):
            chips.read_chip({**row, **bad}, ("vv",), items=item)
    # a window over the edge keeps its documented NaN padding
    da = chips.read_chip({**row, "row_off": 700, "col_off": -64}, ("vv",), items=item)
    assert np.isnan(da.values[0, 68:]).all() and np.isnan(da.values[0, :, :64]).all()
    np.testing.assert_array_equal(da.values[0, :68, 104:], arrays["vv"][700:, 40:64])
