"""geolesson._ahead.PulledAhead: the items in order, errors raised where they are consumed,
the thread bounded and stopped."""

from __future__ import annotations

import threading
import time

import pytest

from geolesson._ahead import PulledAhead


def test_items_arrive_in_order_from_another_thread():
    seen = []

    def numbers():
        for i in range(1000):
            seen.append(threading.current_thread().name)
            yield i

    with PulledAhead(numbers(), 8) as items:
        assert list(items) == list(range(1000))
        assert next(items, "done") == "done"  # exhausted stays exhausted
    assert set(seen) == {"pulled-ahead"}


def test_an_error_of_the_iterable_is_raised_to_the_consumer_after_the_items_before_it():
    def failing():
        yield 1
        yield 2
        raise OSError("could not read 'https://example.test/B04.tif'")

    got = []
    with pytest.raises(OSError, match="could not read 'https://example.test/B04.tif'"), \
            PulledAhead(failing(), 4) as items:
        got.extend(items)
    assert got == [1, 2]


def _wait_for(condition, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_the_thread_stays_depth_ahead_and_leaving_early_stops_it_and_closes_the_iterable():
    pulled, closed = [], []

    def endless():
        try:
            while True:
                pulled.append(len(pulled))
                yield pulled[-1]
        finally:
            closed.append(True)

    with PulledAhead(endless(), 5) as items:
        assert next(items) == 0
        # 1 taken, 5 queued, 1 pulled and waiting for room: then the thread waits
        assert _wait_for(lambda: len(pulled) == 7)
        time.sleep(0.2)
        assert len(pulled) == 7
        thread = items._thread
    assert not thread.is_alive() and closed == [True]


def test_an_error_of_the_consumer_stops_the_thread():
    def slow():
        for i in range(10_000):
            time.sleep(0.001)
            yield i

    with pytest.raises(KeyError), PulledAhead(slow(), 2) as items:
        next(items)
        raise KeyError("the stitcher failed")
    assert not items._thread.is_alive()


@pytest.mark.parametrize("depth", [0, -1, 2.5, True, "8"])
def test_depth_must_be_a_positive_int(depth):
    with pytest.raises(ValueError, match=f"depth must be an int >= 1 \\(items pulled ahead\\), not {depth!r}"):
        PulledAhead([], depth)
