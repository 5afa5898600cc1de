"""Where the book's data comes from: the offline mirror (default) or the live services.

``GEOLESSON_SOURCE=mirror`` (default) points every chapter at the offline mirror on
127.0.0.1, starting it if it is not running; ``GEOLESSON_SOURCE=live`` points them at
Earth Search v1 and Microsoft Planetary Computer. The notebook code is the same in both
modes; only the root URL (and Planetary Computer's URL signing) differs.

This module never imports ``geolesson.mirror``: it reads the URLs the mirror publishes
and, if none is running, starts it with the ``geolesson mirror start`` command.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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
GDAL_HTTP_OPTIONS = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF",
    "GDAL_HTTP_MAX_RETRY": "3",
    "GDAL_HTTP_RETRY_DELAY": "1",
}


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
    run = subprocess.run([sys.executable, "-m", "geolesson.cli", "mirror", "start"],
                         capture_output=True, text=True, stdin=subprocess.DEVNULL)
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


def item_modifier(provider: str = "earth-search", mode: str | None = None):
    """The ``modifier`` for ``pystac_client.Client.open``: Planetary Computer's URL signing in
    live mode, ``None`` (no-op) for Earth Search and for the mirror."""
    _check_provider(provider)
    if source_mode(mode) == "live" and provider == "planetary-computer":
        import planetary_computer

        return planetary_computer.sign_inplace
    return None


def sign(obj: Any, provider: str = "earth-search", mode: str | None = None) -> Any:
    """Sign an item, asset or href for reading; returns ``obj`` unchanged where no signing is needed."""
    modifier = item_modifier(provider, mode)
    if modifier is None:
        return obj
    import planetary_computer

    return planetary_computer.sign(obj)


def open_client(provider: str = "earth-search", mode: str | None = None):
    """A ``pystac_client.Client`` on the provider's STAC API (signing included where needed)."""
    import pystac_client

    return pystac_client.Client.open(stac_api_url(provider, mode), modifier=item_modifier(provider, mode))


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
        raise FileNotFoundError(f"data/{name} does not exist in {folder}; the files there are: "
                                f"{', '.join(have) or 'none'}")
    return path


def configure_gdal() -> dict:
    """Set the GDAL HTTP options in this process's environment (if not set already); returns them."""
    for key, value in GDAL_HTTP_OPTIONS.items():
        os.environ.setdefault(key, value)
    return {k: os.environ[k] for k in GDAL_HTTP_OPTIONS}


def request_counts(mode: str | None = None) -> dict:
    """The mirror's per-file request and byte counters (``{"files": {path: {"requests", "bytes"}}, "total"}``).

    Raises:
        ValueError: in live mode (the live services publish no counters).
    """
    if source_mode(mode) == "live":
        raise ValueError("request counters exist only on the offline mirror (GEOLESSON_SOURCE=mirror)")
    return httpx.get(mirror_state()["stats_url"], timeout=10).json()


def reset_request_counts(mode: str | None = None) -> None:
    """Zero the mirror's request counters (mirror mode only, as ``request_counts``)."""
    if source_mode(mode) == "live":
        raise ValueError("request counters exist only on the offline mirror (GEOLESSON_SOURCE=mirror)")
    httpx.post(mirror_state()["stats_url"] + "/reset", timeout=10).raise_for_status()
