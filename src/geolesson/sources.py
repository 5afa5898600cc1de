"""Where the book's data comes from: the offline mirror (default) or the live services.

``GEOLESSON_SOURCE=mirror`` (default) points every chapter at the offline mirror on
127.0.0.1, starting it if it is not running; ``GEOLESSON_SOURCE=live`` points them at
Earth Search v1 and Microsoft Planetary Computer. The notebook code is the same in both
modes; only the root URL (and Planetary Computer's URL signing) differs.

This module never imports ``geolesson.mirror``: it reads the URLs the mirror publishes
and, if none is running, starts it with the ``geolesson mirror start`` command.

Network waits are bounded in both modes (:mod:`geolesson.http`): the STAC client and
Planetary Computer's token requests time out and retry with the helpers' HTTP policy, so a
dead or black-holed service fails within about 30 s with an error naming the URL instead of
hanging. GDAL's settings for the COG reads are :mod:`geolesson.gdal`'s;
``sources.configure_gdal`` is that module's :func:`~geolesson.gdal.configure_gdal`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

from geolesson._home import data_dir, mirror_healthy, read_state
from geolesson.gdal import GDAL_HTTP_OPTIONS, configure_gdal  # noqa: F401  (the chapters call sources.configure_gdal)
from geolesson.http import (
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    SourceError,  # noqa: F401  (public here: what live-mode calls raise)
    http_retry,
    http_session,
    mount_bounded_adapters,
)

MODES = ("mirror", "live")
LIVE_STAC_API = {
    "earth-search": "https://earth-search.aws.element84.com/v1",
    "planetary-computer": "https://planetarycomputer.microsoft.com/api/stac/v1",
}
PROVIDERS = tuple(LIVE_STAC_API)

# `geolesson mirror start` from a notebook: a cold start takes ~10 s, one waiting for a build longer
START_TIMEOUT = 300


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
    waits (about 7 minutes without network); fetched here first, with :func:`~geolesson.http.http_retry`
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
    after ``CONNECT_TIMEOUT`` / ``READ_TIMEOUT`` s and are retried with :func:`~geolesson.http.http_retry`.

    Raises:
        SourceError: the API failed or did not answer in time; the message names its URL.
    """
    import pystac_client
    from pystac_client.stac_api_io import StacApiIO

    url = stac_api_url(provider, mode)
    timeout = (CONNECT_TIMEOUT, READ_TIMEOUT)
    stac_io = StacApiIO(timeout=timeout, max_retries=http_retry())
    mount_bounded_adapters(stac_io.session)
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


def request_counts(mode: str | None = None) -> dict:
    """The mirror's per-file request and byte counters (``{"files": {path: {"requests", "bytes"}}, "total"}``),
    and its failed requests (``"failed": {"paths": {path: requests}, "requests": n}``: a 404 for
    a file that does not exist, such as a side-car file GDAL looks for).

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
