"""``geolesson check``: the install self-test a learner runs first.

Each line says ok or FAILED, with a hint for the failures. Returns True when all pass.
"""

from __future__ import annotations

import importlib
from typing import Callable

REQUIRED = ("numpy", "xarray", "rasterio", "rioxarray", "pystac_client", "geopandas", "pyproj", "matplotlib", "cql2")


def _imports() -> str:
    missing = []
    for name in REQUIRED:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            missing.append(f"{name} ({exc})")
    if missing:
        raise RuntimeError("cannot import " + ", ".join(missing))
    return f"{len(REQUIRED)} packages import"


def _versions() -> str:
    import pyproj
    import rasterio

    return f"GDAL {rasterio.__gdal_version__}, PROJ {pyproj.proj_version_str}, rasterio {rasterio.__version__}"


def _endpoint() -> str:
    from geolesson import sources

    mode = sources.source_mode()
    # the landing page, with the same timeouts and retries as every chapter's client
    _endpoint.client = sources.open_client("earth-search")
    return f"{mode} STAC API answers at {_endpoint.client.self_href or sources.stac_api_url('earth-search')}"


def _search() -> str:
    client = getattr(_endpoint, "client", None)
    if client is None:
        raise RuntimeError("skipped: the STAC API did not answer")
    items = list(client.search(collections=["sentinel-2-l2a"], bbox=[27.86, 36.0, 28.06, 36.22],
                               datetime="2023-07-01/2023-07-31", max_items=1).items())
    if not items:
        raise RuntimeError("the search returned no item")
    _search.item = items[0]
    return f"search found {items[0].id}"


def _read() -> str:
    from geolesson import sources
    from geolesson.chips.files import read

    item = getattr(_search, "item", None)
    if item is None:
        raise RuntimeError("skipped: the search failed")
    href = sources.sign(item.assets["red"].href)
    block = read(href, 0, 256, 0, 256)  # its errors name the href
    return f"read a 256x256 window of {item.id} red at {href} ({block.dtype}, mean DN {block.mean():.0f})"


def _mirror_data() -> str:
    from geolesson import sources

    if sources.source_mode() == "live":
        return "skipped in live mode"
    from geolesson import mirror

    ok, message = mirror.verify()
    if not ok:
        raise RuntimeError(message)
    return message


CHECKS: list[tuple[str, Callable[[], str], str]] = [
    ("imports", _imports, "reinstall: `make book` (or `pip install -e .[book]`), or use environment.yml"),
    ("GDAL/PROJ", _versions, "rasterio or pyproj is broken; reinstall them from wheels or conda-forge"),
    ("data source", _endpoint, "mirror mode: `geolesson mirror build` then `geolesson mirror start`; "
                               "live mode: check your internet connection"),
    ("STAC search", _search, "the API answered but searching failed: `geolesson mirror stop` then `start`, "
                             "or check the live service"),
    ("COG window read", _read, "GDAL could not read over HTTP: check the GDAL_* options in geolesson.gdal"),
    ("mirror data", _mirror_data, "rebuild the damaged files: `geolesson mirror build`"),
]


def run_checks(print_fn: Callable[[str], None] = print) -> bool:
    """Run every check of :data:`CHECKS` in order, print one line each (``ok`` or ``FAILED`` with
    a hint) with ``print_fn``, and return whether all passed. A check that fails is reported,
    never raised; a later check that needs it says it was skipped."""
    _endpoint.client = None
    _search.item = None
    ok = True
    for name, check, hint in CHECKS:
        try:
            print_fn(f"ok      {name}: {check()}")
        except Exception as exc:  # a self-test reports every failure, whatever it is
            ok = False
            print_fn(f"FAILED  {name}: {exc}\n        hint: {hint}")
    return ok
