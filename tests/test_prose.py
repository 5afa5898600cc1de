"""geolesson.prose: the words a chapter's prose chooses for the numbers shown beside them."""

from __future__ import annotations

import math

import pytest

from geolesson import prose


@pytest.mark.parametrize("a, b, kwargs, expected", [
    (0.9961, 0.9959, {}, "higher than"),
    (0.9959, 0.9961, {}, "lower than"),
    (0.9961, 0.9959, {"digits": 3}, "the same as"),      # both print as 0.996
    (0.9966, 0.9954, {"digits": 3}, "higher than"),      # 0.997 against 0.995
    (21.0, 20.2, {"rel_tol": 0.05}, "the same as"),      # within 5 % of the larger
    (21.0, 19.0, {"rel_tol": 0.05}, "higher than"),
    (2.0, 2.0, {}, "the same as"),
])
def test_compare_says_what_the_printed_numbers_say(a, b, kwargs, expected):
    assert prose.compare(a, b, **kwargs) == expected


def test_compare_takes_its_own_words():
    words = ("faster than", "slower than", "as fast as")
    assert prose.compare(1.0, 2.0, words=words) == "slower than"
    assert prose.compare(1.0, 1.01, rel_tol=0.05, words=words) == "as fast as"


@pytest.mark.parametrize("kwargs", [{"a": math.nan, "b": 1.0}, {"a": 1.0, "b": 1.0, "digits": -1},
                                    {"a": 1.0, "b": 1.0, "rel_tol": -0.1}])
def test_compare_refuses_what_it_cannot_word(kwargs):
    with pytest.raises(ValueError, match="compare"):
        prose.compare(**kwargs)


def test_times_prints_the_ratio_as_the_page_does():
    assert prose.times(641.3) == "641 times"
    assert prose.times(1250.0) == "1,250 times"
    assert prose.times(1.04, 1) == "1.0 times"
    for bad in (math.nan, math.inf, -2.0):
        with pytest.raises(ValueError, match="ratio"):
            prose.times(bad)


def test_plural_agrees_with_the_count():
    assert prose.plural(1, "date") == "1 date"
    assert prose.plural(0, "date") == "0 dates"
    assert prose.plural(3, "patch", "patches") == "3 patches"


@pytest.mark.parametrize("part, whole, expected", [
    (1, 2, "half"), (1, 4, "a quarter"), (2, 8, "a quarter"), (3, 3, "all"), (3, 8, "38 %"),
    (0, 5, "0 %"),
])
def test_share_of_names_simple_fractions(part, whole, expected):
    assert prose.share_of(part, whole) == expected


@pytest.mark.parametrize("part, whole", [(1, 0), (-1, 4), (5, 4)])
def test_share_of_refuses_impossible_shares(part, whole):
    with pytest.raises(ValueError, match="share_of"):
        prose.share_of(part, whole)
