"""Iterate an iterable in a thread of its own, a few items ahead of the one who consumes it."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable
from typing import Any

_ITEM, _END, _ERROR = "item", "end", "error"


class PulledAhead:
    """The items of ``iterable``, pulled by a thread of their own at most ``depth`` ahead.

    A context manager that is an iterator::

        with PulledAhead(model.predict(net, dataset), 64) as pairs:
            for row, probability in pairs:
                ...

    The iterable runs in the thread, so its work overlaps with the consumer's wherever
    either releases the GIL (PyTorch's operators and NumPy's loops over large arrays do).
    An exception the iterable raises is raised by the consumer's ``next``, with its own
    traceback. Leaving the ``with`` block early (an error, a ``break``) stops the thread
    after the item it is pulling and closes the iterable (a generator's ``finally`` runs:
    a ``DataLoader`` shuts its workers down).

    Raises:
        ValueError: ``depth`` < 1.
    """

    def __init__(self, iterable: Iterable, depth: int):
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be an int >= 1 (items pulled ahead), not {depth!r}")
        self._source = iter(iterable)
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._ended = False
        self._thread = threading.Thread(target=self._pull, name="pulled-ahead", daemon=True)

    def __enter__(self) -> PulledAhead:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> bool:
        self._stop.set()
        self._thread.join()
        close = getattr(self._source, "close", None)
        if close is not None:
            close()
        return False

    def __iter__(self) -> PulledAhead:
        return self

    def __next__(self) -> Any:
        if self._ended:
            raise StopIteration
        kind, value = self._queue.get()
        if kind == _ITEM:
            return value
        self._ended = True
        if kind == _ERROR:
            raise value
        raise StopIteration

    def _put(self, entry: tuple) -> bool:
        """Queue ``entry``, waiting for room; False once the consumer has stopped."""
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.05)  # woken at once when room frees
                return True
            except queue.Full:
                continue
        return False

    def _pull(self) -> None:
        try:
            for item in self._source:
                if not self._put((_ITEM, item)):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._put((_ERROR, exc))
            return
        self._put((_END, None))
