"""geolesson.mirror.server.ports: the web app's port is held from the moment it is chosen."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

from geolesson.mirror.server.app import inherited_socket
from geolesson.mirror.server.ports import HOST, listen_on, port_free


def test_a_free_preferred_port_is_listened_on_and_held():
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        free = probe.getsockname()[1]
    said = []
    with listen_on(free, "test server", said.append) as listener:
        assert listener.getsockname() == (HOST, free) and said == []
        # held, not just chosen: another mirror starting now cannot take it
        assert not port_free(free)
        with listen_on(free, "second server", said.append) as second:
            other = second.getsockname()[1]
        assert other != free
        assert said == [f"port {free} for the second server is busy (another program uses it); "
                        f"using free port {other} instead"]
    assert port_free(free)


def test_the_inherited_socket_is_served_as_tcp():
    """uvicorn's own fd= opens a descriptor as a Unix socket; the event loop then serves it
    without TCP_NODELAY, and every small range response waited ~40 ms (Nagle)."""
    with listen_on(0, "test server", print) as listener:
        served = inherited_socket(os.dup(listener.fileno()))
        with served:
            assert served.family == socket.AF_INET and served.type == socket.SOCK_STREAM
            assert served.getsockname() == listener.getsockname()


def test_a_child_process_serves_on_the_inherited_socket(tmp_path):
    """The web app's way: the parent binds, the child serves, no gap between."""
    app = tmp_path / "app.py"
    app.write_text(
        "import sys, uvicorn\n"
        "from geolesson.mirror.server.app import inherited_socket\n"
        "async def app(scope, receive, send):\n"
        "    if scope['type'] == 'http':\n"
        "        await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "        await send({'type': 'http.response.body', 'body': b'served'})\n"
        "server = uvicorn.Server(uvicorn.Config(app, log_level='warning'))\n"
        "server.run(sockets=[inherited_socket(int(sys.argv[1]))])\n")
    with listen_on(0, "test server", print) as listener:
        port = listener.getsockname()[1]
        proc = subprocess.Popen([sys.executable, str(app), str(listener.fileno())],
                                pass_fds=(listener.fileno(),))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://{HOST}:{port}/", timeout=5) as r:
                    assert r.read() == b"served"
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "the child did not serve"
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(10)
