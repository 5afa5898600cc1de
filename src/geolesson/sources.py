"""Where the book's data comes from: the offline mirror (default) or the live services.

``GEOLESSON_SOURCE=mirror`` (default) points every chapter at the offline mirror on
127.0.0.1, starting it if it is not running; ``GEOLESSON_SOURCE=live`` points them at
Earth Search v1 and Microsoft Planetary Computer. The notebook code is the same in both
modes; only the root URL (and Planetary Computer's URL signing) differs.

This module never imports ``geolesson.mirror``: it reads the URLs the mirror publishes
and, if none is running, starts it with the ``geolesson mirror start`` command.

Network waits are bounded in both modes: every HTTP client here connects within
``CONNECT_TIMEOUT`` and reads within ``READ_TIMEOUT`` seconds, and transient failures (429,
500, 502, 503, 504, connection resets) are retried with backoff by the clients' own retry
support (urllib3 ``Retry`` for pystac-client and Planetary Computer tokens,
``GDAL_HTTP_MAX_RETRY`` for GDAL), so a dead or black-holed service fails within about 30 s
with an error naming the URL instead of hanging.

Forked processes (e.g. PyTorch DataLoader workers under ``fork``) open HTTP connections
of their own: before every ``os.fork`` in a process that imported this module, the
connections and ``/vsicurl/`` caches GDAL keeps for the forking thread are dropped, so
that no child reads COGs through its parent's sockets.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

from geolesson._home import data_dir, mirror_healthy, read_state

MODES = ("mirror", "live")
LIVE_STAC_API = {
    "earth-search": "https://earth-search.aws.element84.com/v1",
    "planetary-computer": "https://planetarycomputer.microsoft.com/api/stac/v1",
}
PROVIDERS = tuple(LIVE_STAC_API)

# GDAL settings for reading COGs over HTTP: without them GDAL lists the "directory" and
# probes for side-car files (14 requests for one window read instead of 4).
# Timeouts (s) for every HTTP request to a STAC API, a token service or a COG: a connection
# must open within CONNECT_TIMEOUT and each read must deliver data within READ_TIMEOUT.
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 10
# HTTP answers worth retrying: rate limiting and the gateway/overload errors of busy services
RETRY_STATUS = (429, 500, 502, 503, 504)

#: The GDAL configuration options for reading COGs over HTTP, which
#: :func:`configure_gdal` sets and the helpers pass to ``rasterio.Env``.
GDAL_HTTP_OPTIONS = {
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


# `geolesson mirror start` from a notebook: a cold start takes ~10 s, one waiting for a build longer
START_TIMEOUT = 300


class SourceError(ConnectionError):
    """A live service (STAC API, token service) failed or did not answer in time; names the URL."""


def http_retry():
    """The retry policy of the Python HTTP clients here (a ``urllib3.util.Retry``).

    Up to 3 retries: 2 for a failed connection, 1 for a read that timed out or was reset
    (a black hole costs two reads, about ``2 * READ_TIMEOUT`` s), 3 for the answers in
    ``RETRY_STATUS``; backoff 0.5 s doubling (none before the first retry). Every method is
    retried: STAC searches are POSTs that only read. ``Retry-After`` is not obeyed, so that a
    server asking for minutes cannot stall a notebook.
    """
    from urllib3.util import Retry

    return Retry(total=3, connect=2, read=1, status=3, other=0, backoff_factor=0.5,
                 status_forcelist=RETRY_STATUS, allowed_methods=None, respect_retry_after_header=False)


def http_session():
    """A ``requests.Session`` retrying with :func:`http_retry` (pass ``timeout=`` on every call)."""
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    adapter = HTTPAdapter(max_retries=http_retry())
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def source_mode(mode: str | None = None) -> str:
    """The data source: ``mode`` if given, else ``GEOLESSON_SOURCE``, else ``"mirror"``.

    Raises:
        ValueError: the mode is not one of ``MODES``.
    """
    mode = mode if mode is not None else os.environ.get("GEOLESSON_SOURCE", "mirror")
    if mode not in MODES:
        raise ValueError(f"GEOLESSON_SOURCE / mode={mode!r} is not allowed; use one of {', '.join(MODES)}")
    return mode


def _check_provider(provider: str) -> None:
    if provider not in LIVE_STAC_API:
        raise ValueError(f"provider={provider!r} is not known; use one of {', '.join(PROVIDERS)}")


def mirror_state(start: bool = True) -> dict:
    """The running mirror's URLs (``api_url``, ``files_url``, ``stats_url``), starting it if needed.

    Raises:
        RuntimeError: the mirror is not running and could not be started (the message
            carries ``geolesson mirror start``'s own explanation).
    """
    state = read_state()
    if mirror_healthy(state):
        return state
    if not start:
        raise RuntimeError("the offline mirror is not running; start it with `geolesson mirror start`")
    try:
        run = subprocess.run([sys.executable, "-m", "geolesson.cli", "mirror", "start"],
                             capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"the offline mirror did not start within {START_TIMEOUT} s (is a `geolesson "
                           "mirror build` running? `geolesson mirror status` tells)") from exc
    state = read_state()
    if run.returncode or not mirror_healthy(state):
        raise RuntimeError(f"could not start the offline mirror:\n{run.stdout}{run.stderr}")
    return state


def stac_api_url(provider: str = "earth-search", mode: str | None = None) -> str:
    """Root URL of the STAC API for ``provider`` (``"earth-search"`` or ``"planetary-computer"``).

    In live mode, the real service's root; in mirror mode, the local mirror's root (one API
    serves both providers' collections), started if it is not running.

    Raises:
        ValueError: unknown provider or mode.
    """
    _check_provider(provider)
    if source_mode(mode) == "live":
        return LIVE_STAC_API[provider]
    return mirror_state()["api_url"]


def _hrefs(obj: Any) -> Iterator[str]:
    """Every href in a str, pystac Asset/Item/ItemCollection, or (nested) mapping/list."""
    import pystac

    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, pystac.Asset):
        yield obj.href
    elif isinstance(obj, pystac.Item):
        yield from (a.href for a in obj.assets.values())
    elif isinstance(obj, pystac.ItemCollection):
        for item in obj:
            yield from _hrefs(item)
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            if key == "href" and isinstance(value, str):
                yield value
            elif isinstance(value, (Mapping, list)):
                yield from _hrefs(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _hrefs(value)


def _fetch_pc_tokens(obj: Any) -> None:
    """Put the SAS token of every blob container ``obj`` refers to in planetary_computer's cache.

    planetary_computer requests tokens without a timeout and retries 10 times with growing
    waits (about 7 minutes without network); fetched here first, with :func:`http_retry`
    and the timeouts, its own signing then finds them cached.
    """
    from planetary_computer.sas import TOKEN_CACHE, SASToken
    from planetary_computer.settings import Settings
    from planetary_computer.utils import parse_blob_url

    settings = Settings.get()
    urls = set()
    for href in _hrefs(obj):
        parsed = urlparse(href)
        if parsed.netloc.endswith(".blob.core.windows.net"):
            account, container = parse_blob_url(parsed)
            urls.add(f"{settings.sas_url}/{account}/{container}")
    for url in sorted(urls):
        token = TOKEN_CACHE.get(url)
        if token and token.ttl() >= 60:
            continue
        headers = {"Ocp-Apim-Subscription-Key": settings.subscription_key} if settings.subscription_key else None
        try:
            r = http_session().get(url, headers=headers, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
            r.raise_for_status()
            TOKEN_CACHE[url] = SASToken(**r.json())
        except Exception as exc:  # noqa: BLE001 - requests, JSON and pydantic errors alike: name the URL
            raise SourceError(f"could not get a Planetary Computer SAS token from {url}: {exc}") from exc


def _pc_sign_inplace(obj: Any) -> Any:
    """``planetary_computer.sign_inplace`` with the tokens fetched first (bounded, see :func:`_fetch_pc_tokens`)."""
    import planetary_computer

    _fetch_pc_tokens(obj)
    return planetary_computer.sign_inplace(obj)


def item_modifier(provider: str = "earth-search", mode: str | None = None):
    """The ``modifier`` for ``pystac_client.Client.open``: Planetary Computer's URL signing
    (``planetary_computer.sign_inplace``, its tokens fetched with bounded waits) in live mode,
    ``None`` (no-op) for Earth Search and for the mirror."""
    _check_provider(provider)
    if source_mode(mode) == "live" and provider == "planetary-computer":
        return _pc_sign_inplace
    return None


def sign(obj: Any, provider: str = "earth-search", mode: str | None = None) -> Any:
    """Sign an item, asset or href for reading; returns ``obj`` unchanged where no signing is needed.

    Raises:
        SourceError: live Planetary Computer's token service failed or did not answer within
            the timeouts and retries (about 30 s at most); the message names its URL.
    """
    if item_modifier(provider, mode) is None:
        return obj
    import planetary_computer

    _fetch_pc_tokens(obj)
    return planetary_computer.sign(obj)


def open_client(provider: str = "earth-search", mode: str | None = None):
    """A ``pystac_client.Client`` on the provider's STAC API (signing included where needed).

    Requests (this one for the landing page, and the client's later searches) time out
    after ``CONNECT_TIMEOUT`` / ``READ_TIMEOUT`` s and are retried with :func:`http_retry`.

    Raises:
        SourceError: the API failed or did not answer in time; the message names its URL.
    """
    import pystac_client
    from pystac_client.stac_api_io import StacApiIO

    url = stac_api_url(provider, mode)
    timeout = (CONNECT_TIMEOUT, READ_TIMEOUT)
    stac_io = StacApiIO(timeout=timeout, max_retries=http_retry())
    try:
        return pystac_client.Client.open(url, modifier=item_modifier(provider, mode), stac_io=stac_io,
                                         timeout=timeout)
    except pystac_client.exceptions.APIError as exc:
        raise SourceError(f"the STAC API at {url} did not answer: {exc}") from exc


def data_path(name: str) -> Path:
    """The path of one of the book's committed inputs in the checkout's ``data/`` folder.

    The inputs are small vector files the chapters read: ``"rhodes_aoi.geojson"`` (the
    area of interest), ``"rhodes_island.geojson"`` (the coastline) and
    ``"rhodes_burn_scar_true.geojson"`` (the simulated burn scar), all GeoJSON in
    longitude/latitude (EPSG:4326). The folder is found from ``GEOLESSON_ROOT``, the
    checkout this package is installed from, or the working directory's parents.

    Args:
        name: a file name in ``data/`` (no directories).

    Returns:
        The absolute path of an existing file.

    Raises:
        ValueError: ``name`` is not a plain file name (it contains a path separator or is
            ``..``).
        FileNotFoundError: no such file; the message lists the files that exist. Also when
            no checkout can be found at all (set ``GEOLESSON_ROOT``).
    """
    if not name or Path(name).name != name or name in (".", ".."):
        raise ValueError(f"name={name!r} is not allowed: give a plain file name in data/, "
                         "such as 'rhodes_aoi.geojson'")
    folder = data_dir()
    path = folder / name
    if not path.is_file():
        have = sorted(p.name for p in folder.iterdir() if p.is_file())
        raise FileNotFoundError(f"name={name!r}: data/{name} does not exist in {folder}; the files there are: "
                                f"{', '.join(have) or 'none'}")
    return path


# GDAL's block cache defaults to 5 % of the machine's physical RAM (1.2 GB on a 24 GB host),
# whatever a container or JupyterHub's MEM_LIMIT allows: a chapter that reads a whole tile
# in the kernel then holds that much. 128 MB keeps every block a chapter re-reads and keeps a
# Binder session (2 GB, benchmarks/memory.py) within budget.
GDAL_CACHE_OPTIONS = {"GDAL_CACHEMAX": "128"}  # MB (GDAL reads values below 100000 as MB)


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
    supported file format"; tests/test_batching_http.py). Registered below to run in the
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


def request_counts(mode: str | None = None) -> dict:
    """The mirror's per-file request and byte counters (``{"files": {path: {"requests", "bytes"}}, "total"}``).

    Raises:
        ValueError: in live mode (the live services publish no counters).
    """
    if source_mode(mode) == "live":
        raise ValueError(f"mode={source_mode(mode)!r}: request counters exist only on the offline mirror "
                         "(mode='mirror' or GEOLESSON_SOURCE=mirror)")
    return httpx.get(mirror_state()["stats_url"], timeout=10).json()


def reset_request_counts(mode: str | None = None) -> None:
    """Zero the mirror's request counters (mirror mode only, as ``request_counts``)."""
    if source_mode(mode) == "live":
        raise ValueError(f"mode={source_mode(mode)!r}: request counters exist only on the offline mirror "
                         "(mode='mirror' or GEOLESSON_SOURCE=mirror)")
    httpx.post(mirror_state()["stats_url"] + "/reset", timeout=10).raise_for_status()
