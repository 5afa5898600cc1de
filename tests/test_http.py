"""Live-mode network faults the helpers name within their bounds, on local stand-in servers:
a DNS server that never answers (the resolver replaced in this process), a connection reset
in the middle of a response, an error page where a COG should be."""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest
import rasterio

from geolesson import cog, http, sources
from geolesson.chips import files


@pytest.fixture
def silent_resolver(monkeypatch):
    """``socket.getaddrinfo`` whose DNS server never answers host names: it gives up after 20
    s, as glibc does after its own tries (IP addresses still resolve)."""
    real, never = socket.getaddrinfo, threading.Event()

    def getaddrinfo(host, *args, **kwargs):
        if host is None or _is_ip(host):
            return real(host, *args, **kwargs)
        never.wait(20)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(http, "RESOLVE_TIMEOUT", 1.0)
    monkeypatch.setattr(http, "_resolved", {})  # nothing resolved earlier in this process counts
    yield
    never.set()  # the lookup threads left waiting end


def _is_ip(host) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def timed(call):
    t0 = time.perf_counter()
    with pytest.raises(Exception) as info:
        call()
    return info.value, time.perf_counter() - t0


def test_a_dns_server_that_never_answers_fails_within_the_resolve_timeout(silent_resolver):
    api = "https://earth-search.aws.element84.com/v1"
    exc, seconds = timed(lambda: sources.open_client("earth-search", mode="live"))
    assert isinstance(exc, sources.SourceError) and seconds < 5
    assert api in str(exc) and "earth-search.aws.element84.com did not resolve within 1 s" in str(exc)
    blob = "https://acct.blob.core.windows.net/cont/a.tif"
    exc, seconds = timed(lambda: sources.sign(blob, "planetary-computer", mode="live"))
    assert isinstance(exc, sources.SourceError) and seconds < 5
    assert "planetarycomputer.microsoft.com did not resolve" in str(exc)


@pytest.fixture
def resetting_server():
    """A server that answers every request with a 200 header announcing 4000 bytes, sends the
    start of the body given by the path (``/tiff``: a TIFF header; else JSON), then resets
    the connection: its base URL."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            request = conn.recv(65536)
            body = b"II*\x00" + bytes(300) if b" /tiff" in request else b'{"type": "Catalog", "id": "x"'
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4000\r\n\r\n" + body)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    server.close()


def test_a_reset_in_the_middle_of_a_response_is_named(resetting_server, monkeypatch):
    href = f"{resetting_server}/tiff/B04.tif"
    exc, seconds = timed(lambda: cog.inspect(href))
    assert isinstance(exc, rasterio.errors.RasterioIOError) and seconds < 30
    assert href in str(exc) and "Connection reset by peer" in str(exc)
    exc, _ = timed(lambda: files.open_dataset(href))
    assert isinstance(exc, OSError) and href in str(exc) and "Connection reset by peer" in str(exc)

    monkeypatch.setitem(sources.LIVE_STAC_API, "earth-search", f"{resetting_server}/v1")
    exc, seconds = timed(lambda: sources.open_client("earth-search", mode="live"))
    assert isinstance(exc, sources.SourceError) and seconds < 30
    assert f"{resetting_server}/v1" in str(exc) and "Connection reset by peer" in str(exc)


def test_an_error_page_where_a_cog_should_be_is_named(tmp_path):
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    async def portal(request):  # a captive portal or a proxy's login page answers 200
        return HTMLResponse("<html><body>Please log in to the Wi-Fi</body></html>")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/{path:path}", portal)]), host="127.0.0.1",
                                           port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        href = f"http://127.0.0.1:{port}/scene/B04.tif"
        exc, _ = timed(lambda: cog.inspect(href))
        assert href in str(exc) and "do not start a TIFF" in str(exc) and "<html>" in str(exc)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_the_cause_is_not_guessed_for_a_local_file(tmp_path):
    path = tmp_path / "notes.tif"
    path.write_text("not a tiff")
    exc, _ = timed(lambda: cog.inspect(path))
    assert str(path) in str(exc) and "cause:" not in str(exc)


def test_a_host_that_just_resolved_is_not_looked_up_again(monkeypatch):
    lookups = []
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: lookups.append(host) or [])
    monkeypatch.setattr(http, "_resolved", {})
    for _ in range(3):
        http.resolve_within("https://earth-search.aws.element84.com/v1/search")
    assert lookups == ["earth-search.aws.element84.com"]
