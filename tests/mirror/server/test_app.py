"""The mirror's COG file server: HTTP Range, counters, refusal of paths outside its root, loopback only."""

from __future__ import annotations

import http.client
import os

import httpx
import numpy as np
import psutil
import pytest
import rasterio
from rasterio.windows import Window

from geolesson import sources
from geolesson.mirror.layout import files_dir


@pytest.fixture(scope="module")
def red(mirror, local_items):
    rel = local_items[3]["assets"]["red"]["href"].lstrip("/")
    return mirror["files_url"] + rel, files_dir() / rel


def test_range_request_answers_206_with_exact_bytes(red):
    url, path = red
    r = httpx.get(url, headers={"Range": "bytes=1000-1999"})
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes 1000-1999/{path.stat().st_size}"
    assert "content-encoding" not in r.headers  # no compression of ranged COG bytes
    with open(path, "rb") as f:
        f.seek(1000)
        assert r.content == f.read(1000)


def test_ranges_longer_than_a_read_chunk_arrive_whole(mirror, red):
    from geolesson.mirror.server.app import FILE_CHUNK_SIZE

    url, path = red
    size = path.stat().st_size
    start, end = 17, min(size, 2 * FILE_CHUNK_SIZE + 4099) - 1  # over two chunk boundaries
    assert end - start + 1 > FILE_CHUNK_SIZE
    r = httpx.get(url, headers={"Range": f"bytes={start}-{end}"})
    assert r.status_code == 206 and r.headers["content-range"] == f"bytes {start}-{end}/{size}"
    whole = httpx.get(url)
    assert whole.status_code == 200
    data = path.read_bytes()
    assert r.content == data[start:end + 1] and whole.content == data


def test_window_read_over_http_equals_local_read(red):
    url, path = red
    window = Window(700, 300, 600, 500)  # spans four 512 blocks
    with rasterio.Env(**sources.GDAL_HTTP_OPTIONS):
        with rasterio.open(url) as remote, rasterio.open(path) as local:
            np.testing.assert_array_equal(remote.read(1, window=window), local.read(1, window=window))
            np.testing.assert_array_equal(remote.read(1, out_shape=(256, 256)), local.read(1, out_shape=(256, 256)))


def test_counters_count_requests_and_bytes_per_file(mirror, red):
    url, path = red
    key = url[len(mirror["files_url"]):]
    before = sources.request_counts()["files"].get(key, {"requests": 0, "bytes": 0})
    httpx.get(url, headers={"Range": "bytes=0-4095"})
    httpx.get(url, headers={"Range": "bytes=10000-10099"})
    after = sources.request_counts()["files"][key]
    assert after["requests"] - before["requests"] == 2
    assert after["bytes"] - before["bytes"] == 4096 + 100


def test_counters_reset(mirror, red):
    httpx.get(red[0], headers={"Range": "bytes=0-9"})
    sources.reset_request_counts()
    assert sources.request_counts()["total"] == {"requests": 0, "bytes": 0}


@pytest.mark.parametrize("path", [
    "/files/../stac/items.ndjson",
    "/files/%2e%2e/stac/items.ndjson",
    "/files/..%2fstac/items.ndjson",
    "/files/../../../../etc/passwd",
])
def test_paths_outside_the_root_are_refused(mirror, path):
    conn = http.client.HTTPConnection("127.0.0.1", mirror["api_port"], timeout=10)
    conn.request("GET", path)  # sent as is: http.client does not normalise ".."
    response = conn.getresponse()
    body = response.read()
    assert response.status in (400, 404), (path, response.status)
    assert b"sentinel-2-l2a" not in body and b"root:" not in body


def test_every_listening_socket_is_on_loopback(mirror):
    pids = {int(mirror["api_pid"])}
    pg_pid = int((open(os.path.join(mirror["pgdata"], "postmaster.pid")).readline()))
    pids.add(pg_pid)
    listening = [c for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN and c.pid in pids]
    ports = {c.laddr.port for c in listening}
    assert {mirror["api_port"], mirror["pg_port"]} <= ports
    assert {c.laddr.ip for c in listening} == {"127.0.0.1"}


def test_counters_name_failed_requests_and_stay_bounded(tmp_path, monkeypatch):
    """GDAL's probes for side-car files are 404s: counted per path, the paths capped."""
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles
    from starlette.testclient import TestClient

    from geolesson.mirror.server import app as mirror_app

    (tmp_path / "B08.tif").write_bytes(b"x" * 100)
    monkeypatch.setattr(mirror_app, "MAX_FAILED_PATHS", 3)
    # as the mirror's app holds it: StaticFiles raises its 404s for the app around it
    files = mirror_app.CountingFiles(StaticFiles(directory=tmp_path))
    client = TestClient(Starlette(routes=[Mount("/", app=files)]))
    assert client.get("/B08.tif", headers={"Range": "bytes=0-9"}).status_code == 206
    for name in ("B08.aux", "B08.aux", "B08.xml", "B08.msk", "B08.ovr", "B08.AUX"):
        assert client.head(f"/{name}").status_code == 404
    stats = files.snapshot()
    assert stats["total"] == {"requests": 1, "bytes": 10}   # the file itself only
    assert stats["failed"] == {"paths": {"B08.aux": 2, "B08.msk": 1, "B08.xml": 1,
                                         "(other paths)": 2}, "requests": 6}
    files.reset()
    assert files.snapshot()["failed"] == {"paths": {}, "requests": 0}
