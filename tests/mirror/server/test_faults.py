"""Faults the mirror and the live-mode clients must survive (issue 12, items 1-8), on real servers.

Each test breaks something the way a workshop does (kill -9, a garbled or deleted state file,
concurrent starts, an interrupted build, damaged files, another account, a dead or flaky
network) and asserts the recovery or the clear error, and that after ``stop`` no process or
port of the mirror remains.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from geolesson._home import mirror_home, state_file

# an upper bound with margin for "fails within 30 s" on a loaded machine, not a timing assertion
DEADLINE = 45.0


def geolesson(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "geolesson.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def api_pids(home: Path) -> list[int]:
    """This home's web app processes, found by their command line (what `stop` must end)."""
    found = []
    for p in psutil.process_iter(["cmdline", "status"]):
        cmd = p.info["cmdline"] or []
        if "geolesson.mirror.server.app" in cmd and str(home) in cmd and p.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(p.pid)
    return found


def postmaster_pid(pgdata) -> int | None:
    try:
        return int(Path(pgdata, "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def alive(pid) -> bool:
    return pid is not None and psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE


def assert_nothing_left(state: dict) -> None:
    """No web app of this home, no PostgreSQL of its cluster, neither port listening."""
    home = mirror_home()
    pg_pid = postmaster_pid(state["pgdata"])
    assert api_pids(home) == []
    assert not alive(pg_pid) and not alive(state.get("api_pid"))
    assert not listening(state["api_port"]) and not listening(state["pg_port"])


def started_url(stdout: str) -> str:
    return re.search(r"STAC API (http://127\.0\.0\.1:\d+/)", stdout).group(1)


def search_count(api_url: str) -> int:
    import pystac_client

    client = pystac_client.Client.open(api_url)
    return client.search(collections=["sentinel-2-l2a"], max_items=1).matched()


@pytest.fixture
def running(mirror):
    """The session mirror, running; afterwards running again and the session's state dict current."""
    assert geolesson("mirror", "start").returncode == 0
    mirror.clear()
    mirror.update(json.loads(state_file().read_text()))
    yield mirror
    if geolesson("mirror", "status").returncode != 0:
        start = geolesson("mirror", "start")
        assert start.returncode == 0, start.stdout + start.stderr
    mirror.clear()
    mirror.update(json.loads(state_file().read_text()))


# -- 1. a dead database is not healthy ----------------------------------------------------

def test_killed_postgres_is_reported_then_repaired(running):
    os.kill(postmaster_pid(running["pgdata"]), signal.SIGKILL)
    status = geolesson("mirror", "status")
    assert status.returncode == 3, status.stdout
    assert "PostgreSQL: not running" in status.stdout
    start = geolesson("mirror", "start")
    assert start.returncode == 0, start.stdout + start.stderr
    assert "repaired" in start.stdout and "PostgreSQL was not running: restarted it" in start.stdout
    state = json.loads(state_file().read_text())
    assert geolesson("mirror", "status").returncode == 0
    assert search_count(state["api_url"]) > 0


def test_health_runs_a_real_query(running):
    import httpx

    r = httpx.get(running["api_url"] + "_mirror/health", timeout=10)
    assert r.status_code == 200 and r.json() == {"api": "ok", "database": "ok", "mirror": str(mirror_home())}
    os.kill(postmaster_pid(running["pgdata"]), signal.SIGKILL)
    deadline = time.monotonic() + 20
    while (r := httpx.get(running["api_url"] + "_mirror/health", timeout=10)).status_code == 200:
        assert time.monotonic() < deadline, "the health route still says ok 20 s after PostgreSQL died"
        time.sleep(0.2)
    assert r.status_code == 503 and r.json()["api"] == "ok" and r.json()["database"] != "ok"


# -- 2. lost or garbled state -----------------------------------------------------------

def test_garbled_state_is_repaired_and_stop_leaves_nothing(running):
    state_file().write_text("garbage")
    assert geolesson("mirror", "status").returncode == 3
    start = geolesson("mirror", "start")
    assert start.returncode == 0, start.stdout + start.stderr
    assert "unreadable" in start.stdout
    assert started_url(start.stdout) == running["api_url"]  # the running app was kept, not doubled
    assert api_pids(mirror_home()) == [running["api_pid"]]
    state_file().write_text("garbage")
    stop = geolesson("mirror", "stop")
    assert stop.returncode == 0 and "web app" in stop.stdout and "PostgreSQL" in stop.stdout
    assert_nothing_left(running)


def test_deleted_state_stop_still_finds_the_processes(running):
    state_file().unlink()
    stop = geolesson("mirror", "stop")
    assert stop.returncode == 0, stop.stderr
    assert f"web app (pid {running['api_pid']})" in stop.stdout and "PostgreSQL" in stop.stdout
    assert_nothing_left(running)


def test_stop_never_touches_another_homes_mirror(running, tmp_path):
    other = tmp_path / "other-checkout-mirror"
    (other / "run").mkdir(parents=True)
    stop = geolesson("mirror", "stop", env={"GEOLESSON_MIRROR_DIR": str(other)})
    assert stop.returncode == 0 and "was not running" in stop.stdout
    assert api_pids(mirror_home()) == [running["api_pid"]]
    assert geolesson("mirror", "status").returncode == 0


# -- 3. concurrent starts ------------------------------------------------------------------

def test_three_concurrent_starts_give_one_mirror(running):
    assert geolesson("mirror", "stop").returncode == 0
    cmd = [sys.executable, "-m", "geolesson.cli", "mirror", "start"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    urls = {started_url(out) for out, _ in outs}
    assert len(urls) == 1
    state = json.loads(state_file().read_text())
    assert urls == {state["api_url"]}
    assert api_pids(mirror_home()) == [state["api_pid"]]
    assert geolesson("mirror", "stop").returncode == 0
    assert_nothing_left(state)


def test_a_start_killed_halfway_is_finished_by_the_next(running):
    """A kernel restarted in the middle of a start: whatever it left running is adopted, not doubled."""
    assert geolesson("mirror", "stop").returncode == 0
    start = subprocess.Popen([sys.executable, "-m", "geolesson.cli", "mirror", "start"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while not api_pids(mirror_home()):  # PostgreSQL is up and the web app launched, not yet ready
        assert start.poll() is None and time.monotonic() < deadline, "the start ended before its web app began"
        time.sleep(0.05)
    os.killpg(start.pid, signal.SIGKILL)
    start.wait(timeout=30)
    again = geolesson("mirror", "start")
    assert again.returncode == 0, again.stdout + again.stderr
    state = json.loads(state_file().read_text())
    assert api_pids(mirror_home()) == [state["api_pid"]]
    assert search_count(state["api_url"]) > 0
    assert geolesson("mirror", "stop").returncode == 0
    assert_nothing_left(state)


# -- 4. builds are atomic and check their arguments first ----------------------------------

def test_interrupted_build_leaves_the_data_and_the_mirror_working(running):
    import httpx

    from geolesson.mirror import is_built

    home = mirror_home()
    build = subprocess.Popen([sys.executable, "-m", "geolesson.cli", "mirror", "build", "--force"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while not any(p.is_file() for d in home.glob(".build-*") for p in d.rglob("*.tif")):
        assert build.poll() is None and time.monotonic() < deadline, "the build wrote no COG"
        time.sleep(0.2)
    os.killpg(build.pid, signal.SIGKILL)  # as a closed laptop lid or a Ctrl-C'ed terminal does
    build.wait(timeout=30)
    assert is_built(home)
    status = geolesson("mirror", "status")
    assert status.returncode == 0, status.stdout
    item = json.loads((home / "stac" / "items.ndjson").read_text().splitlines()[0])
    href = running["files_url"] + item["assets"]["red"]["href"].lstrip("/")
    assert httpx.get(href, headers={"Range": "bytes=0-99"}, timeout=10).status_code == 206
    up_to_date = geolesson("mirror", "build")
    assert up_to_date.returncode == 0 and "up to date" in up_to_date.stdout
    assert not list(home.glob(".build-*")), "the interrupted build's folder was not cleaned up"


@pytest.mark.parametrize("workers", ["-1", "0", "1000", "two"])
def test_bad_workers_are_refused_before_anything_is_deleted(running, workers):
    from geolesson.mirror import is_built

    r = geolesson("mirror", "build", "--force", "--workers", workers)
    assert r.returncode == 2 and "--workers" in r.stderr and workers in r.stderr
    assert "1..4" in r.stderr or "1.." in r.stderr
    assert is_built() and geolesson("mirror", "status").returncode == 0


# -- 5. damaged data is noticed ---------------------------------------------------------------

@pytest.fixture
def damaged_home(mirror, tmp_path):
    """A mirror home of symlinks to the built files, with one COG deleted, one truncated, one altered."""
    src = mirror_home()
    home = tmp_path / "mirror"
    shutil.copytree(src / "stac", home / "stac")
    built = json.loads((src / "stac" / "build.json").read_text())
    cogs = sorted(rel for rel in built["files"] if rel.endswith("/B04.tif"))
    for rel in built["files"]:
        if rel.startswith("files/"):
            (home / rel).parent.mkdir(parents=True, exist_ok=True)
            (home / rel).symlink_to(src / rel)
    deleted, truncated, altered = cogs[0], cogs[1], cogs[2]
    (home / deleted).unlink()
    (home / truncated).unlink()
    (home / truncated).write_bytes((src / truncated).read_bytes()[:100_000])
    data = bytearray((src / altered).read_bytes())
    data[-10] ^= 0xFF
    (home / altered).unlink()
    (home / altered).write_bytes(bytes(data))
    return home, deleted, truncated, altered


def test_start_names_missing_truncated_and_changed_files(damaged_home):
    home, deleted, truncated, altered = damaged_home
    env = {"GEOLESSON_MIRROR_DIR": str(home)}
    start = geolesson("mirror", "start", env=env)
    assert start.returncode == 1
    assert f"missing: {deleted}" in start.stderr and f"truncated: {truncated} (100000 of" in start.stderr
    assert f"changed: {altered} (same size, different content)" in start.stderr  # flipped bytes: not served
    assert not (home / "pg").exists(), "start began a database before checking the data"
    verify = geolesson("mirror", "verify", env=env)
    assert verify.returncode == 1
    assert f"missing: {deleted}" in verify.stdout and f"truncated: {truncated}" in verify.stdout
    assert f"changed: {altered}" in verify.stdout


def test_build_does_not_call_damaged_data_up_to_date(damaged_home, monkeypatch):
    from geolesson.mirror.layout import data_problems, is_built

    home, deleted, truncated, altered = damaged_home
    assert not is_built(home)
    assert data_problems(home) == [f"missing: {deleted}", f"truncated: {truncated} (100000 of "
                                   f"{(mirror_home() / truncated).stat().st_size} bytes)",
                                   f"changed: {altered} (same size, different content)"]


def test_a_file_changed_in_place_after_it_was_verified_is_found(damaged_home):
    """The content check hashes files whose stat changed since they were last found intact."""
    from geolesson.mirror.layout import data_problems

    home, deleted, truncated, altered = damaged_home
    before = data_problems(home)  # hashes every file once and notes the intact ones
    intact = next(rel for rel in json.loads((home / "stac" / "build.json").read_text())["files"]
                  if rel.endswith("/B03.tif"))
    data = bytearray((home / intact).read_bytes())
    data[-10] ^= 0xFF
    (home / intact).unlink()  # a symlink to the session's data: replace it, never write through it
    (home / intact).write_bytes(bytes(data))
    assert set(data_problems(home)) == {*before, f"changed: {intact} (same size, different content)"}


def test_verify_and_check_pass_on_intact_data(running):
    verify = geolesson("mirror", "verify")
    assert verify.returncode == 0 and verify.stdout.startswith("ok: ")


def test_inspect_calls_a_truncated_cog_invalid(damaged_home):
    from geolesson import cog

    home, _, truncated, _ = damaged_home
    info = cog.inspect(home / truncated)
    assert not info.is_valid_cog
    assert info.cog_errors[0].startswith("truncated:") and "100000 bytes" in info.cog_errors[0]
    assert cog.inspect(mirror_home() / truncated).is_valid_cog


# -- 6. nobody else gets in -------------------------------------------------------------------

@pytest.mark.skipif(os.geteuid() != 0, reason="acting as another OS account (runuser) needs root")
def test_another_account_cannot_connect(running):
    from geolesson.mirror.server.database import Cluster

    home = mirror_home()
    cluster = Cluster(home)
    psql = str(cluster.bindir / "psql")
    query = ["-U", "postgres", "-d", "stac", "-w", "-c", "COPY (SELECT 1) TO PROGRAM 'true'"]
    over_tcp = subprocess.run(["runuser", "-u", "nobody", "--", psql, "-h", "127.0.0.1", "-p",
                               str(running["pg_port"]), *query], capture_output=True, text=True, timeout=30)
    assert over_tcp.returncode != 0
    assert "password" in over_tcp.stderr  # "no password supplied" / "password authentication failed"
    over_socket = subprocess.run(["runuser", "-u", "nobody", "--", psql, "-h", str(cluster.socket_dir), "-p",
                                  str(running["pg_port"]), *query], capture_output=True, text=True, timeout=30)
    assert over_socket.returncode != 0 and "Permission denied" in over_socket.stderr
    assert oct(cluster.password_file.stat().st_mode & 0o777) == "0o600"
    assert oct(cluster.socket_dir.stat().st_mode & 0o777) == "0o700"
    stolen = subprocess.run(["runuser", "-u", "nobody", "--", "cat", str(cluster.password_file)],
                            capture_output=True, text=True, timeout=30)
    assert stolen.returncode != 0
    # the mirror's own account gets in with the password; it is never printed or logged
    import psycopg

    with psycopg.connect(cluster.dsn(running["pg_port"])) as conn:
        assert conn.execute("SELECT count(*) FROM pgstac.items").fetchone()[0] > 0
    password = cluster.password()
    shown = [geolesson("mirror", "status").stdout, geolesson("mirror", "start").stdout,
             (home / "run" / "api.log").read_text(), state_file().read_text(), cluster.logfile.read_text(),
             Path(f"/proc/{running['api_pid']}/cmdline").read_text()]
    assert not any(password in text for text in shown)


# -- 7. live mode: bounded waits, retries, clear errors ------------------------------------------

@pytest.fixture
def black_hole():
    """A TCP server on 127.0.0.1 that accepts connections and never answers: its port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held, stop = [], threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def timed(call):
    t0 = time.perf_counter()
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - the test inspects whatever was raised
        return exc, time.perf_counter() - t0
    return None, time.perf_counter() - t0


def test_black_holed_live_calls_fail_clearly_in_time(black_hole, monkeypatch):
    import planetary_computer
    import rasterio

    from geolesson import check, cog, sources

    api = f"http://127.0.0.1:{black_hole}/v1"
    token_service = f"http://127.0.0.1:{black_hole}/api/sas/v1/token"
    monkeypatch.setitem(sources.LIVE_STAC_API, "earth-search", api)
    monkeypatch.setattr(planetary_computer.settings.Settings.get(), "sas_url", token_service)
    monkeypatch.setenv("GEOLESSON_SOURCE", "live")
    cog_href = f"http://127.0.0.1:{black_hole}/scene/B04.tif"
    blob = "https://someaccount.blob.core.windows.net/somecontainer/scene/B04.tif"
    lines: list[str] = []
    calls = {
        "open_client": lambda: sources.open_client("earth-search"),
        "inspect": lambda: cog.inspect(cog_href),
        "sign": lambda: sources.sign(blob, "planetary-computer"),
        "check": lambda: check.run_checks(lines.append),
    }
    with ThreadPoolExecutor(len(calls)) as pool:  # the waits overlap: about 20 s in all
        results = dict(zip(calls, pool.map(timed, calls.values())))
    for name, (_, seconds) in results.items():
        assert seconds < DEADLINE, f"{name} took {seconds:.0f} s against a black hole"
    exc = results["open_client"][0]
    assert isinstance(exc, sources.SourceError) and api in str(exc)
    exc = results["inspect"][0]
    assert isinstance(exc, rasterio.errors.RasterioIOError) and cog_href in str(exc)
    exc = results["sign"][0]
    assert isinstance(exc, sources.SourceError) and f"{token_service}/someaccount/somecontainer" in str(exc)
    failed = [line for line in lines if line.startswith("FAILED  data source")]
    assert failed and api in failed[0]


@pytest.fixture
def flaky_server(tmp_path):
    """A real HTTP server (Starlette under uvicorn) that answers 503 to the first two requests for each
    path, then serves: a STAC landing page at /v1, a COG under /files/, a SAS token at /token/..."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    from tests.fixtures import random_cog

    random_cog(tmp_path / "scene.tif", shape=(600, 500), blocksize=256, overview_count=1)
    seen: dict[str, int] = {}

    async def landing(request):
        return JSONResponse({"type": "Catalog", "id": "flaky", "description": "flaky", "stac_version": "1.0.0",
                             "links": [], "conformsTo": ["https://api.stacspec.org/v1.0.0/core"]})

    async def token(request):
        return JSONResponse({"msft:expiry": "2099-01-01T00:00:00Z", "token": "sv=2099&sig=flaky"})

    app = Starlette(routes=[Route("/v1", landing), Route("/token/{account}/{container}", token),
                            Mount("/files", StaticFiles(directory=tmp_path))])

    async def failing_twice(scope, receive, send):
        if scope["type"] == "http":
            seen[scope["path"]] = seen.get(scope["path"], 0) + 1
            if seen[scope["path"]] <= 2:
                await Response("busy", status_code=503)(scope, receive, send)
                return
        await app(scope, receive, send)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(failing_twice, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", seen
    server.should_exit = True
    thread.join(timeout=10)


def test_flaky_live_server_is_retried(flaky_server, monkeypatch):
    import planetary_computer

    from geolesson import cog, sources

    base, seen = flaky_server
    monkeypatch.setitem(sources.LIVE_STAC_API, "earth-search", f"{base}/v1")
    monkeypatch.setattr(planetary_computer.settings.Settings.get(), "sas_url", f"{base}/token")
    planetary_computer.sas.TOKEN_CACHE.clear()
    client = sources.open_client("earth-search", mode="live")
    assert client.id == "flaky" and seen["/v1"] == 3
    info = cog.inspect(f"{base}/files/scene.tif")
    assert (info.height, info.width) == (600, 500) and seen["/files/scene.tif"] >= 3
    signed = sources.sign("https://acct.blob.core.windows.net/cont/a.tif", "planetary-computer", mode="live")
    assert signed == "https://acct.blob.core.windows.net/cont/a.tif?sv=2099&sig=flaky"
    assert seen["/token/acct/cont"] == 3


# -- 8. honest counters -----------------------------------------------------------------------

def test_count_reads_refuses_a_reset_in_between(running, local_items):
    import rasterio
    from rasterio.windows import Window

    from geolesson import cog, sources

    href = running["files_url"] + local_items[0]["assets"]["nir"]["href"].lstrip("/")
    with pytest.raises(RuntimeError, match="reset while counting"):
        with rasterio.Env(**sources.GDAL_HTTP_OPTIONS):
            with cog.count_reads(href):
                with rasterio.open(href) as ds:
                    ds.read(1, window=Window(0, 0, 256, 256))
                sources.reset_request_counts()
    counts = sources.request_counts()
    assert all(v["requests"] >= 0 and v["bytes"] >= 0 for v in counts["files"].values())


def test_stats_table_counts_only_files_that_exist(running):
    import httpx

    from geolesson import sources

    before = sources.request_counts()["files"]
    with httpx.Client(timeout=10) as http:
        codes = {http.get(f"{running['files_url']}no/such/file-{i}.tif").status_code for i in range(300)}
    assert codes == {404}
    after = sources.request_counts()["files"]
    assert set(after) == set(before)


def test_a_reload_after_a_rebuild_leaves_no_item_of_the_old_data(running, local_items):
    """Items the new data no longer have go, and numberMatched counts only the new ones."""
    import copy

    from geolesson.mirror.layout import collection_dir
    from geolesson.mirror.server.database import Cluster, load

    cluster = Cluster(mirror_home())
    collection = json.loads((collection_dir("sentinel-2-l2a") / "collection.json").read_text())
    items = copy.deepcopy(local_items)
    for item in items:  # as the mirror loads them: hrefs on its file server
        for asset in item["assets"].values():
            asset["href"] = running["files_url"] + asset["href"].lstrip("/")
    old = copy.deepcopy(items[0])
    old["id"] = old["id"].replace("_0_L2A", "_9_L2A")   # an item of an "earlier build"
    n = search_count(running["api_url"])
    load(cluster, running["pg_port"], [collection], [*items, old])
    assert search_count(running["api_url"]) == n + 1
    load(cluster, running["pg_port"], [collection], items)
    assert search_count(running["api_url"]) == n   # the stale item and its cached count gone


# -- 9. processes the mirror did not start are never signalled (issue 24) -------------------

def clocked(call):
    """(what ``call()`` returned, seconds it took)."""
    t0 = time.perf_counter()
    result = call()
    return result, time.perf_counter() - t0


@pytest.fixture
def stranger():
    """An unrelated live process (a learner's Jupyter server, say) of the account PostgreSQL runs as
    (postgres, when the tests run as root), which pg_ctl may signal; it exits 9 on any signal."""
    # a shell (any account may run it) that notes and exits on a signal
    code = "trap 'echo got a signal; exit 9' INT TERM QUIT HUP; while :; do sleep 1; done"
    # the cluster's account: as root PostgreSQL runs as postgres, and pg_ctl may signal only its own processes
    owner = {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}
    proc = subprocess.Popen(["/bin/sh", "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True,
                            cwd="/", **owner)
    yield proc
    proc.kill()
    proc.wait(timeout=10)


def test_a_stale_lock_naming_another_process_never_signals_it(running, stranger):
    """postmaster.pid left by a dead server whose pid now belongs to someone else."""
    lock = Path(running["pgdata"], "postmaster.pid")
    content = lock.read_text().splitlines()
    assert geolesson("mirror", "stop").returncode == 0
    lock.write_text("\n".join([str(stranger.pid), *content[1:]]) + "\n")
    status = geolesson("mirror", "status")
    assert status.returncode == 3, status.stdout
    assert f"names pid {stranger.pid}" in status.stdout and "not this mirror's server" in status.stdout
    stop = geolesson("mirror", "stop")
    assert stop.returncode == 0 and stranger.poll() is None, stop.stdout + stop.stderr
    start = geolesson("mirror", "start")
    assert start.returncode == 0, start.stdout + start.stderr
    assert f"named pid {stranger.pid}" in start.stdout and "left the process alone" in start.stdout
    assert stranger.poll() is None, "start signalled a process it did not start"
    assert geolesson("mirror", "status").returncode == 0


def test_a_hung_database_is_diagnosed_in_time_without_collateral_kills(running):
    import psutil

    postmaster = psutil.Process(postmaster_pid(running["pgdata"]))
    procs = [postmaster, *postmaster.children()]
    for p in procs:
        p.suspend()
    try:
        status, took = clocked(lambda: geolesson("mirror", "status"))
        assert status.returncode == 3 and "suspended" in status.stdout and took < DEADLINE, (took, status.stdout)
        start, took = clocked(lambda: geolesson("mirror", "start"))
        assert start.returncode != 0 and took < DEADLINE, (took, start.stdout, start.stderr)
        assert "suspended" in start.stderr and f"kill -CONT {postmaster.pid}" in start.stderr, start.stderr
        assert api_pids(mirror_home()) == [running["api_pid"]], "start killed the working web app"
    finally:
        for p in procs:
            p.resume()
    assert geolesson("mirror", "status").returncode == 0


def test_a_suspended_database_is_stopped_by_stop(running):
    import psutil

    postmaster = psutil.Process(postmaster_pid(running["pgdata"]))
    for p in [postmaster, *postmaster.children()]:
        p.suspend()
    stop, took = clocked(lambda: geolesson("mirror", "stop"))
    assert stop.returncode == 0 and took < DEADLINE, (took, stop.stdout, stop.stderr)
    assert_nothing_left(running)


def test_another_server_on_the_dead_apps_port_is_not_the_mirror(running):
    """The web app died and another program took its port, answering the health path with 200."""
    os.kill(running["api_pid"], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while listening(running["api_port"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    code = ("import http.server, sys\n"
            "class H(http.server.BaseHTTPRequestHandler):\n"
            "    def do_GET(self):\n"
            "        body = b'{\"api\": \"ok\", \"database\": \"ok\"}'\n"
            "        self.send_response(200); self.send_header('Content-Type', 'application/json')\n"
            "        self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)\n"
            "http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n")
    other = subprocess.Popen([sys.executable, "-c", code, str(running["api_port"])], start_new_session=True)
    try:
        while not listening(running["api_port"]):
            assert other.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        status = geolesson("mirror", "status")
        assert status.returncode == 3, status.stdout
        assert "another server answers" in status.stdout, status.stdout
        start = geolesson("mirror", "start")
        assert start.returncode == 0, start.stdout + start.stderr
        state = json.loads(state_file().read_text())
        assert state["api_port"] != running["api_port"] and other.poll() is None
        assert geolesson("mirror", "status").returncode == 0
        assert search_count(state["api_url"]) > 0
    finally:
        other.kill()
        other.wait(timeout=10)


# -- 10. the file server closes connections that never send a request (issue 24) -----------

def test_idle_and_half_open_connections_are_closed(running):
    import httpx

    from geolesson.mirror.server.app import HEADER_TIMEOUT

    socks = []
    for i in range(40):
        s = socket.create_connection(("127.0.0.1", running["api_port"]))
        if i % 2:  # half a request head; the others send nothing at all
            s.sendall(b"GET /files/ HTTP/1.1\r\nHost: 127.0")
        socks.append(s)
    deadline = time.monotonic() + HEADER_TIMEOUT + 30
    for s in socks:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        assert s.recv(1) == b"", "the server kept a connection that sent no complete request"
        s.close()
    assert httpx.get(f"{running['api_url']}_mirror/health", timeout=10).status_code == 200
