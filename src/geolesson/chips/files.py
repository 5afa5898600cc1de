"""Open COG files once per process and thread, and read windows of them.

Datasets are opened lazily, once per href, per process and thread, and forgotten (not
closed: the handles belong to the parent) after a fork, so that forked DataLoader workers
never share GDAL handles with their parent. A read that fails raises an ``OSError`` that
names the href.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

import numpy as np

from geolesson.gdal import GDAL_HTTP_OPTIONS, open_error_cause

_local = threading.local()


def _cache() -> dict:
    """This thread's dataset cache, emptied (not closed: the handles belong to the parent)
    when the process has changed since it was filled, i.e. after a fork."""
    if getattr(_local, "pid", None) != os.getpid():
        _local.pid = os.getpid()
        _local.datasets = {}
    return _local.datasets


def _forget_after_fork() -> None:
    _local.__dict__.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def close_datasets() -> None:
    """Close the datasets :func:`~geolesson.chips.read_chip` keeps open in this process and thread."""
    cache = _cache()
    for ds in cache.values():
        with contextlib.suppress(Exception):  # closing is best effort
            ds.close()
    cache.clear()


def open_dataset(href: str):
    """The ``rasterio`` dataset of ``href``, opened once per process and thread (with the
    GDAL HTTP options of :mod:`geolesson.gdal`).

    Raises:
        OSError: the file cannot be opened (the message names ``href``).
    """
    import rasterio

    cache = _cache()
    ds = cache.get(href)
    if ds is None or ds.closed:
        try:
            with rasterio.Env(**GDAL_HTTP_OPTIONS):
                ds = rasterio.open(href)
        except Exception as exc:
            raise OSError(f"could not open {href!r}: {exc}{open_error_cause(href, exc)}") from exc
        cache[href] = ds
    return ds


def read(href: str, r0: int, r1: int, c0: int, c1: int, out: np.ndarray | None = None) -> np.ndarray:
    """Band 1 of ``href``, rows [r0, r1) x cols [c0, c1) inside the raster, in the file's
    dtype, ``(r1 - r0, c1 - c0)`` (into ``out`` if given).

    Raises:
        OSError: the file cannot be opened or read (the message names ``href`` and the window).
    """
    import rasterio
    from rasterio.windows import Window

    ds = open_dataset(href)
    try:
        with rasterio.Env(**GDAL_HTTP_OPTIONS):
            return ds.read(1, window=Window(c0, r0, max(c1 - c0, 0), max(r1 - r0, 0)), out=out)
    except Exception as exc:
        _cache().pop(href, None)
        raise OSError(f"could not read {href!r} (rows {r0}:{r1}, cols {c0}:{c1}): {exc}") from exc


def read_window(href: str, row0: int, row1: int, col0: int, col1: int, fill: Any) -> np.ndarray:
    """Band 1 of ``href``, rows [row0, row1) x cols [col0, col1), in the file's dtype; parts
    outside the raster are ``fill``.

    Raises:
        OSError: as :func:`read`.
    """
    ds = open_dataset(href)
    r0, r1 = max(row0, 0), min(row1, ds.height)
    c0, c1 = max(col0, 0), min(col1, ds.width)
    data = read(href, r0, r1, c0, c1)
    if (r0, r1, c0, c1) != (row0, row1, col0, col1):
        pad = ((r0 - row0, row1 - r1), (c0 - col0, col1 - c1))
        data = np.pad(data, [(max(a, 0), max(b, 0)) for a, b in pad], constant_values=fill)
    return data
