"""The mirror's web app: the STAC API and a COG file server with HTTP Range, side by side.

Run with ``uvicorn --factory geolesson.mirror.app:create_app`` and the environment set by
``geolesson.mirror.service`` (``GEOLESSON_FILES_ROOT`` plus libpq's ``PG*`` variables).

Routes:
    ``/files/...``           COGs and thumbnails (Starlette ``StaticFiles``: 206 for Range requests;
                             paths outside the root are refused).
    ``/_mirror/health``      200 when the app and its database pool are up.
    ``/_mirror/stats``       requests and bytes sent per file since start or the last reset (JSON);
                             ``POST /_mirror/stats/reset`` zeroes them.
    ``/``                    the STAC API (stac-fastapi-pgstac).

The file server is mounted beside the STAC app, not inside it: inside, the STAC app's
Brotli middleware would compress 206 responses.
"""

from __future__ import annotations

import os
from collections import defaultdict
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

FILES_PREFIX = "/files"


class CountingFiles:
    """ASGI wrapper that counts requests and response-body bytes per file path."""

    def __init__(self, app):
        self.app = app
        self.counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        key = path[len(FILES_PREFIX):].lstrip("/") if path.startswith(FILES_PREFIX) else path.lstrip("/")
        entry = self.counts[key]
        entry[0] += 1

        async def counting_send(message):
            if message["type"] == "http.response.body":
                entry[1] += len(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, counting_send)

    def snapshot(self) -> dict:
        files = {k: {"requests": r, "bytes": b} for k, (r, b) in sorted(self.counts.items())}
        return {
            "files": files,
            "total": {"requests": sum(v["requests"] for v in files.values()),
                      "bytes": sum(v["bytes"] for v in files.values())},
        }


def create_app() -> Starlette:
    from stac_fastapi.pgstac.app import instantiate_api
    from stac_fastapi.pgstac.config import Settings

    root = Path(os.environ["GEOLESSON_FILES_ROOT"])
    files = CountingFiles(StaticFiles(directory=root, follow_symlink=False))
    settings = Settings(
        stac_fastapi_title="geolesson offline mirror (SIMULATED data)",
        stac_fastapi_description="A local STAC API over simulated Sentinel-2 L2A scenes for the geolesson book.",
    )
    api = instantiate_api(settings=settings)
    # stac-fastapi 7 announces sort as v1.1.0 only; pystac-client 0.9 looks for v1.0.x and warns
    # "does not conform to SORT". Earth Search announces v1.0.0, so the mirror does too.
    api.client.base_conformance_classes.append("https://api.stacspec.org/v1.0.0/item-search#sort")
    stac_app = api.app

    async def health(request: Request) -> JSONResponse:
        ready = getattr(stac_app.state, "readpool", None) is not None
        return JSONResponse({"status": "ok" if ready else "starting"}, status_code=200 if ready else 503)

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse(files.snapshot())

    async def reset(request: Request) -> JSONResponse:
        files.counts.clear()
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
