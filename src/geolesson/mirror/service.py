"""Start, stop and inspect the mirror: the PostgreSQL cluster and the web app, on 127.0.0.1 only."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


from geolesson._home import mirror_healthy as healthy
from geolesson._home import mirror_home, read_state, state_file
from geolesson.mirror import database
from geolesson.mirror.build import files_dir, inputs_digest, is_built, stac_dir
from geolesson.mirror.database import Cluster, MirrorError

HOST = "127.0.0.1"
DEFAULT_API_PORT = int(os.environ.get("GEOLESSON_MIRROR_PORT", "8765"))
DEFAULT_PG_PORT = int(os.environ.get("GEOLESSON_MIRROR_PG_PORT", "54329"))
READY_TIMEOUT = 60.0


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # as the servers do: a port whose old connections linger in TIME_WAIT is free
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def choose_port(preferred: int, what: str, log) -> int:
    if port_free(preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    log(f"port {preferred} for the {what} is busy (another program uses it); using free port {port} instead")
    return port


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_our_app(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return _pid_alive(pid)
    return "geolesson.mirror.app" in cmdline


def _terminate(pid: int, timeout: float = 10.0) -> None:
    if not _pid_alive(pid) or not _is_our_app(pid):
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            pass
        if not _pid_alive(pid):
            return
        time.sleep(0.05)
    os.killpg(pid, signal.SIGKILL)


def _loaded_marker(home: Path) -> Path:
    return home / "run" / "loaded.json"


def _load_if_needed(home: Path, pg_port: int, files_url: str, log) -> None:
    marker = _loaded_marker(home)
    want = {"inputs": inputs_digest(), "files_url": files_url}
    try:
        if json.loads(marker.read_text()) == want:
            return
    except (FileNotFoundError, json.JSONDecodeError):
        pass
    t0 = time.perf_counter()
    collection = json.loads((stac_dir(home) / "collection.json").read_text())
    items = []
    with open(stac_dir(home) / "items.ndjson") as f:
        for line in f:
            item = json.loads(line)
            for asset in item["assets"].values():
                asset["href"] = files_url + asset["href"].lstrip("/")
            items.append(item)
    database.load(pg_port, collection, items)
    marker.write_text(json.dumps(want))
    log(f"loaded {len(items)} items into pgstac in {time.perf_counter() - t0:.1f} s")


def start(log=print) -> dict:
    """Start the mirror (idempotent) and return its state: URLs, ports and pids.

    Raises:
        MirrorError: the data is not built, PostgreSQL/PostGIS is missing, or a server did not
            become ready before the deadline (the message includes the log's tail).
    """
    home = mirror_home()
    state = read_state()
    if healthy(state):
        log(f"mirror already running: STAC API {state['api_url']}  files {state['files_url']}")
        return state
    if state:
        log("found a stale mirror state (not answering); cleaning it up")
        stop(log=lambda *_: None)
    if not is_built(home):
        raise MirrorError(f"the mirror's data is missing or out of date in {home}; run `geolesson mirror build` first")

    t0 = time.perf_counter()
    (home / "run").mkdir(parents=True, exist_ok=True)
    cluster = Cluster(home)
    if cluster.running():
        pg_port = cluster.port()
    else:
        pg_port = choose_port(DEFAULT_PG_PORT, "mirror's PostgreSQL", log)
        cluster.start(pg_port)
    api_port = choose_port(DEFAULT_API_PORT, "mirror's STAC API", log)
    api_url = f"http://{HOST}:{api_port}/"
    files_url = f"{api_url}files/"
    try:
        _load_if_needed(home, pg_port, files_url, log)
    except Exception:
        cluster.stop()
        raise

    env = {
        **os.environ,
        "GEOLESSON_FILES_ROOT": str(files_dir(home)),
        "PGHOST": HOST, "PGPORT": str(pg_port), "PGUSER": database.SUPERUSER,
        "PGPASSWORD": "", "PGDATABASE": database.DATABASE,
        # hydrate items (merge the collection's item_assets back in) in Python: pgstac's SQL
        # hydration costs ~4 ms per item, most of a search's time (44 of 52 ms for 10 items)
        "USE_API_HYDRATE": "true",
    }
    env.pop("ENABLED_EXTENSIONS", None)  # unset: every read-only extension (query, sort, fields, filter, ...)
    logfile = home / "run" / "api.log"
    with open(logfile, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "geolesson.mirror.app:create_app",
             "--host", HOST, "--port", str(api_port), "--log-level", "warning", "--no-access-log"],
            env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    state = {"api_url": api_url, "files_url": files_url, "stats_url": f"{api_url}_mirror/stats",
             "api_port": api_port, "api_pid": proc.pid, "pg_port": pg_port, "pgdata": str(cluster.pgdata),
             "home": str(home)}
    deadline = time.monotonic() + READY_TIMEOUT
    while not healthy(state, timeout=1.0):
        if proc.poll() is not None or time.monotonic() > deadline:
            _terminate(proc.pid)
            cluster.stop()
            why = "exited" if proc.poll() is not None else f"was not ready within {READY_TIMEOUT:.0f} s"
            raise MirrorError(f"the mirror's web app {why}; its log ({logfile}) ends with:\n"
                              f"{logfile.read_text()[-3000:]}")
        time.sleep(0.1)
    state_file().write_text(json.dumps(state, indent=1))
    log(f"mirror started in {time.perf_counter() - t0:.1f} s: STAC API {api_url}  files {files_url}")
    return state


def stop(log=print) -> None:
    """Stop the web app and PostgreSQL; afterwards no mirror process or listening port remains."""
    home = mirror_home()
    state = read_state()
    if state and state.get("api_pid"):
        _terminate(int(state["api_pid"]))
    try:
        cluster = Cluster(home)
    except MirrorError:  # no PostgreSQL installed: no cluster can be running
        cluster = None
    if cluster is not None and cluster.running():
        cluster.stop()
    state_file().unlink(missing_ok=True)
    log("mirror stopped" if state else "mirror was not running")


def status() -> tuple[bool, str]:
    """(up, message) for ``geolesson mirror status``."""
    state = read_state()
    if healthy(state):
        return True, f"running: STAC API {state['api_url']}  files {state['files_url']}  (PostgreSQL on {HOST}:{state['pg_port']})"
    if state:
        return False, "not running (stale state from an earlier start; `geolesson mirror start` cleans it up)"
    return False, "not running"


__all__ = ["start", "stop", "status", "healthy", "MirrorError"]
