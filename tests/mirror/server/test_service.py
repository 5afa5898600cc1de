"""`geolesson mirror start|status|stop` from the command line, as a learner runs them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import psutil
import pytest

from geolesson._home import state_file


@pytest.fixture(autouse=True)
def refresh_session_state(mirror):
    """These tests restart the mirror, maybe on other ports: keep the session's state dict current."""
    yield
    if geolesson("mirror", "status").returncode != 0:
        assert geolesson("mirror", "start").returncode == 0
    mirror.clear()
    mirror.update(json.loads(state_file().read_text()))


def geolesson(*args):
    return subprocess.run([sys.executable, "-m", "geolesson.cli", *args], capture_output=True, text=True, timeout=180)


def port_listening(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_status_start_is_idempotent(mirror):
    status = geolesson("mirror", "status")
    assert status.returncode == 0 and mirror["api_url"] in status.stdout
    again = geolesson("mirror", "start")
    assert again.returncode == 0 and "already running" in again.stdout
    assert json.loads(state_file().read_text())["api_pid"] == mirror["api_pid"]


def test_stop_leaves_nothing_then_start_again(mirror):
    pids = [mirror["api_pid"], int(open(f"{mirror['pgdata']}/postmaster.pid").readline())]
    stop = geolesson("mirror", "stop")
    assert stop.returncode == 0, stop.stderr
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)
    assert not port_listening(mirror["api_port"]) and not port_listening(mirror["pg_port"])
    status = geolesson("mirror", "status")
    assert status.returncode == 3 and "not running" in status.stdout

    t0 = time.perf_counter()
    start = geolesson("mirror", "start")
    assert start.returncode == 0, start.stderr
    assert "STAC API http://127.0.0.1:" in start.stdout
    assert geolesson("mirror", "status").returncode == 0
    assert time.perf_counter() - t0 < 60


def test_stale_state_is_cleaned_up(mirror):
    stop = geolesson("mirror", "stop")
    assert stop.returncode == 0
    # a state file left behind by a crashed start: a dead pid and a port nobody answers on
    state_file().parent.mkdir(parents=True, exist_ok=True)
    state_file().write_text(json.dumps({"api_url": "http://127.0.0.1:9/", "files_url": "http://127.0.0.1:9/files/",
                                        "api_pid": 999999, "api_port": 9, "pg_port": 9, "pgdata": mirror["pgdata"]}))
    assert "stale" in geolesson("mirror", "status").stdout
    start = geolesson("mirror", "start")
    assert start.returncode == 0, start.stderr
    assert "stale" in start.stdout


def test_busy_port_gets_a_free_one(mirror):
    from geolesson.mirror.server.ports import default_port

    DEFAULT_API_PORT = default_port("api")
    geolesson("mirror", "stop")
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # bind despite TIME_WAIT leftovers
        try:
            blocker.bind(("127.0.0.1", DEFAULT_API_PORT))
            blocker.listen()
        except OSError:
            pass  # another program already holds the usual port: the mirror must avoid it all the same
        start = geolesson("mirror", "start")
        assert start.returncode == 0, start.stderr
        assert f"port {DEFAULT_API_PORT}" in start.stdout and "busy" in start.stdout
        state = json.loads(state_file().read_text())
        assert state["api_port"] != DEFAULT_API_PORT
        assert geolesson("mirror", "status").returncode == 0
        geolesson("mirror", "stop")


def test_a_notebook_that_finds_no_mirror_starts_it(mirror):
    assert geolesson("mirror", "stop").returncode == 0
    code = "from geolesson.sources import stac_api_url; print(stac_api_url('earth-search'))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "GEOLESSON_SOURCE": "mirror"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith("http://127.0.0.1:")
    assert geolesson("mirror", "status").returncode == 0
