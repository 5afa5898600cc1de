"""geolesson.batching.splits: spatial splits with a gap, one place in one split."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import shapely

from geolesson import batching
from tests.fixtures import CHIP, assert_refused, s1_chip_transform


def _utm_footprints(frame):
    """Footprints in each chip's own CRS from the fixture's grid (not from the index geometry)."""
    out = []
    for r in frame.itertuples():
        t = s1_chip_transform({"item_id": r.item_id, "row_off": r.row_off, "col_off": r.col_off})
        out.append((r.crs, shapely.box(t.c, t.f - r.height * 10, t.c + r.width * 10, t.f)))
    return out


def _min_distance(a, b):
    from pyproj import Transformer

    best = np.inf
    for (ca, ga), (cb, gb) in itertools.product(_utm_footprints(a), _utm_footprints(b)):
        if cb != ca:
            gb = shapely.transform(gb, Transformer.from_crs(cb, ca, always_xy=True).transform, interleaved=False)
        best = min(best, ga.distance(gb))
    return best


@pytest.mark.parametrize("gap", [1, 2])
def test_no_two_chips_of_different_splits_closer_than_the_gap(scenes, gap):
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


def _region_utm(index):
    """Osaka's scenes as a box in UTM metres (EPSG:32653), not the index's EPSG:4326."""
    return shapely.box(540000, 3842320, 546400, 3850000)


def _region_lonlat(index):
    return shapely.box(*index.total_bounds)


# (id, call(index), expected, words the message must hold): one row per bad input
BAD_INPUTS = [
    ("regions-in-utm", lambda ix: batching.spatial_split(ix, regions={"train": _region_utm(ix)}),
     ValueError, ["regions['train']", "no chip", "540000", "EPSG:4326"]),
    ("regions-far-away", lambda ix: batching.spatial_split(ix, regions={"train": shapely.box(0, 0, 1, 1)}),
     ValueError, ["regions['train']", "no chip", "EPSG:4326"]),
    ("regions-overlap", lambda ix: batching.spatial_split(
        ix, regions={"train": _region_lonlat(ix), "test": _region_lonlat(ix)}),
     ValueError, ["regions['train']", "regions['test']", "overlap"]),
    ("regions-list", lambda ix: batching.spatial_split(ix, regions=[_region_lonlat(ix)]),
     TypeError, ["regions", "mapping", "list"]),
    ("regions-int-mask", lambda ix: batching.spatial_split(ix, regions={"train": np.ones(len(ix), int)}),
     ValueError, ["regions['train']", "bool", "int64"]),
    ("regions-none-value", lambda ix: batching.spatial_split(ix, regions={"train": None}),
     TypeError, ["regions['train']", "None", "geometry"]),
    ("regions-empty-mask", lambda ix: batching.spatial_split(ix, regions={"test": np.zeros(len(ix), bool)}),
     ValueError, ["regions['test']", "no chip"]),
    ("fractions-none", lambda ix: batching.spatial_split(ix, None), ValueError, ["fractions", "None"]),
    ("fractions-number", lambda ix: batching.spatial_split(ix, 0.7), ValueError, ["fractions", "0.7"]),
    ("fractions-nan", lambda ix: batching.spatial_split(ix, (float("nan"), 0.5, 0.5)), ValueError, ["train", "nan"]),
    ("fractions-unknown-key", lambda ix: batching.spatial_split(ix, {"train": 0.5, "dev": 0.5}),
     ValueError, ["fractions", "'dev'"]),
    ("gap-nan", lambda ix: batching.spatial_split(ix, gap=float("nan")), ValueError, ["gap", "nan"]),
    ("gap-str", lambda ix: batching.spatial_split(ix, gap="1"), ValueError, ["gap", "'1'"]),
    ("block-float", lambda ix: batching.spatial_split(ix, block=2.5), ValueError, ["block", "2.5"]),
    ("seed-negative", lambda ix: batching.spatial_split(ix, seed=-1), ValueError, ["seed", "-1"]),
    ("index-none", lambda ix: batching.spatial_split(None), TypeError, ["index", "None"]),
    ("index-no-width", lambda ix: batching.spatial_split(ix.drop(columns=["width"])),
     ValueError, ["index", "'width'"]),
    ("index-plain-frame", lambda ix: batching.spatial_split(pd.DataFrame(ix.drop(columns="geometry"))),
     ValueError, ["index", "geometry"]),
    ("leakage-gap-nan", lambda ix: batching.leakage(ix, ix, gap=float("nan")), ValueError, ["gap", "nan"]),
    ("leakage-gap-bool", lambda ix: batching.leakage(ix, ix, gap=True), ValueError, ["gap", "True"]),
    ("leakage-train-none", lambda ix: batching.leakage(None, ix), TypeError, ["train", "None"]),
    ("leakage-other-no-crs", lambda ix: batching.leakage(ix, ix.drop(columns=["crs"])),
     ValueError, ["other", "'crs'"]),
]


@pytest.mark.parametrize("call, expected, words", [pytest.param(*c[1:], id=c[0]) for c in BAD_INPUTS])
def test_bad_input_is_refused_naming_the_parameter_and_value(scenes, call, expected, words):
    _, _, index = scenes
    assert_refused(lambda: call(index), expected, words)
