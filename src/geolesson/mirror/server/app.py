"""The mirror's web app: the STAC API and a COG file server with HTTP Range, side by side.

``geolesson.mirror.server.service`` runs it as ``python -m geolesson.mirror.server.app --home HOME --port N
--pg-port M`` (uvicorn with httptools and uvloop, and the factory :func:`create_app`), so that
every process of a mirror names its home on its command line, with the environment holding
``GEOLESSON_FILES_ROOT`` and libpq's ``PG*`` variables (the database password among them:
never on the command line).

Routes:
    ``/files/...``           COGs and thumbnails (Starlette ``StaticFiles``, read 1 MB at a time:
                             206 for Range requests; paths outside the root are refused).
    ``/_mirror/health``      200 ``{"api": "ok", "database": "ok", "mirror": HOME}`` when a query
                             through the API's own connection pool answers; 503 with the
                             database's error otherwise. ``mirror`` (``GEOLESSON_MIRROR_HOME``)
                             names the mirror home, so that another server answering on the
                             port is not taken for this one.
    ``/_mirror/stats``       requests and bytes sent per file since start or the last reset (JSON),
                             for files that exist; failed requests (404 for a file that does not
                             exist, ...) per path under ``failed``; with ``generation``: the
                             number of resets so far; ``POST /_mirror/stats/reset`` zeroes them.
    ``/``                    the STAC API (stac-fastapi-pgstac).

The file server is mounted beside the STAC app, not inside it: inside, the STAC app's
Brotli middleware would compress 206 responses.
"""

from __future__ import annotations

import argparse
import asyncio
import mimetypes
import os
import socket
import sys
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

FILES_PREFIX = "/files"
# The media types the items declare for the files' suffixes. Python's own table has no .jp2
# and calls .xml text/xml; the system's (/etc/mime.types) differs between machines.
for _type, _suffix in (("image/jp2", ".jp2"), ("application/xml", ".xml"), ("application/json", ".json"),
                       ("image/tiff", ".tif"), ("image/jpeg", ".jpg")):
    mimetypes.add_type(_type, _suffix)

#: bytes per read of a file response. Starlette reads 64 KB at a time, each read a hop to a
#: worker thread; a COG block of the mirror's Sentinel-1 data is ~550 KB, and GDAL asks
#: for up to a few MB at once: 1 MB reads cut a grid epoch of benchmarks/batching.py's
#: plain window reads over HTTP from 1.57-1.62 s to 1.42-1.48 s (the same 280 requests)
FILE_CHUNK_SIZE = 1024 * 1024


class ChunkedFiles(StaticFiles):
    """Starlette ``StaticFiles`` whose file responses read :data:`FILE_CHUNK_SIZE` at a time."""

    def file_response(self, *args, **kwargs):
        """Starlette's file response (200, or 206 for a Range request), read in
        :data:`FILE_CHUNK_SIZE` pieces."""
        response = super().file_response(*args, **kwargs)
        response.chunk_size = FILE_CHUNK_SIZE
        return response


HEALTH_TIMEOUT = 3.0  # seconds for the health route's query, connection included

#: seconds a connection may take to send a request's head (request line and headers), counted
#: from when it opened or from its last response; then it is closed
HEADER_TIMEOUT = 10.0


