"""geolesson.batching.splits: spatial splits with a gap, one place in one split."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import shapely

from geolesson import batching
from tests.fixtures import CHIP, s1_chip_transform


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
