"""geolesson.batching.ChipDataset and collate: each chip read on its own grid, batches in one buffer, labels."""

from __future__ import annotations

import json
import subprocess
import sys

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
import torch
from affine import Affine
from rasterio.features import rasterize
from torch.utils.data import DataLoader

from geolesson import batching, chips
from tests.fixtures import CHIP, S1_NODATA, ZONES, assert_refused, s1_chip_transform


def _labels():
    """Two squares and a triangle per city, drawn in each UTM zone, stored in EPSG:4326."""
    frames = []
    for city, (epsg, x0, y0) in ZONES.items():
        shapes = [shapely.box(x0 + 500, y0 - 3000, x0 + 2500, y0 - 1000),
                  shapely.box(x0 + 3000, y0 - 7000, x0 + 6000, y0 - 4100),
                  shapely.Polygon([(x0 + 100, y0 - 7600), (x0 + 6300, y0 - 7600), (x0 + 100, y0 - 5000)])]
        frames.append(gpd.GeoDataFrame({"class": [1, 2, 3]}, geometry=shapes, crs=epsg).to_crs(4326))
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=4326)


def test_image_equals_a_direct_window_read(scenes):
    items, _, index = scenes
    ds = batching.ChipDataset(index, ("vv", "vh"), items=items)
    assert len(ds) == len(index) == 4 * 6 * 5
    by_id = {it["id"]: it for it in items}
    for i in range(0, len(ds), 7):
        s = ds[i]
        row = index.iloc[i]
        assert s["image"].dtype == torch.float32 and s["image"].shape == (2, CHIP, CHIP)
        for c, key in enumerate(("vv", "vh")):
            with rasterio.open(by_id[row.item_id]["assets"][key]["href"]) as f:
                direct = f.read(1, window=((row.row_off, row.row_off + CHIP), (row.col_off, row.col_off + CHIP)))
            expected = np.where(direct == S1_NODATA, np.float32(np.nan), direct)
            got = s["image"][c].numpy()
            assert np.array_equal(np.isnan(got), np.isnan(expected))
            assert got[~np.isnan(got)].tobytes() == expected[~np.isnan(expected)].tobytes()  # bit for bit
        assert s["chip_id"] == row.chip_id and s["crs"] == ZONES[row.item_id.split("_")[1]][0]
        assert s["transform"] == tuple(s1_chip_transform(row))[:6]
        assert s["datetime"] == row.datetime.isoformat()
    assert torch.isnan(ds[0]["image"][:, :, :40]).all()  # the swath-edge nodata


def test_a_batch_holds_both_crs_with_their_own_transforms(scenes):
    items, _, index = scenes
    ds = batching.ChipDataset(index, ("vv", "vh"), items=items)
    loader = DataLoader(ds, batch_size=8, sampler=batching.RandomChipSampler(ds, seed=3),
                        collate_fn=batching.collate)
    batch = next(b for b in loader if len(set(b["crs"])) == 2)
    assert batch["image"].shape == (8, 2, CHIP, CHIP) and batch["image"].dtype == torch.float32
    assert set(batch["crs"]) == {32653, 32654}
    rows = index.set_index("chip_id")
    for chip_id, crs, t in zip(batch["chip_id"], batch["crs"], batch["transform"]):
        row = rows.loc[chip_id]
        assert crs == row["crs"] and t == tuple(s1_chip_transform({**row, "item_id": row["item_id"]}))[:6]
    assert len(batch["datetime"]) == 8 and isinstance(batch["datetime"][0], str)


def _same_pixels(a, b) -> bool:
    """Equal bit for bit, NaN where the other is NaN."""
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.tobytes() == b.tobytes()


