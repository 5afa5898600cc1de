"""GDAL's settings for reading COGs over HTTP, and its HTTP connections across a fork.

:data:`GDAL_HTTP_OPTIONS` are the configuration options every read of the helpers runs with
(``rasterio.Env``); :func:`configure_gdal` puts them, and a bounded block cache, into the
process's environment, so that reads made by other libraries (rioxarray, odc-stac) use them
too.

Forked processes (e.g. PyTorch DataLoader workers under ``fork``) open HTTP connections
of their own: before every ``os.fork`` in a process that imported this module, the
connections and ``/vsicurl/`` caches GDAL keeps for the forking thread are dropped, so
that no child reads COGs through its parent's sockets.
"""

from __future__ import annotations

import os
import sys
import warnings

from geolesson.http import CONNECT_TIMEOUT

#: The GDAL configuration options for reading COGs over HTTP, which
#: :func:`configure_gdal` sets and the helpers pass to ``rasterio.Env``.
GDAL_HTTP_OPTIONS = {
    # without these two GDAL lists the "directory" and probes for side-car files (14
    # requests for one window read instead of 4)
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF",
    # GDAL retries 429/5xx and timed-out requests itself, waiting RETRY_DELAY s, doubled each time
    "GDAL_HTTP_MAX_RETRY": "2",
    "GDAL_HTTP_RETRY_DELAY": "1",
    "GDAL_HTTP_CONNECTTIMEOUT": str(CONNECT_TIMEOUT),
    # a request that moves less than 1 byte/s for LOW_SPEED_TIME s is given up, not retried (a
    # black hole fails after ~7 s; with GDAL_HTTP_TIMEOUT alone GDAL 3.10 retries it: 49 s with
    # 10 s x 4 tries). GDAL_HTTP_TIMEOUT bounds a whole request, generous for slow Wi-Fi
    "GDAL_HTTP_LOW_SPEED_TIME": "6",
    "GDAL_HTTP_LOW_SPEED_LIMIT": "1",
    "GDAL_HTTP_TIMEOUT": "60",
    # /vsicurl/ fetches whole chunks (16 KB by default) around each byte range, and doubles
    # its request (while under 100 chunks) on each read that starts where the last one
    # ended: blocks read in random order (or by several DataLoader workers) fetch bytes
    # nobody reads.
    # Measured on the mirror's Sentinel-1 COGs (512 px blocks of ~550 KB; benchmarks/
    # batching.py, random whole blocks): 1.06x the blocks' bytes with 16 KB, 1.05x (1.07x
    # with 2 workers) with 4 KB, 1.01x with 1 KB; but with 1 KB an epoch in block order
    # makes 472 requests instead of 280 and a 0-worker epoch of that benchmark's data
    # takes 1.91-1.95 s instead of 1.61-1.64 s, so 4 KB
    "CPL_VSIL_CURL_CHUNK_SIZE": "4096",
}


# GDAL's block cache defaults to 5 % of the machine's physical RAM (1.2 GB on a 24 GB host),
# whatever a container or JupyterHub's MEM_LIMIT allows: a chapter that reads a whole tile
# in the kernel then holds that much. 128 MB keeps every block a chapter re-reads and keeps a
# Binder session (2 GB, benchmarks/memory.py) within budget.
GDAL_CACHE_OPTIONS = {"GDAL_CACHEMAX": "128"}  # MB (GDAL reads values below 100000 as MB)


#: GDAL's messages for a file it could not open that hide the network's part (a reset
#: connection, an HTML error page and a dead network read alike as an unknown format).
OPAQUE_OPEN_ERRORS = ("not recognized as being in a supported file format", "does not exist in the file system")


def open_error_cause(href: str, error: BaseException) -> str:
    """What to add to GDAL's ``error`` for ``href``: ``"; cause: ..."`` when GDAL's message is
    one of :data:`OPAQUE_OPEN_ERRORS` and one request for the file's first bytes tells the
    cause (:func:`geolesson.http.http_failure_cause`), else ``""``."""
    from geolesson.http import http_failure_cause

    if not any(text in str(error) for text in OPAQUE_OPEN_ERRORS):
        return ""
    cause = http_failure_cause(href)
    return f"; cause: {cause}" if cause else ""


def configure_gdal() -> dict:
    """Set the GDAL HTTP options and the block cache size (``GDAL_CACHE_OPTIONS``) in this
    process's environment, each only if not set already; returns them.

    Call it before the first read: GDAL sizes its block cache on first use.
    """
    options = {**GDAL_HTTP_OPTIONS, **GDAL_CACHE_OPTIONS}
    for key, value in options.items():
        os.environ.setdefault(key, value)
    return {k: os.environ[k] for k in options}


def _drop_gdal_http_connections() -> bool:
    """Close the HTTP connections GDAL keeps for ``/vsicurl/`` in this thread, and empty its
    ``/vsicurl/`` caches (regions, file sizes, directory listings): GDAL's C function
    ``VSICurlClearCache()`` in the libgdal that rasterio loaded (a rasterio wheel bundles
    its own), called with ctypes since rasterio does not expose it.

    GDAL keeps one curl multi handle, with its keep-alive connections, per thread and per
    file system (``cpl_vsil_curl.cpp``: a ``thread_local`` connection cache, cleared by
    ``ClearCache()``). A forked child is a copy of the forking thread, connection cache
    included: two DataLoader workers (and the parent) would then write requests to one
    socket and read each other's responses ("Read failed", "not recognized as being in a
    supported file format"; tests/batching/test_dataset_http.py). Registered below to run in the
    parent *before* each fork: closing inherited connections in the child instead would
    send a TLS close_notify through the parent's socket over HTTPS. The price: the
    parent's next HTTP read reconnects, and the parent and its children fetch again the
    file headers GDAL had cached, as spawned workers do.

    Returns:
        True when cleared; False when rasterio is not imported (no GDAL, no connections).
    """
    env = sys.modules.get("rasterio._env")
    if env is None:
        return False
    import ctypes

    # dlsym on the extension module also searches the libraries it links (its libgdal);
    # ctypes.CDLL releases the GIL during the call, so a thread blocked in GDAL cannot deadlock it
    ctypes.CDLL(env.__file__).VSICurlClearCache()
    return True


def _before_fork() -> None:
    try:
        _drop_gdal_http_connections()
    except Exception as exc:  # noqa: BLE001 - an exception in a fork hook would only be printed
        warnings.warn(f"could not close GDAL's HTTP connections before a fork ({exc}): forked "
                      "processes may share them with their parent; start DataLoader workers with "
                      "multiprocessing_context='spawn'", RuntimeWarning, stacklevel=2)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork)
