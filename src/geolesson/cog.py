"""Look inside a Cloud-Optimized GeoTIFF and count what a read really fetches.

A COG is a GeoTIFF whose pixels are stored in internal tiles (*blocks*, e.g. 1024 x 1024),
with reduced-resolution copies (*overviews*) and the header (the IFDs) at the start of
the file, so a client can fetch only the bytes of the blocks it needs with HTTP Range
requests. Specification: OGC Cloud Optimized GeoTIFF Standard 1.0 (OGC 21-026).
"""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlparse

import httpx
import rasterio
from rasterio.windows import Window

from geolesson import sources


@dataclass(frozen=True)
class CogInfo:
    """What a COG's header says.

    Attributes:
        href: where it was read from (URL or path).
        width, height: full-resolution size in pixels.
        count: number of bands; dtype: numpy dtype name of the pixels.
        crs: e.g. ``"EPSG:32635"``; resolution: (x, y) pixel size in CRS units (metres for UTM).
        bounds: (left, bottom, right, top) in the CRS.
        block_shape: (rows, cols) of one internal block.
        blocks: (rows, cols) of blocks covering the full-resolution image.
        overviews: decimation factors of the internal overviews, e.g. ``[2, 4, 8]``.
        overview_shapes: (height, width) of each overview.
        compression: e.g. ``"deflate"``; predictor: TIFF predictor (1 none, 2 horizontal, 3 float).
        nodata: the nodata value, or None.
        file_size: bytes of the whole file.
        is_valid_cog: whether ``rio_cogeo.cog_validate`` accepts it; cog_errors: its complaints.
    """

    href: str
    width: int
    height: int
    count: int
    dtype: str
    crs: str
    resolution: tuple[float, float]
    bounds: tuple[float, float, float, float]
    block_shape: tuple[int, int]
    blocks: tuple[int, int]
    overviews: list[int]
    overview_shapes: list[tuple[int, int]]
    compression: str | None
    predictor: int | None
    nodata: float | None
    file_size: int
    is_valid_cog: bool
    cog_errors: list[str] = field(default_factory=list)

    @property
    def uncompressed_size(self) -> int:
        """Bytes of the full-resolution pixels, uncompressed."""
        import numpy as np

        return self.width * self.height * self.count * np.dtype(self.dtype).itemsize


def _file_size(href: str) -> int:
    if urlparse(href).scheme in ("http", "https"):
        r = httpx.head(href, timeout=30, follow_redirects=True)
        if r.status_code != 200:
            raise OSError(f"HEAD {href} answered {r.status_code}")
        return int(r.headers["content-length"])
    return os.stat(href).st_size


def inspect(href: str | os.PathLike) -> CogInfo:
    """Read a COG's header (only its first bytes travel) and summarise its layout.

    Raises:
        rasterio.errors.RasterioIOError: the file cannot be opened; the message names ``href``.
    """
    from rio_cogeo.cogeo import cog_validate

    href = str(href)
    with rasterio.Env(**sources.GDAL_HTTP_OPTIONS):
        try:
            ds = rasterio.open(href)
        except rasterio.errors.RasterioIOError as exc:
            raise rasterio.errors.RasterioIOError(f"cannot open {href}: {exc}") from exc
        with ds:
            block_rows, block_cols = ds.block_shapes[0]
            factors = ds.overviews(1)
            tags = ds.tags(ns="IMAGE_STRUCTURE")
            info = dict(
                width=ds.width, height=ds.height, count=ds.count, dtype=ds.dtypes[0],
                crs=ds.crs.to_string() if ds.crs else "", resolution=tuple(ds.res), bounds=tuple(ds.bounds),
                block_shape=(block_rows, block_cols),
                blocks=(math.ceil(ds.height / block_rows), math.ceil(ds.width / block_cols)),
                overviews=list(factors),
                overview_shapes=[(math.ceil(ds.height / f), math.ceil(ds.width / f)) for f in factors],
                compression=ds.compression.value.lower() if ds.compression else None,
                predictor=int(tags["PREDICTOR"]) if "PREDICTOR" in tags else None,
                nodata=ds.nodata,
            )
        valid, errors, _ = cog_validate(href, quiet=True)
    return CogInfo(href=href, file_size=_file_size(href), is_valid_cog=bool(valid), cog_errors=list(errors), **info)


def blocks_touched(info: CogInfo, window: Window) -> int:
    """How many internal blocks a full-resolution pixel window overlaps (each is one compressed chunk to fetch)."""
    br, bc = info.block_shape
    row0, col0 = max(0, int(window.row_off)), max(0, int(window.col_off))
    row1 = min(info.height, int(math.ceil(window.row_off + window.height)))
    col1 = min(info.width, int(math.ceil(window.col_off + window.width)))
    if row1 <= row0 or col1 <= col0:
        return 0
    return ((row1 - 1) // br - row0 // br + 1) * ((col1 - 1) // bc - col0 // bc + 1)


@dataclass
class ReadCount:
    """Requests and bytes the mirror's file server sent for one file during a ``count_reads`` block."""

    href: str
    requests: int = 0
    bytes: int = 0


@contextmanager
def count_reads(href: str):
    """Count the HTTP requests and bytes the mirror serves for ``href`` inside the ``with`` block.

    Uses the offline mirror's server-side counters, so it sees exactly what crossed the
    wire (GDAL's header read, Range requests, retries), whoever made them. What crossed
    depends on what this process read before: GDAL caches downloaded blocks and headers per
    URL, and xarray keeps files open. For a cold measurement open and close the file inside
    the block and set ``CPL_VSIL_CURL_NON_CACHED`` (or use a fresh process).

    Raises:
        ValueError: ``href`` is not served by the running mirror, or the source is live.
    """
    state = sources.mirror_state()
    if not href.startswith(state["files_url"]):
        raise ValueError(f"href={href!r} is not on the offline mirror ({state['files_url']}); "
                         "request counting works on the mirror only")
    key = href[len(state["files_url"]):]

    def current() -> tuple[int, int]:
        entry = sources.request_counts()["files"].get(key, {"requests": 0, "bytes": 0})
        return entry["requests"], entry["bytes"]

    result = ReadCount(href)
    r0, b0 = current()
    try:
        yield result
    finally:
        r1, b1 = current()
        result.requests, result.bytes = r1 - r0, b1 - b0