def test_a_batch_read_at_once_equals_the_chips_read_one_by_one_without_a_copy(scenes):
    items, _, index = scenes
    ds = batching.ChipDataset(index, ("vv", "vh"), items=items, labels=_labels())
    picks = [0, 1, 2, 5, 31, 64, 90, len(ds) - 1]  # neighbours, both zones, nodata edge
    samples = ds.__getitems__(picks)
    assert any(np.isnan(s["image"].numpy()).any() for s in samples)
    for i, s in zip(picks, samples):
        one = ds[i]
        assert _same_pixels(s["image"], one["image"]) and torch.equal(s["mask"], one["mask"])
        assert {k: v for k, v in s.items() if k not in ("image", "mask")} == \
            {k: v for k, v in one.items() if k not in ("image", "mask")}
    batch = batching.collate(samples)
    assert _same_pixels(batch["image"], np.stack([ds[i]["image"].numpy() for i in picks]))
    assert batch["image"].data_ptr() == samples[0]["image"].data_ptr()  # the buffer, not a copy
    # a transform that replaces the images: collate copies them into a new batch
    ds.transform = lambda s: {**s, "image": s["image"] * 2}
    doubled = batching.collate(ds.__getitems__(picks))
    assert _same_pixels(doubled["image"], batch["image"] * 2)


def test_chips_over_the_scene_edge_read_like_read_chip(scenes):
    items, _, _ = scenes
    edge = chips.chip_index(items[:1], 300, partial="keep")  # 768 x 640: chips past both edges
    ds = batching.ChipDataset(edge, ("vv", "vh"), items=items)
    for i, row in enumerate(edge.to_dict("records")):
        expected = chips.read_chip(row, ("vv", "vh"), items=items).values
        assert _same_pixels(ds[i]["image"], expected)
    mixed = ds.__getitems__([0, len(ds) - 1])  # two sizes: one buffer per chip
    assert [tuple(s["image"].shape) for s in mixed] == [(2, 300, 300), (2, 168, 40)]
    reader = chips.ItemReader(items[0], ("vv", "vh"))
    over = {"item_id": items[0]["id"], "row_off": 600, "col_off": 500, "height": 300, "width": 300}
    out = np.empty((2, 300, 300), dtype=np.float32)
    reader.read_into((600, 500, 300, 300), out)  # past both edges: the outside is NaN
    assert _same_pixels(out, chips.read_chip(over, ("vv", "vh"), items=items).values)
    assert np.isnan(out[:, 168:, :]).all() and np.isnan(out[:, :, 140:]).all()
    with pytest.raises(ValueError, match=r"out must be a C-contiguous float32 array of shape \(2, 300, 300\)"):
        reader.read_into((0, 0, 300, 300), np.empty((2, 300, 300), dtype=np.float64))
    with pytest.raises(ValueError, match="not C-contiguous"):
        reader.read_into((0, 0, 300, 300), np.empty((2, 300, 600), dtype=np.float32)[:, :, ::2])


