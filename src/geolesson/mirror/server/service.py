"""Start, stop and inspect the mirror: the PostgreSQL cluster and the web app, on 127.0.0.1 only.

``start`` and ``stop`` hold the mirror home's lifecycle lock (:mod:`geolesson.mirror.server.lock`).
``start`` is idempotent and repairs a half-dead mirror: it restarts whichever of PostgreSQL
and the web app died (or stopped answering) and says what it repaired. ``stop`` finds this
home's processes even without ``run/state.json``: the web app is
``python -m geolesson.mirror.server.app --home <home> ...`` (recorded in ``run/api.pid`` and
recognised by its command line, never another checkout's mirror:
:mod:`geolesson.mirror.server.processes`) and PostgreSQL is found by its data directory.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from geolesson._home import mirror_healthy as healthy
from geolesson._home import mirror_home, read_state, state_file
from geolesson.mirror.layout import data_problems, files_dir, remove_leftovers
from geolesson.mirror.server import database
from geolesson.mirror.server.database import Cluster, MirrorError, load_if_needed
from geolesson.mirror.server.lock import lifecycle_lock
from geolesson.mirror.server.ports import HOST, choose_port, default_port, listen_on
from geolesson.mirror.server.processes import APP_MODULE, api_processes, pid_file, terminate

READY_TIMEOUT = 60.0
# after PostgreSQL came back, how long the running web app may take to reconnect before it is restarted
RECONNECT_TIMEOUT = 10.0
# how long a running PostgreSQL may take to answer one query before it is called hung
DIAGNOSE_TIMEOUT = 5.0


def anything_running(home: Path | None = None) -> bool:
    """Whether any process of this home's mirror (web app or PostgreSQL) runs."""
    home = home or mirror_home()
    if api_processes(home):
        return True
    try:
        return Cluster(home).running()
    except MirrorError:
        return False


def _check_data(home: Path) -> None:
    problems = data_problems(home)
    if problems is None:
        raise MirrorError(f"the mirror's data is missing or out of date in {home}; run `geolesson mirror build` first")
    if problems:
        shown = "\n  ".join(problems[:20]) + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise MirrorError(f"the mirror's data in {home} is damaged:\n  {shown}\n"
                          "rebuild it with `geolesson mirror build` (it rebuilds damaged data)")


def _state(home: Path, api_pid: int, api_port: int, pg_port: int, cluster: Cluster) -> dict:
    api_url = f"http://{HOST}:{api_port}/"
    return {"api_url": api_url, "files_url": f"{api_url}files/", "stats_url": f"{api_url}_mirror/stats",
            "api_port": api_port, "api_pid": api_pid, "pg_port": pg_port, "pgdata": str(cluster.pgdata),
            "home": str(home)}


def _launch_api(home: Path, cluster: Cluster, listener: socket.socket, pg_port: int) -> subprocess.Popen:
    """The web app, serving on ``listener`` (inherited; ``--port`` names its port for
    :func:`~geolesson.mirror.server.processes.api_processes`)."""
    api_port = listener.getsockname()[1]
    # pass_fds is POSIX only: on Windows the app binds --port itself, once the listener is closed
    inherit = os.name == "posix"
    if not inherit:
        listener.close()
    env = {
        **os.environ,
        "GEOLESSON_FILES_ROOT": str(files_dir(home)),
        # the health route names it, so that `status` and `start` know the answer is this mirror's
        "GEOLESSON_MIRROR_HOME": str(home),
        "PGHOST": HOST, "PGPORT": str(pg_port), "PGUSER": database.SUPERUSER,
        "PGPASSWORD": cluster.password(), "PGDATABASE": database.DATABASE,
        # hydrate items (merge the collection's item_assets back in) in Python: pgstac's SQL
        # hydration costs ~4 ms per item, most of a search's time (44 of 52 ms for 10 items)
        "USE_API_HYDRATE": "true",
    }
    env.pop("ENABLED_EXTENSIONS", None)  # unset: every read-only extension (query, sort, fields, filter, ...)
    with open(home / "run" / "api.log", "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", APP_MODULE, "--home", str(home), "--port", str(api_port),
             "--pg-port", str(pg_port), *(["--fd", str(listener.fileno())] if inherit else [])],
            env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            pass_fds=(listener.fileno(),) if inherit else (),
        )
    pid_file(home).write_text(f"{proc.pid}\n")
    return proc


