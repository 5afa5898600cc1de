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

import rasterio
from rasterio.windows import Window

from geolesson import sources
from geolesson.gdal import GDAL_HTTP_OPTIONS, open_error_cause
from geolesson.http import CONNECT_TIMEOUT, READ_TIMEOUT, http_session


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
        # retried and bounded as every request of the helpers (geolesson.http)
        try:
            r = http_session().head(href, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), allow_redirects=True)
        except Exception as exc:  # noqa: BLE001 - requests' errors: name the href
            raise rasterio.errors.RasterioIOError(f"HEAD {href} failed: {exc}") from exc
        if r.status_code != 200 or "content-length" not in r.headers:
            raise rasterio.errors.RasterioIOError(f"HEAD {href} answered {r.status_code} without a size")
        return int(r.headers["content-length"])
    return os.stat(href).st_size


def _block_end(ds, bidx: int, ovr: int | None, rows: int, cols: int) -> tuple[int, tuple[int, int]]:
    """The largest byte offset + size of any block of one band at one level, and that block's (row, col)."""
    end, where = 0, (0, 0)
    for r in range(rows):
        for c in range(cols):
            offset = ds.get_tag_item(f"BLOCK_OFFSET_{c}_{r}", "TIFF", bidx=bidx, ovr=ovr)
            size = ds.get_tag_item(f"BLOCK_SIZE_{c}_{r}", "TIFF", bidx=bidx, ovr=ovr)
            if offset and size and int(offset) + int(size) > end:
                end, where = int(offset) + int(size), (r, c)
    return end, where


def _truncation(ds, file_size: int) -> str | None:
    """Why the file is shorter than its header says (a block ends past its last byte), or None."""
    block_rows, block_cols = ds.block_shapes[0]
    bands = range(1, ds.count + 1) if ds.tags(ns="IMAGE_STRUCTURE").get("INTERLEAVE") == "BAND" else [1]
    levels = [(None, ds.height, ds.width)] + [
        (i, math.ceil(ds.height / f), math.ceil(ds.width / f)) for i, f in enumerate(ds.overviews(1))]
    for bidx in bands:
        for ovr, height, width in levels:
            end, (r, c) = _block_end(ds, bidx, ovr, math.ceil(height / block_rows), math.ceil(width / block_cols))
            if end > file_size:
                level = "full resolution" if ovr is None else f"overview {ovr}"
                return (f"truncated: block (row {r}, col {c}) of band {bidx} at {level} ends at byte {end}, "
                        f"but the file has {file_size} bytes")
    return None


def inspect(href: str | os.PathLike) -> CogInfo:
    """Read a COG's header (only its first bytes travel) and summarise its layout.

    A file whose blocks end past its last byte (a truncated download or copy) is reported
    as not a valid COG, the truncation first among ``cog_errors``. Over HTTP, requests time
    out and are retried as set in :data:`geolesson.gdal.GDAL_HTTP_OPTIONS` (a server
    that never answers fails within about 30 s).

    Raises:
        TypeError: ``href`` is not a str or path.
        rasterio.errors.RasterioIOError: the file cannot be opened or its size read; the
            message names ``href``.
    """
    from rio_cogeo.cogeo import cog_validate

    if not isinstance(href, (str, os.PathLike)):
        raise TypeError(f"href must be a URL or path (str or os.PathLike), not {type(href).__name__}: {href!r}")
    href = os.fspath(href)
    with rasterio.Env(**GDAL_HTTP_OPTIONS):
        try:
            ds = rasterio.open(href)
        except rasterio.errors.RasterioIOError as exc:
            raise rasterio.errors.RasterioIOError(f"cannot open href={href!r}: {exc}{open_error_cause(href, exc)}") \
                from exc
        file_size = _file_size(href)
        with ds:
            truncated = _truncation(ds, file_size)
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
    if truncated:
        valid, errors = False, [truncated, *errors]
    return CogInfo(href=href, file_size=file_size, is_valid_cog=bool(valid), cog_errors=list(errors), **info)


def blocks_touched(info: CogInfo, window: Window) -> int:
    """How many internal blocks a full-resolution pixel window overlaps (each is one compressed chunk to fetch).

    Args:
        info: the file's :class:`CogInfo` (:func:`inspect`).
        window: a ``rasterio.windows.Window(col_off, row_off, width, height)`` in the file's
            full-resolution pixels. A plain tuple is refused: its order would be a guess.

    Raises:
        TypeError: ``info`` is not a :class:`CogInfo` or ``window`` not a ``rasterio.windows.Window``.
        ValueError: the window has a negative width or height.
    """
    if not isinstance(info, CogInfo):
        raise TypeError(f"info must be the CogInfo that cog.inspect(href) returns, not {type(info).__name__}: {info!r}")
    if not isinstance(window, Window):
        raise TypeError(f"window must be a rasterio.windows.Window(col_off, row_off, width, height), "
                        f"not {type(window).__name__}: {window!r}")
    if window.width < 0 or window.height < 0:
        raise ValueError(f"window={window!r} has a negative size; width and height must be >= 0")
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

    The counters are the mirror's, shared by every client: if another client resets them
    during the block (``reset_request_counts``), the counts cannot be known and the block
    raises instead of reporting a difference of unrelated numbers (never a negative count).

    Raises:
        TypeError: ``href`` is not a str (a local path cannot be counted: pass the asset's URL).
        ValueError: ``href`` is not served by the running mirror, or the source is live.
        RuntimeError: the mirror's counters were reset during the block.
    """
    if not isinstance(href, str):
        raise TypeError(f"href must be the URL (str) of a file on the offline mirror, not "
                        f"{type(href).__name__}: {href!r}")
    state = sources.mirror_state()
    if not href.startswith(state["files_url"]):
        raise ValueError(f"href={href!r} is not on the offline mirror ({state['files_url']}); "
                         "request counting works on the mirror only")
    key = href[len(state["files_url"]):]

    def current() -> tuple[int, int, int | None]:
        counts = sources.request_counts()
        entry = counts["files"].get(key, {"requests": 0, "bytes": 0})
        return entry["requests"], entry["bytes"], counts.get("generation")

    result = ReadCount(href)
    r0, b0, g0 = current()
    yield result
    r1, b1, g1 = current()
    if g1 != g0 or r1 < r0 or b1 < b0:
        raise RuntimeError(f"the mirror's request counters were reset while counting {href} (by another client "
                           f"or notebook: generation {g0} -> {g1}); the reads cannot be counted, run the block again")
    result.requests, result.bytes = r1 - r0, b1 - b0