def header_timeout_protocol():
    """uvicorn's httptools protocol class, closing connections that do not send a complete
    request head within :data:`HEADER_TIMEOUT` s.

    uvicorn (0.55) has only a keep-alive timeout, armed after a response and disarmed by the
    next byte: a client that connects and sends nothing, or half a request line, kept its
    connection (and a file descriptor) for ever; 1,000 of them exhausted the server's
    descriptors. (Slowloris, in a workshop: a crashed notebook's half-open sockets.)
    """
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class HeaderTimeoutProtocol(HttpToolsProtocol):
        _header_timer = None

        def _arm_header_timer(self) -> None:
            self._disarm_header_timer()
            self._header_timer = self.loop.call_later(HEADER_TIMEOUT, self._close_slow)

        def _disarm_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _close_slow(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm_header_timer()

        def on_headers_complete(self) -> None:
            self._disarm_header_timer()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm_header_timer()  # the next request's head, on a kept-alive connection

        def connection_lost(self, exc) -> None:
            self._disarm_header_timer()
            super().connection_lost(exc)

    return HeaderTimeoutProtocol


#: distinct failed paths the counters name; the requests for further ones go under OTHER_FAILED
MAX_FAILED_PATHS = 256
OTHER_FAILED = "(other paths)"


class CountingFiles:
    """ASGI wrapper that counts requests and response-body bytes per file path.

    A path gets an entry only when the file server answers it with a success (200, 206) or
    304. Failed requests (a 404 for a side-car file GDAL probes for, say) are counted per path
    in ``failed``, for at most :data:`MAX_FAILED_PATHS` distinct paths; the rest under
    :data:`OTHER_FAILED`, so the table cannot grow with the number of distinct bogus paths.
    ``generation`` counts the resets, so a reader can tell that the counters it compares were
    zeroed in between.
    """

    def __init__(self, app):
        self.app = app
        self.counts: dict[str, list[int]] = {}
        self.failed: dict[str, int] = {}
        self.generation = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        key = path[len(FILES_PREFIX):].lstrip("/") if path.startswith(FILES_PREFIX) else path.lstrip("/")
        entry = None
        started = False
        generation = self.generation

        async def counting_send(message):
            nonlocal entry, started
            if message["type"] == "http.response.start":
                started = True
                if message["status"] < 400:
                    entry = self.counts.setdefault(key, [0, 0])
                    entry[0] += 1
                else:
                    self._count_failed(key)
            elif message["type"] == "http.response.body" and entry is not None and generation == self.generation:
                entry[1] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        except HTTPException:
            # StaticFiles raises its 404 for the app around it to answer: count it here
            if not started:
                self._count_failed(key)
            raise

    def _count_failed(self, key: str) -> None:
        name = key if key in self.failed or len(self.failed) < MAX_FAILED_PATHS else OTHER_FAILED
        self.failed[name] = self.failed.get(name, 0) + 1

    def reset(self) -> None:
        """Zero the counters and count one more generation."""
        self.counts = {}
        self.failed = {}
        self.generation += 1

    def snapshot(self) -> dict:
        """The counters as JSON: ``generation``, per file path ``requests`` and ``bytes``
        (response-body bytes), and their ``total``."""
        files = {k: {"requests": r, "bytes": b} for k, (r, b) in sorted(self.counts.items())}
        return {
            "generation": self.generation,
            "files": files,
            "total": {"requests": sum(v["requests"] for v in files.values()),
                      "bytes": sum(v["bytes"] for v in files.values())},
            "failed": {"paths": dict(sorted(self.failed.items())),
                       "requests": sum(self.failed.values())},
        }


def create_app() -> Starlette:
    """The mirror's ASGI app (uvicorn ``--factory``): the STAC API (stac-fastapi-pgstac, reading
    ``PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE``) beside the counting COG file server under
    :data:`FILES_PREFIX` serving ``GEOLESSON_FILES_ROOT``, and a health route. KeyError when
    ``GEOLESSON_FILES_ROOT`` is not set."""
    from stac_fastapi.pgstac.app import instantiate_api
    from stac_fastapi.pgstac.config import Settings

    root = Path(os.environ["GEOLESSON_FILES_ROOT"])
    home = os.environ.get("GEOLESSON_MIRROR_HOME", "")
    files = CountingFiles(ChunkedFiles(directory=root, follow_symlink=False))
    settings = Settings(
        stac_fastapi_title="geolesson offline mirror (SIMULATED data)",
        stac_fastapi_description=("A local STAC API over simulated Sentinel-2 L2A (Earth Search schema) "
                                   "and Sentinel-1 RTC (Planetary Computer schema) scenes for the "
                                   "geolesson book."),
    )
    api = instantiate_api(settings=settings)
    # stac-fastapi 7 announces sort as v1.1.0 only; pystac-client 0.9 looks for v1.0.x and warns
    # "does not conform to SORT". Earth Search announces v1.0.0, so the mirror does too.
    api.client.base_conformance_classes.append("https://api.stacspec.org/v1.0.0/item-search#sort")
    stac_app = api.app

    async def health(request: Request) -> JSONResponse:
        pool = getattr(stac_app.state, "readpool", None)
        if pool is None:
            return JSONResponse({"api": "starting", "database": "no connection pool yet", "mirror": home},
                                status_code=503)
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT):
                async with pool.acquire() as conn:
                    # the path every search takes: pool -> PostgreSQL -> pgstac's items table
                    await conn.fetchval("SELECT 1 FROM pgstac.items LIMIT 1")
        except Exception as exc:  # noqa: BLE001 - any failure of the query means unhealthy; report it
            return JSONResponse({"api": "ok", "database": f"{type(exc).__name__}: {exc}", "mirror": home},
                                status_code=503)
        return JSONResponse({"api": "ok", "database": "ok", "mirror": home})

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse(files.snapshot())

    async def reset(request: Request) -> JSONResponse:
        files.reset()
        return JSONResponse(files.snapshot())

    @asynccontextmanager
    async def lifespan(app):
        # Starlette does not run a mounted app's lifespan; without it the pool never exists.
        async with stac_app.router.lifespan_context(stac_app):
            yield

    return Starlette(
        routes=[
            Mount(FILES_PREFIX, app=files),
            Route("/_mirror/health", health),
            Route("/_mirror/stats", stats),
            Route("/_mirror/stats/reset", reset, methods=["POST"]),
            Mount("/", app=stac_app),
        ],
        lifespan=lifespan,
    )


def main(argv: list[str] | None = None) -> None:
    """Serve the app with uvicorn; ``--home`` only names the mirror home on the command line."""
    import uvicorn

    p = argparse.ArgumentParser(prog="python -m geolesson.mirror.server.app")
    p.add_argument("--home", required=True, help="the mirror home this server belongs to")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pg-port", type=int, required=True, help="the PostgreSQL port in PGPORT (for `stop` and `start`)")
    p.add_argument("--fd", type=int, default=None,
                   help="serve on this inherited listening socket (bound to --port by `mirror start`)")
    args = p.parse_args(argv)
    # named, not uvicorn's "auto", which falls back to pure-Python h11 and asyncio without a
    # word when they are missing: a 550 KB range request then takes twice as long
    # (httptools, with a timeout for the request head: header_timeout_protocol)
    config = uvicorn.Config("geolesson.mirror.server.app:create_app", factory=True, host="127.0.0.1",
                            port=args.port, http=header_timeout_protocol(),
                            loop="asyncio" if sys.platform == "win32" else "uvloop",
                            timeout_keep_alive=5, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=None if args.fd is None else [inherited_socket(args.fd)])


def inherited_socket(fd: int) -> socket.socket:
    """The listening socket ``mirror start`` handed down as file descriptor ``fd``, as what
    it is: ``socket.socket`` reads its family (TCP) from the descriptor. uvicorn's own
    ``fd=`` opens every descriptor as a Unix socket, so the event loop serves its
    connections without ``TCP_NODELAY``, and each small range response waits about 40 ms
    for a delayed ACK (Nagle): 100 range requests of 16 KB took 4.4 s instead of 0.1 s."""
    return socket.socket(fileno=fd)


if __name__ == "__main__":
    main()