def _wait_healthy(state: dict, proc: subprocess.Popen | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not healthy(state, timeout=1.0):
        if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def start(log=print) -> dict:
    """Start the mirror, or repair it, and return its state: URLs, ports and pids.

    Idempotent: a healthy mirror is left as it is ("already running"). Whatever of it died
    is restarted (PostgreSQL on its old port where free; the web app if it is gone, points
    at another database port, or does not answer within ``RECONNECT_TIMEOUT`` s once the
    database is back), and each repair is logged.

    Raises:
        ValueError: ``GEOLESSON_MIRROR_PORT`` / ``GEOLESSON_MIRROR_PG_PORT`` is not a port number
            (checked before anything starts).
        MirrorError: the data is not built, out of date or damaged (names the files),
            PostgreSQL/PostGIS is missing, or a server did not become ready before the
            deadline (the message includes the log's tail).
    """
    preferred_api, preferred_pg = default_port("api"), default_port("pg")
    home = mirror_home()
    with lifecycle_lock(home, "start", log):
        return _start(home, preferred_api, preferred_pg, log)


def _start(home: Path, preferred_api: int, preferred_pg: int, log) -> dict:
    state = read_state()
    apis = api_processes(home)
    if healthy(state) and state.get("api_pid") in apis and len(apis) == 1:
        log(f"mirror already running: STAC API {state['api_url']}  files {state['files_url']}")
        return state
    remove_leftovers(home)
    _check_data(home)
    t0 = time.perf_counter()
    (home / "run").mkdir(parents=True, exist_ok=True)
    repaired: list[str] = []
    if state is None and state_file().exists():
        repaired.append(f"{state_file()} was unreadable: rewrote it")

    cluster = Cluster(home)
    if state and not apis and not cluster.running():
        log("found a stale mirror state (nothing of it runs); starting afresh")
        state = None
    if cluster.running():
        pg_port = cluster.port()
        problem = cluster.diagnose(pg_port, DIAGNOSE_TIMEOUT)
        if problem:  # ours but hung: say so; restarting the web app would not help and kills a working one
            raise MirrorError(f"{problem}. Nothing was stopped.")
    else:
        old = cluster.port() or (state or {}).get("pg_port")
        pg_port = choose_port(old or preferred_pg, "mirror's PostgreSQL", log)
        cluster.start(pg_port, log)
        if apis or state:
            repaired.append(f"PostgreSQL was not running: restarted it on {HOST}:{pg_port}")

    # keep at most one web app, and only one that talks to this PostgreSQL
    keep = None
    for pid, args in sorted(apis.items()):
        if keep is None and args["pg_port"] == pg_port:
            keep = pid
            continue
        terminate(pid)
        why = "a second copy" if args["pg_port"] == pg_port else f"it used PostgreSQL port {args['pg_port']}"
        repaired.append(f"stopped web app pid {pid} ({why})")
    if keep is not None:
        api_port = apis[keep]["port"]
        state = _state(home, keep, api_port, pg_port, cluster)
        load_if_needed(home, cluster, pg_port, state["files_url"], log)
        if _wait_healthy(state, None, RECONNECT_TIMEOUT):
            if state != read_state():
                state_file().write_text(json.dumps(state, indent=1))
                pid_file(home).write_text(f"{keep}\n")
                if not repaired:
                    repaired.append(f"{state_file()} was missing or stale: rewrote it")
            log(f"mirror repaired: {'; '.join(repaired)}. STAC API {state['api_url']}  files {state['files_url']}"
                if repaired else f"mirror already running: STAC API {state['api_url']}  files {state['files_url']}")
            return state
        terminate(keep)
        repaired.append(f"the web app (pid {keep}) did not answer: restarted it")
    elif state:
        repaired.append("the web app was not running: started it")

    with listen_on(preferred_api, "mirror's STAC API", log) as listener:
        state = _state(home, 0, listener.getsockname()[1], pg_port, cluster)
        try:
            load_if_needed(home, cluster, pg_port, state["files_url"], log)
        except Exception:
            cluster.stop()
            raise
        proc = _launch_api(home, cluster, listener, pg_port)
    state["api_pid"] = proc.pid
    if not _wait_healthy(state, proc, READY_TIMEOUT):
        terminate(proc.pid)
        cluster.stop()
        logfile = home / "run" / "api.log"
        why = "exited" if proc.poll() is not None else f"was not ready within {READY_TIMEOUT:.0f} s"
        raise MirrorError(f"the mirror's web app {why}; its log ({logfile}) ends with:\n{logfile.read_text()[-3000:]}")
    state_file().write_text(json.dumps(state, indent=1))
    what = f"mirror repaired ({'; '.join(repaired)})" if repaired else "mirror started"
    log(f"{what} in {time.perf_counter() - t0:.1f} s: STAC API {state['api_url']}  files {state['files_url']}")
    return state


def stop(log=print) -> None:
    """Stop this home's web app(s) and PostgreSQL, with or without ``run/state.json``.

    Afterwards no process or listening port of this mirror remains. Another checkout's
    mirror (another home) is never touched.
    """
    home = mirror_home()
    with lifecycle_lock(home, "stop", log):
        state = read_state()
        stopped = []
        for pid in api_processes(home):
            terminate(pid)
            stopped.append(f"web app (pid {pid})")
        try:
            cluster = Cluster(home)
        except MirrorError:  # no PostgreSQL installed: no cluster can be running
            cluster = None
        if cluster is not None and cluster.running():
            cluster.stop()
            stopped.append("PostgreSQL")
        state_file().unlink(missing_ok=True)
        pid_file(home).unlink(missing_ok=True)
    log(f"mirror stopped: {', '.join(stopped)}" if stopped
        else "mirror was not running" + (" (removed its stale state)" if state else ""))


def status() -> tuple[bool, str]:
    """(up, message) for ``geolesson mirror status``: the STAC API and PostgreSQL, each on its own line.

    Up only when every part answers as itself: this home's PostgreSQL runs and answers a
    query, and the web app at the state's URL is this home's process and its health route
    names this home (another server answering on the port does not count).
    """
    import httpx

    home = mirror_home()
    state = read_state()
    apis = api_processes(home)
    pg_up = False
    try:
        cluster = Cluster(home)
        pg_up = cluster.running()
        pg_port = cluster.port() if pg_up else None
    except MirrorError as exc:
        pg_line = f"PostgreSQL: not available ({exc})"
    else:
        pg_line = f"PostgreSQL: running on {HOST}:{pg_port}" if pg_up else "PostgreSQL: not running"
        if pg_up and (problem := cluster.diagnose(pg_port, DIAGNOSE_TIMEOUT)):
            pg_up, pg_line = False, f"PostgreSQL: {problem}"
        elif not pg_up and (foreign := cluster.foreign_pid()):
            pg_line = (f"PostgreSQL: not running (its lock file names pid {foreign[0]}, {foreign[1]!r}, "
                       "which is not this mirror's server: a stale file)")
    up = False
    if state:
        try:
            r = httpx.get(f"{state['api_url']}_mirror/health", timeout=5)
            health = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
            health = health if isinstance(health, dict) else {}
            up = r.status_code == 200
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            health = {"api": f"not answering ({type(exc).__name__})"}
        ours = health.get("mirror") == state.get("home") and state.get("api_pid") in apis
        if up and not ours:
            up = False
            api_line = (f"STAC API: not running; another server answers at {state['api_url']} "
                        f"(not this mirror's web app{'' if apis else ', which is not running'})")
        elif up:
            api_line = f"STAC API: running at {state['api_url']} (files {state['files_url']})"
        elif health.get("api") == "ok":
            api_line = (f"STAC API: running at {state['api_url']} but its database queries fail: "
                        f"{health.get('database')}")
        else:
            api_line = f"STAC API: {health.get('api', 'not answering')} at {state['api_url']}"
        if not apis and not up and "another server" not in api_line:
            api_line = "STAC API: not running (stale state from an earlier start)"
    else:
        api_line = (f"STAC API: process(es) {', '.join(map(str, apis))} run without a readable state file"
                    if apis else "STAC API: not running")
    if up and pg_up:
        return True, f"running\n  {api_line}\n  {pg_line}"
    hint = "`geolesson mirror start` repairs it" if (apis or pg_up or state) else "`geolesson mirror start` starts it"
    return False, f"not running ({hint})\n  {api_line}\n  {pg_line}"


__all__ = ["start", "stop", "status", "anything_running", "healthy", "MirrorError"]