def test_a_training_process_needs_no_geopandas_or_pyproj(scenes, tmp_path):
    """read_index(geometry=False) + ChipDataset + a batch, in a fresh process: no geopandas,
    shapely or pyproj imported (each DataLoader worker would hold them too, and pyproj's import
    was 60-80 ms of the first batch)."""
    items, _, index = scenes
    chips.write_index(index, tmp_path / "index.parquet")
    (tmp_path / "items.json").write_text(json.dumps(items))
    script = f"""
import json, sys
from torch.utils.data import DataLoader
from geolesson import batching, chips
index = chips.read_index({str(tmp_path / "index.parquet")!r}, geometry=False)
items = json.load(open({str(tmp_path / "items.json")!r}))
ds = batching.ChipDataset(index, ("vv", "vh"), items=items)
batch = next(iter(DataLoader(ds, batch_size=4, collate_fn=batching.collate)))
assert batch["image"].shape == (4, 2, {CHIP}, {CHIP}), batch["image"].shape
print(sorted(m for m in ("geopandas", "shapely", "pyproj") if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_label_masks_equal_rasterize_on_the_chip_grid(scenes):
    items, _, index = scenes
    labels = _labels()
    ds = batching.ChipDataset(index, ("vv",), items=items, labels=labels)
    seen = set()
    for i in range(len(ds)):
        s = ds[i]
        row = index.iloc[i]
        shapes = [(g, c) for g, c in zip(labels.to_crs(row["crs"]).geometry, labels["class"])]
        expected = rasterize(shapes, out_shape=(CHIP, CHIP), transform=s1_chip_transform(row), fill=0,
                             dtype="int64")
        assert s["mask"].dtype == torch.int64 and s["mask"].shape == (CHIP, CHIP)
        np.testing.assert_array_equal(s["mask"].numpy(), expected)
        seen |= set(np.unique(expected).tolist())
    assert seen == {0, 1, 2, 3}
    batch = batching.collate([ds[0], ds[len(ds) - 1]])
    assert batch["mask"].shape == (2, CHIP, CHIP)


def _with_label_asset(items, arrays, tmp_path):
    """Each item gets a 20 m label raster (classes of the top-left pixel of each 2 x 2)."""
    out = []
    for item in items:
        classes = arrays[item["id"]]["classes"][::2, ::2]
        epsg, x0, y0 = ZONES[item["id"].split("_")[1]]
        path = tmp_path / f"{item['id']}_labels.tif"
        profile = {"driver": "GTiff", "width": classes.shape[1], "height": classes.shape[0], "count": 1,
                   "dtype": "uint8", "crs": f"EPSG:{epsg}", "transform": Affine(20, 0, x0, 0, -20, y0)}
        with rasterio.open(path, "w", **profile) as f:
            f.write(classes, 1)
        d = {**item, "assets": {**item["assets"], "labels": {
            "href": str(path), "proj:shape": list(classes.shape),
            "proj:transform": [20.0, 0.0, x0, 0.0, -20.0, y0], "roles": ["labels"]}}}
        out.append(d)
    return out


def test_masks_from_a_label_asset(scenes, tmp_path):
    items, arrays, index = scenes
    labelled = _with_label_asset(items, arrays, tmp_path)
    ds = batching.ChipDataset(index, ("vv",), items=labelled, labels="labels")
    for i in (0, 17, len(ds) - 1):
        row = index.iloc[i]
        classes = arrays[row.item_id]["classes"][::2, ::2]
        up = np.repeat(np.repeat(classes, 2, axis=0), 2, axis=1)
        np.testing.assert_array_equal(ds[i]["mask"].numpy(),
                                      up[row.row_off:row.row_off + CHIP, row.col_off:row.col_off + CHIP])


def test_bad_input(scenes, tmp_path):
    items, arrays, index = scenes
    with pytest.raises(ValueError, match="assets: item 'S1A_OSAKA_20230304' has no asset 'hh'"):
        batching.ChipDataset(index, ("vv", "hh"), items=items)
    odd = chips.chip_index(items[:1], 75)  # 75 px chips over a 20 m label grid
    with pytest.raises(ValueError, match="is not a multiple of the label grid.*multiples of 2"):
        batching.ChipDataset(odd, ("vv",), items=_with_label_asset(items[:1], arrays, tmp_path), labels="labels")
    with pytest.raises(KeyError, match="missing from items: \\['S1A_TOKYO_20230304', 'S1A_TOKYO_20230316'\\]"):
        batching.ChipDataset(index, ("vv",), items=items[:2])
    for bad in ((0.7, 0.3, 0.0), (1.2, -0.1, -0.1), (0.5, 0.5, 1.0)):
        with pytest.raises(ValueError, match="fraction must be in \\(0, 1\\)"):
            batching.spatial_split(index, bad)
    with pytest.raises(ValueError, match="add up to 1"):
        batching.spatial_split(index, (0.5, 0.2, 0.2))
    with pytest.raises(ValueError, match="gap must be a finite number >= 0, not -1"):
        batching.spatial_split(index, gap=-1)
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        batching.RandomChipSampler(10, seed=-1)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, not 0"):
        batching.RandomBlockBatchSampler(index, 0, seed=0)
    with pytest.raises(ValueError, match="block_size must be an integer >= 1, not 0"):
        batching.RandomBlockBatchSampler(index, 8, seed=0, block_size=0)
    with pytest.raises(ValueError, match="labels: the label frame has no column 'kind'"):
        batching.ChipDataset(index, ("vv",), items=items, labels=batching.VectorLabels(_labels(), "kind"))
    ds = batching.ChipDataset(index, ("vv",), items=items)
    with pytest.raises(IndexError, match="out of range"):
        ds[len(ds)]
    with pytest.raises(ValueError, match="different shapes"):
        batching.collate([{"image": torch.zeros(1, 4, 4)}, {"image": torch.zeros(1, 2, 4)}])


def test_init_opens_no_file_and_the_dataset_pickles(scenes):
    import pickle

    items, _, index = scenes
    chips.close_datasets()
    ds = batching.ChipDataset(index, {"sentinel-1-rtc": ("vh", "vv")}, items=items, labels=_labels())
    assert chips.files._cache() == {}
    back = pickle.loads(pickle.dumps(ds))
    np.testing.assert_array_equal(back[5]["image"].numpy(), ds[5]["image"].numpy())
    assert ds[5]["image"].shape == (2, CHIP, CHIP)


def _dataset(items, index, **kwargs):
    return batching.ChipDataset(index, kwargs.pop("assets", ("vv",)), items=items, **kwargs)


def _none_transform(sample):
    return None


# (id, call(items, index), expected, words the message must hold): one row per bad input
BAD_INPUTS = [
    ("assets-none", lambda it, ix: _dataset(it, ix, assets=None), TypeError, ["assets", "None"]),
    ("assets-int", lambda it, ix: _dataset(it, ix, assets=(1, 2)), TypeError, ["assets", "1"]),
    ("assets-empty", lambda it, ix: _dataset(it, ix, assets=()), ValueError, ["assets", "at least one"]),
    ("assets-unknown", lambda it, ix: _dataset(it, ix, assets=("vv", "hh")), ValueError, ["assets", "'hh'"]),
    ("assets-mapping-none", lambda it, ix: _dataset(it, ix, assets={"sentinel-1-rtc": None}),
     TypeError, ["assets", "None"]),
    ("index-none", lambda it, ix: _dataset(it, None), TypeError, ["index", "None"]),
    ("index-str", lambda it, ix: _dataset(it, "season.parquet"), TypeError, ["index", "'season.parquet'"]),
    ("index-no-window", lambda it, ix: _dataset(it, ix.drop(columns=["height"])), ValueError, ["index", "'height'"]),
    ("negative-height", lambda it, ix: _dataset(it, ix.assign(height=-CHIP)), ValueError,
     ["height", f"-{CHIP}", "chip", ">= 1"]),
    ("zero-width", lambda it, ix: _dataset(it, ix.assign(width=0)), ValueError, ["width", "0", ">= 1"]),
    ("negative-row-off", lambda it, ix: _dataset(it, ix.assign(row_off=-1)), ValueError, ["row_off", "-1", ">= 0"]),
    ("float-col-off", lambda it, ix: _dataset(it, ix.assign(col_off=0.5)), ValueError, ["col_off", "0.5"]),
    ("items-none", lambda it, ix: _dataset(None, ix), TypeError, ["items", "None"]),
    ("items-missing", lambda it, ix: _dataset(it[:2], ix), KeyError, ["missing from items", "S1A_TOKYO_20230304"]),
    ("transform-str", lambda it, ix: _dataset(it, ix, transform="normalize"), TypeError, ["transform", "'normalize'"]),
    ("transform-returns-none", lambda it, ix: _dataset(it, ix, transform=_none_transform)[0],
     TypeError, ["transform", "_none_transform", "None", "sample"]),
    ("transform-returns-none-batch", lambda it, ix: _dataset(it, ix, transform=_none_transform).__getitems__([0, 1]),
     TypeError, ["transform", "None"]),
    ("labels-int", lambda it, ix: _dataset(it, ix, labels=5), ValueError, ["labels", "int"]),
    ("index-float", lambda it, ix: _dataset(it, ix)[1.0], TypeError, ["int", "float"]),
    ("index-out-of-range", lambda it, ix: _dataset(it, ix)[10**6], IndexError, ["1000000", "out of range"]),
    ("collate-empty", lambda it, ix: batching.collate([]), ValueError, ["at least one sample"]),
    ("collate-tensors", lambda it, ix: batching.collate([torch.zeros(1, 2, 2)]), TypeError,
     ["samples", "dict", "Tensor"]),
    ("collate-none", lambda it, ix: batching.collate(None), TypeError, ["samples", "None"]),
    ("collate-shapes",
     lambda it, ix: batching.collate([{"image": torch.zeros(1, 4, 4)}, {"image": torch.zeros(1, 2, 4)}]),
     ValueError, ["'image'", "different shapes"]),
]


@pytest.mark.parametrize("call, expected, words", [pytest.param(*c[1:], id=c[0]) for c in BAD_INPUTS])
def test_bad_input_is_refused_naming_the_parameter_and_value(scenes, call, expected, words):
    items, _, index = scenes
    assert_refused(lambda: call(items, index), expected, words)
