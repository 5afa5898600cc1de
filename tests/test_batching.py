"""geolesson.batching: ChipDataset, samplers, collate, spatial splits, normalization.

Fixtures are made here: Sentinel-1 RTC-like COGs (float32 gamma0, nodata -32768) in two UTM
zones (Osaka EPSG:32653, Tokyo EPSG:32654), two dates each, and label polygons.
"""

from __future__ import annotations

import itertools
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
from torch.utils.data import DataLoader, get_worker_info

from geolesson import batching, chips
from tests import s1_fixtures as s1f

SHAPE = (768, 640)
CHIP = 128
ZONES = {"OSAKA": s1f.OSAKA, "TOKYO": s1f.TOKYO}


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("s1")
    items, arrays = [], {}
    for k, (city, date) in enumerate(itertools.product(ZONES, ("2023-03-04", "2023-03-16"))):
        item_id = f"S1A_{city}_{date.replace('-', '')}"
        item, a = s1f.make_s1_item(root / item_id, item_id, ZONES[city], shape=SHAPE, seed=k % 2,
                                   datetime=f"{date}T20:40:00Z")
        items.append(item)
        arrays[item_id] = a
    index = chips.chip_index(items, CHIP)
    return items, arrays, index


def _labels():
    """Two squares and a triangle per city, drawn in each UTM zone, stored in EPSG:4326."""
    frames = []
    for city, (epsg, x0, y0) in ZONES.items():
        shapes = [shapely.box(x0 + 500, y0 - 3000, x0 + 2500, y0 - 1000),
                  shapely.box(x0 + 3000, y0 - 7000, x0 + 6000, y0 - 4100),
                  shapely.Polygon([(x0 + 100, y0 - 7600), (x0 + 6300, y0 - 7600), (x0 + 100, y0 - 5000)])]
        frames.append(gpd.GeoDataFrame({"class": [1, 2, 3]}, geometry=shapes, crs=epsg).to_crs(4326))
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=4326)


def _expected_transform(row):
    _, x0, y0 = ZONES[row["item_id"].split("_")[1]]
    return Affine(10, 0, x0 + row["col_off"] * 10, 0, -10, y0 - row["row_off"] * 10)


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
            expected = np.where(direct == s1f.NODATA, np.float32(np.nan), direct)
            got = s["image"][c].numpy()
            assert np.array_equal(np.isnan(got), np.isnan(expected))
            assert got[~np.isnan(got)].tobytes() == expected[~np.isnan(expected)].tobytes()  # bit for bit
        assert s["chip_id"] == row.chip_id and s["crs"] == ZONES[row.item_id.split("_")[1]][0]
        assert s["transform"] == tuple(_expected_transform(row))[:6]
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
        assert crs == row["crs"] and t == tuple(_expected_transform({**row, "item_id": row["item_id"]}))[:6]
    assert len(batch["datetime"]) == 8 and isinstance(batch["datetime"][0], str)


def _same_pixels(a, b) -> bool:
    """Equal bit for bit, NaN where the other is NaN."""
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.tobytes() == b.tobytes()


def test_a_batch_read_at_once_equals_the_chips_read_one_by_one_without_a_copy(scenes):
    items, _, index = scenes
    ds = batching.ChipDataset(index, ("vv", "vh"), items=items, labels=_labels())
    picks = [0, 5, 31, 64, 90, len(ds) - 1]  # both zones, nodata edge included
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


def _ids(ds, workers, context, seed, epoch=0):
    sampler = batching.RandomChipSampler(ds, seed=seed)
    sampler.set_epoch(epoch)
    loader = DataLoader(ds, batch_size=4, sampler=sampler, collate_fn=batching.collate,
                        num_workers=workers, multiprocessing_context=context if workers else None)
    return [b["chip_id"] for b in loader]


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_same_seed_same_batches_with_0_and_2_workers(scenes, context):
    items, _, index = scenes
    small = index[index["row"] < 2].iloc[::3]  # 16 chips of both zones: few, workers are slow
    ds = batching.ChipDataset(small, ("vv",), items=items)
    chips.read_chip(small.iloc[0], ("vv",), items=items)  # the parent has open GDAL handles before the fork
    serial = _ids(ds, 0, context, seed=7)
    assert sorted(sum(serial, [])) == sorted(small.chip_id)
    assert _ids(ds, 2, context, seed=7) == serial
    assert _ids(ds, 0, context, seed=8) != serial
    assert _ids(ds, 0, context, seed=7, epoch=1) != serial


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


def _tag_worker(sample):
    return {**sample, "worker": get_worker_info().id}


def _blocks_of(index, batch, size):
    rows = index.iloc[batch]
    return set(zip(rows.item_id, rows.row_off // size, rows.col_off // size))


def _split_blocks(index, batches, size):
    """Blocks of ``size`` px whose chips are in more than one batch."""
    seen: dict[tuple, int] = {}
    for b in batches:
        for block in _blocks_of(index, b, size):
            seen[block] = seen.get(block, 0) + 1
    return sum(n > 1 for n in seen.values())


def test_random_block_batches_hold_whole_blocks_in_a_seeded_order():
    # 2 items of 1536^2 px, 256 px chips, 512 px blocks (the mirror's Sentinel-1 layout):
    # every block holds 4 chips, so batches of 16 are 4 whole blocks
    full = pd.DataFrame([{"item_id": f"S1A_{i}", "row_off": r, "col_off": c}
                         for i in range(2) for r in range(0, 1536, 256) for c in range(0, 1536, 256)])
    sampler = batching.RandomBlockBatchSampler(full, 16, seed=5)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 72 // 16 + 1
    assert sorted(sum(batches, [])) == list(range(72))
    assert [len(b) for b in batches] == [16] * 4 + [8]
    assert _split_blocks(full, [list(b) for b in batches], 512) == 0
    assert all(len(_blocks_of(full, b, 512)) == len(b) // 4 for b in batches)
    assert list(batching.RandomBlockBatchSampler(full, 16, seed=5)) == batches
    assert list(batching.RandomBlockBatchSampler(full, 16, seed=6)) != batches
    sampler.set_epoch(1)
    assert list(sampler) != batches
    # the blocks come in a random order, not in block order
    firsts = [min(b) for b in batches]
    assert firsts != sorted(firsts)
    # edge blocks of 2 and 1 chips (1500 px: 5 x 5 chips) still give full batches
    edge = pd.DataFrame([{"item_id": f"S1A_{i}", "row_off": r, "col_off": c}
                         for i in range(3) for r in range(0, 1280, 256) for c in range(0, 1280, 256)])
    batches = list(batching.RandomBlockBatchSampler(edge, 16, seed=0))
    assert sorted(sum(batches, [])) == list(range(75))
    assert [len(b) for b in batches] == [16] * 4 + [11]
    assert _split_blocks(edge, batches, 512) == 0  # edge blocks of 2 are paired; the 1s come last
    # a filtered index (chips dropped here and there) still gives whole blocks per batch
    kept = full.drop(index=np.random.default_rng(0).choice(72, 9, replace=False)).reset_index(drop=True)
    batches = list(batching.RandomBlockBatchSampler(kept, 16, seed=1))
    assert sorted(sum(batches, [])) == list(range(63)) and [len(b) for b in batches] == [16] * 3 + [15]
    assert _split_blocks(kept, batches[:-1], 512) == 0


def test_random_block_batches_go_to_one_worker_each_and_ignore_the_worker_count(scenes):
    items, _, index = scenes
    ds = batching.ChipDataset(index, ("vv",), items=items, transform=_tag_worker)
    sampler = batching.RandomBlockBatchSampler(index, 8, seed=2, block_size=256)

    def served(workers):
        loader = DataLoader(ds, batch_sampler=sampler, num_workers=workers, collate_fn=batching.collate,
                            multiprocessing_context="fork" if workers else None)
        return [(list(b["chip_id"]), set(b["worker"]) if workers else None) for b in loader]

    two = served(2)
    serial_ds, ds.transform = ds.transform, None
    serial = [ids for ids, _ in served(0)]
    ds.transform = serial_ds
    assert [ids for ids, _ in two] == serial
    assert all(len(w) == 1 for _, w in two)  # a batch is read by one worker
    workers_of: dict[tuple, set] = {}
    by_id = index.set_index("chip_id")
    for ids, w in two:
        for chip_id in ids:
            r = by_id.loc[chip_id]
            workers_of.setdefault((r.item_id, r.row_off // 256, r.col_off // 256), set()).update(w)
    split = _split_blocks(index, [[int(index.index[index.chip_id == c][0]) for c in ids] for ids in serial], 256)
    assert sum(len(w) > 1 for w in workers_of.values()) <= split


def test_block_row_sharding_gives_each_block_row_to_one_worker(scenes):
    items, _, index = scenes
    ds = batching.ChipDataset(index, ("vv",), items=items, transform=_tag_worker)
    sampler = batching.BlockRowBatchSampler(index, 4, num_workers=2, block_size=256)
    assert sorted(sum(sampler.batches, [])) == list(range(len(index)))  # every chip once
    loader = DataLoader(ds, batch_sampler=sampler, num_workers=2, collate_fn=batching.collate,
                        multiprocessing_context="fork")
    served = {}
    for batch in loader:
        for chip_id, worker in zip(batch["chip_id"], batch["worker"]):
            row = index.loc[index.chip_id == chip_id].iloc[0]
            served.setdefault((row.item_id, row.row_off // 256), set()).add(worker)
    assert len(served) == 4 * 3 and all(len(w) == 1 for w in served.values())
    assert {w for ws in served.values() for w in ws} == {0, 1}
    # each worker's block rows are one contiguous run of block order, of half the chips
    owners = [served[key].pop() for key in sorted(served)]
    assert owners == sorted(owners)
    shares = [sum(len(b) for b in sampler.batches[w::2]) for w in (0, 1)]
    assert abs(shares[0] - shares[1]) <= 5  # a 256-px block row of this index has 5 chips
    # block order: chips of one 256 block follow each other
    order = batching.block_order(index, 256)
    blocks = [(index.item_id.iloc[p], index.row_off.iloc[p] // 256, index.col_off.iloc[p] // 256) for p in order]
    assert sum(a != b for a, b in zip(blocks, blocks[1:])) == len(set(blocks)) - 1
    assert list(batching.GridChipSampler(index, 256)) == order.tolist()


def _utm_footprints(frame):
    """Footprints in each chip's own CRS from the fixture's grid (not from the index geometry)."""
    out = []
    for r in frame.itertuples():
        t = _expected_transform({"item_id": r.item_id, "row_off": r.row_off, "col_off": r.col_off})
        out.append((r.crs, shapely.box(t.c, t.f - r.height * 10, t.c + r.width * 10, t.f)))
    return out


def _min_distance(a, b):
    from pyproj import Transformer

    best = np.inf
    for (ca, ga), (cb, gb) in itertools.product(_utm_footprints(a), _utm_footprints(b)):
        if cb != ca:
            gb = shapely.ops.transform(Transformer.from_crs(cb, ca, always_xy=True).transform, gb)
        best = min(best, ga.distance(gb))
    return best


@pytest.mark.parametrize("gap", [1, 2])
def test_no_two_chips_of_different_splits_closer_than_the_gap(scenes, gap):
    import shapely.ops  # noqa: F401

    _, _, index = scenes
    osaka_and_tokyo = index[index.datetime == index.datetime.min()]  # one date, both zones
    assert set(osaka_and_tokyo["crs"]) == {32653, 32654}
    splits = batching.spatial_split(osaka_and_tokyo, (0.5, 0.25, 0.25), gap=gap, block=1, seed=1)
    assert sum(len(v) for v in splits.values()) == len(osaka_and_tokyo)
    assert not set.intersection(*[set(v.chip_id) for v in splits.values()])
    assert all(len(splits[s]) > 0 for s in batching.SPLITS) or gap > 1
    for a, b in itertools.combinations(batching.SPLITS, 2):
        assert _min_distance(splits[a], splits[b]) >= gap * CHIP * 10 - 1e-3
    again = batching.spatial_split(osaka_and_tokyo, (0.5, 0.25, 0.25), gap=gap, block=1, seed=1)
    assert all(list(again[s].chip_id) == list(splits[s].chip_id) for s in splits)


def test_split_keeps_one_place_in_one_split_and_splits_by_region(scenes):
    _, _, index = scenes
    splits = batching.spatial_split(index, gap=1, block=2, seed=0)
    place = {}
    for name, part in splits.items():
        for r in part.itertuples():
            place.setdefault((r.crs, r.row, r.col), set()).add(name)
    assert all(len(v) == 1 for v in place.values())  # both dates of a place share a split
    by_region = batching.spatial_split(index, regions={"train": index["crs"] == 32653,
                                                        "test": index["crs"] == 32654})
    assert (by_region["train"]["crs"] == 32653).all() and (by_region["test"]["crs"] == 32654).all()
    assert len(by_region["val"]) == 0 and len(by_region["train"]) + len(by_region["test"]) == len(index)
    rng = np.random.default_rng(0)
    random_test = index.iloc[rng.permutation(len(index))[:20]]
    random_train = index.drop(random_test.index)
    assert batching.leakage(random_train, random_test) > 0.9
    assert batching.leakage(splits["train"], splits["test"]) == 0


def test_normalization_statistics_equal_brute_force(scenes, tmp_path):
    items, _, index = scenes
    train = batching.spatial_split(index, gap=1, block=2, seed=0)["train"]
    ds = batching.ChipDataset(train, ("vv", "vh"), items=items)
    stats = batching.band_statistics(ds, db=True)
    for c in range(2):
        values = np.concatenate([ds[i]["image"][c].numpy().ravel() for i in range(len(ds))])
        valid = values[~np.isnan(values)]
        db = (np.float32(10) * np.log10(valid[valid > 0])).astype(np.float64)  # dB in float32, summed in float64
        assert stats.count[c] == db.size
        assert stats.mean[c] == pytest.approx(db.mean(), rel=1e-9)
        assert stats.std[c] == pytest.approx(db.std(), rel=1e-9)
    assert stats.bands == ("vv", "vh") and stats.db == (True, True) and stats.chips == len(ds)
    assert -25 < stats.mean[0] < -5 and stats.mean[1] < stats.mean[0]  # VH darker than VV
    path = batching.save_statistics(stats, tmp_path / "train.parquet")
    assert path == tmp_path / "train.stats.json"
    back = batching.load_statistics(tmp_path / "train.parquet")
    assert back == stats
    normed = batching.ChipDataset(train, ("vv", "vh"), items=items, transform=batching.Normalize(back, fill=0.0))
    s, raw = normed[3], ds[3]
    x = 10 * np.log10(raw["image"].numpy().astype(np.float64))
    expected = (x - np.array(stats.mean)[:, None, None]) / np.array(stats.std)[:, None, None]
    valid = ~np.isnan(expected).any(axis=0)
    np.testing.assert_allclose(s["image"].numpy()[:, valid], expected[:, valid], rtol=1e-5, atol=1e-5)
    assert (s["valid"].numpy() == valid).all() and (s["image"].numpy()[:, ~valid] == 0).all()


def test_label_masks_equal_rasterize_on_the_chip_grid(scenes):
    items, _, index = scenes
    labels = _labels()
    ds = batching.ChipDataset(index, ("vv",), items=items, labels=labels)
    seen = set()
    for i in range(len(ds)):
        s = ds[i]
        row = index.iloc[i]
        shapes = [(g, c) for g, c in zip(labels.to_crs(row["crs"]).geometry, labels["class"])]
        expected = rasterize(shapes, out_shape=(CHIP, CHIP), transform=_expected_transform(row), fill=0,
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
    with pytest.raises(ValueError, match="gap must be a number of chips >= 0, not -1"):
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
