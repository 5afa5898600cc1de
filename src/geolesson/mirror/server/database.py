"""A private PostgreSQL + PostGIS + pgstac cluster for the mirror's STAC API.

The cluster lives in ``<mirror home>/pg``, listens on 127.0.0.1 only and never touches a
system cluster. PostgreSQL refuses to run as root, so as root every server command runs
through ``runuser -u postgres`` (the user is created where missing).

Loopback is no boundary on a shared machine or a JupyterHub node, so the cluster demands a
password (SCRAM-SHA-256) on every connection, TCP and socket alike, and its socket folder is
private (0700). The password is random per cluster, kept in ``<mirror home>/pg-password``
(mode 0600, readable by the mirror's own account only) and handed to the STAC API through
its environment; it is never printed, logged or put on a command line. A cluster whose
password file is lost is made anew (its data is reloaded from the built files).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from geolesson.mirror.layout import collection_files, inputs_digest
from geolesson.mirror.server.processes import children, process_command, process_state

DATABASE = "stac"
SUPERUSER = "postgres"

# Queryables with the type their values must sort and compare as. Unregistered
# properties compare as text in pgstac ("88" sorts before "12.7").
QUERYABLES = {
    "eo:cloud_cover": ({"type": "number", "minimum": 0, "maximum": 100}, "to_float"),
    "platform": ({"type": "string"}, "to_text"),
    "constellation": ({"type": "string"}, "to_text"),
    "mgrs:utm_zone": ({"type": "integer"}, "to_int"),
    "mgrs:latitude_band": ({"type": "string"}, "to_text"),
    "mgrs:grid_square": ({"type": "string"}, "to_text"),
    "grid:code": ({"type": "string"}, "to_text"),
    "proj:epsg": ({"type": "integer"}, "to_int"),
    "s2:nodata_pixel_percentage": ({"type": "number"}, "to_float"),
    "s2:vegetation_percentage": ({"type": "number"}, "to_float"),
    "s2:water_percentage": ({"type": "number"}, "to_float"),
    "s2:cloud_shadow_percentage": ({"type": "number"}, "to_float"),
    "s2:processing_baseline": ({"type": "string"}, "to_text"),
    "view:sun_elevation": ({"type": "number"}, "to_float"),
    "view:sun_azimuth": ({"type": "number"}, "to_float"),
    # sentinel-1-rtc (Planetary Computer's schema): orbit numbers compare as integers, ids as text
    "sat:orbit_state": ({"type": "string", "enum": ["ascending", "descending"]}, "to_text"),
    "sat:relative_orbit": ({"type": "integer"}, "to_int"),
    "sat:absolute_orbit": ({"type": "integer"}, "to_int"),
    "sat:platform_international_designator": ({"type": "string"}, "to_text"),
    "sar:instrument_mode": ({"type": "string"}, "to_text"),
    "sar:product_type": ({"type": "string"}, "to_text"),
    "sar:frequency_band": ({"type": "string"}, "to_text"),
    "sar:polarizations": ({"type": "array", "items": {"type": "string"}}, "to_text_array"),
    "sar:looks_equivalent_number": ({"type": "number"}, "to_float"),
    "s1:datatake_id": ({"type": "string"}, "to_text"),
    "s1:slice_number": ({"type": "string"}, "to_text"),
    "s1:total_slices": ({"type": "string"}, "to_text"),
    "s1:orbit_source": ({"type": "string"}, "to_text"),
    "s1:resolution": ({"type": "string"}, "to_text"),
}


class MirrorError(RuntimeError):
    """The mirror cannot do what was asked; the message says why and what to do."""


def find_bindir() -> Path:
    """PostgreSQL's server programs: ``GEOLESSON_PG_BINDIR``, an active conda environment's
    (``CONDA_PREFIX``, from environment.yml), Debian's newest with PostGIS, or ``PATH``."""
    if (env := os.environ.get("GEOLESSON_PG_BINDIR")) is not None:
        if not (Path(env) / "pg_ctl").is_file():
            raise MirrorError(f"GEOLESSON_PG_BINDIR={env!r} holds no pg_ctl: set it to PostgreSQL's bin folder "
                              "(e.g. /usr/lib/postgresql/15/bin) or unset it to find PostgreSQL automatically")
        return Path(env)
    if (conda := os.environ.get("CONDA_PREFIX")) and (Path(conda) / "bin" / "pg_ctl").exists():
        return Path(conda) / "bin"
    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True):
        version = Path(bindir).parent.name
        if Path(f"/usr/share/postgresql/{version}/extension/postgis.control").exists():
            return Path(bindir)
    if found := shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    raise MirrorError(
        "PostgreSQL with PostGIS is not installed. On Debian/Ubuntu: "
        "sudo apt-get install postgresql postgresql-15-postgis-3 (or run `make book`, which installs it); "
        "with conda: conda install -c conda-forge postgresql postgis"
    )


def cluster_root(home: Path, as_root: bool) -> Path:
    """``home/pg``, unless root runs the mirror from a folder its ``postgres`` user cannot traverse
    (a checkout under /root, say): then a folder of its own under the system's temporary directory."""
    preferred = home / "pg"
    if not as_root or all(p.stat().st_mode & 0o001 for p in home.parents if p.exists()):
        return preferred
    digest = hashlib.sha256(str(home).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"geolesson-pg-{digest}"


#: bytes of PostgreSQL's log kept before a start moves it aside (each start, load and stop adds a few KB;
#: the fault tests' many restarts add more): the log takes at most twice this, beside Binder's 1.5 GB budget
LOG_LIMIT = 1_000_000


def rotate_log(logfile: Path, limit: int = LOG_LIMIT) -> bool:
    """Move ``logfile`` to ``<name>.1`` (replacing the one before) when it holds more than ``limit``
    bytes, so that a mirror started again and again keeps at most two logs; True if it did."""
    try:
        if logfile.stat().st_size <= limit:
            return False
    except FileNotFoundError:
        return False
    logfile.replace(logfile.with_name(logfile.name + ".1"))
    return True


class Cluster:
    """The mirror's PostgreSQL cluster in ``home/pg``."""

    def __init__(self, home: Path):
        self.as_root = os.geteuid() == 0
        self.root = cluster_root(home, self.as_root)
        self.pgdata = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.logfile = self.root / "postgres.log"
        self.password_file = home / "pg-password"
        # which build's items this cluster holds: lives and dies with the cluster
        self.loaded_marker = self.root / "loaded.json"
        self.bindir = find_bindir()

    def password(self) -> str:
        """The cluster's password (from the 0600 file); MirrorError if there is none."""
        try:
            return self.password_file.read_text().strip()
        except FileNotFoundError:
            raise MirrorError(f"the mirror's database has no password file ({self.password_file}); "
                              "`geolesson mirror start` makes a new cluster") from None

    def dsn(self, port: int, database: str = DATABASE) -> str:
        """libpq conninfo with the password (pass it to a driver; never print or log it)."""
        return f"host=127.0.0.1 port={port} user={SUPERUSER} dbname={database} password={self.password()}"

    # -- running commands as the cluster's owner ---------------------------------
    def _owner_prefix(self) -> list[str]:
        if not self.as_root:
            return []
        try:
            pwd.getpwnam(SUPERUSER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                            SUPERUSER], check=True)
        return ["runuser", "-u", SUPERUSER, "--"]

    def _run(self, program: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = [*self._owner_prefix(), str(self.bindir / program), *args]
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise MirrorError(f"{program} did not finish within {timeout:.0f} s; see {self.logfile}") from exc

    def _prepare_dirs(self) -> None:
        for d in (self.root, self.socket_dir):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o700)  # no other account reaches the socket or the files
        if self.as_root:
            owner = pwd.getpwnam(SUPERUSER)
            for d in (self.root, self.socket_dir):
                os.chown(d, owner.pw_uid, owner.pw_gid)

    # -- lifecycle ---------------------------------------------------------------
    def initialised(self) -> bool:
        """Whether ``initdb`` has made the cluster (its ``PG_VERSION`` file exists)."""
        return (self.pgdata / "PG_VERSION").exists()

    def _secured(self) -> bool:
        """Whether the cluster asks for a password everywhere and we still have it."""
        if not self.password_file.exists():
            return False
        try:
            hba = (self.pgdata / "pg_hba.conf").read_text()
        except OSError:
            return False
        rules = [line.split() for line in hba.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        return bool(rules) and all(rule[-1] == "scram-sha-256" for rule in rules)

    def init(self, log=print) -> None:
        """Create the cluster (with a new random password) unless a secured one exists.

        A cluster without a password (made by an older version, or whose password file
        was deleted) is removed and made anew: the mirror reloads its items on start.
        """
        if self.initialised():
            if self._secured():
                return
            log(f"the mirror's PostgreSQL cluster in {self.root} has no password (or lost it): making a new one")
            self.stop()
            shutil.rmtree(self.pgdata)
        self.loaded_marker.unlink(missing_ok=True)
        self._prepare_dirs()
        password = secrets.token_urlsafe(24)
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password)
        os.chmod(self.password_file, 0o600)
        # initdb reads the password from a file only its user can read, removed at once
        pwfile = self.root / "initdb-password"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password)
        if self.as_root:
            owner = pwd.getpwnam(SUPERUSER)
            os.chown(pwfile, owner.pw_uid, owner.pw_gid)
        try:
            # 1 MB WAL segments: with the 16 MB default a cluster keeps 33 MB of WAL, a fifth of
            # Binder's data budget left after the COGs
            r = self._run("initdb", "-D", str(self.pgdata), "-U", SUPERUSER, "--auth=scram-sha-256",
                          f"--pwfile={pwfile}", "--encoding=UTF8", "--locale=C", "--no-instructions",
                          "--wal-segsize=1", timeout=120)
        finally:
            pwfile.unlink(missing_ok=True)
        if r.returncode:
            raise MirrorError(f"initdb failed:\n{r.stderr.strip()}")
        with open(self.pgdata / "postgresql.conf", "a") as conf:
            conf.write("\n# geolesson: the database is reloaded from files, keep little WAL\n"
                       "min_wal_size = 2MB\nmax_wal_size = 4MB\n")

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.pgdata / "postmaster.pid").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            return None

    def _zombie(self) -> bool:
        """Whether postmaster.pid names a process that died but is not reaped yet (kill -9)."""
        pid = self._postmaster_pid()
        return pid is not None and process_state(pid) == "Z"

    def _is_ours(self, pid: int) -> bool:
        """Whether ``pid`` is this cluster's postmaster: a live PostgreSQL server whose working
        directory (Linux: ``/proc/PID/cwd``; the postmaster changes into its data directory)
        or, without ``/proc``, whose command line (``postgres -D <pgdata>``) is this cluster's
        data directory. A process we may not inspect (another account's) is not ours."""
        if process_state(pid) in (None, "Z"):
            return False
        pgdata = os.path.realpath(self.pgdata)
        if Path("/proc").is_dir():
            try:
                return os.path.realpath(os.readlink(f"/proc/{pid}/cwd")) == pgdata
            except OSError:
                return False
        r = subprocess.run(["ps", "-ww", "-o", "command=", "-p", str(pid)], capture_output=True, text=True)
        words = r.stdout.split()
        return "-D" in words and any(os.path.realpath(w) == pgdata for w in words)

    def foreign_pid(self) -> tuple[int, str] | None:
        """``(pid, command line)`` if ``postmaster.pid`` names a live process that is not this
        cluster's server (a stale lock file whose pid was reused, e.g. by a learner's Jupyter
        server); None otherwise. Such a process is never signalled."""
        pid = self._postmaster_pid()
        if pid is None or process_state(pid) in (None, "Z") or self._is_ours(pid):
            return None
        return pid, process_command(pid)

    def server_pids(self) -> list[int]:
        """This cluster's running server processes: the postmaster and its children (empty if
        it does not run)."""
        pid = self._postmaster_pid()
        if pid is None or not self._is_ours(pid):
            return []
        return [pid, *children(pid)]

    def running(self) -> bool:
        """Whether this cluster's own server runs. A ``postmaster.pid`` naming a dead process,
        an unreaped one, or one that is not this cluster's server (pid reused) does not count:
        ``pg_ctl`` alone would call all three running and ``pg_ctl stop`` would signal them."""
        if not self.initialised():
            return False
        pid = self._postmaster_pid()
        if pid is None or not self._is_ours(pid):
            return False
        return self._run("pg_ctl", "status", "-D", str(self.pgdata)).returncode == 0

    def answers(self, port: int, timeout: float = 5.0) -> str | None:
        """None if the server answers a query within ``timeout`` s; else why it does not."""
        import psycopg

        try:
            with psycopg.connect(self.dsn(port, "postgres"), connect_timeout=max(1, round(timeout)),
                                 options=f"-c statement_timeout={int(timeout * 1000)}") as conn:
                conn.execute("SELECT 1")
        except (psycopg.Error, MirrorError) as exc:
            return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        return None

    def diagnose(self, port: int | None, timeout: float = 5.0) -> str | None:
        """None if this cluster's server runs and answers; else one sentence saying what is
        wrong with it (stopped processes, no answer) for the user. Signals nothing."""
        pids = self.server_pids()
        if not pids:
            return None
        stopped = [p for p in pids if process_state(p) == "T"]
        if stopped:
            return (f"this mirror's PostgreSQL (postmaster pid {pids[0]}) is suspended: process(es) "
                    f"{', '.join(map(str, stopped))} are stopped (SIGSTOP or a debugger); resume them with "
                    f"`kill -CONT {' '.join(map(str, stopped))}`, or run `geolesson mirror stop` and start again")
        why = self.answers(port, timeout) if port else "its postmaster.pid names no port"
        if why:
            return (f"this mirror's PostgreSQL (postmaster pid {pids[0]}, port {port}) runs but does not "
                    f"answer a query within {timeout:.0f} s ({why}); see {self.logfile}, or run "
                    "`geolesson mirror stop` and start again")
        return None

    def start(self, port: int, log=print) -> None:
        """Initialise the cluster where needed and start it on 127.0.0.1:``port``; MirrorError
        with the server's log when it does not start."""
        self.init(log)
        self._prepare_dirs()
        self.remove_stale_lock(log)
        rotate_log(self.logfile)
        options = (f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={self.socket_dir} "
                   "-c unix_socket_permissions=0700 -c password_encryption=scram-sha-256 "
                   # a teaching mirror rebuilt from files: durability is not needed, speed is
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        # after a kill -9 of the postmaster its backends take a moment to notice and exit;
        # until they have, the old shared memory is in use and a new server refuses to start
        deadline = time.monotonic() + 20
        while self._zombie() and time.monotonic() < deadline:  # its lock file counts it alive until reaped
            time.sleep(0.2)
        while True:
            r = self._run("pg_ctl", "start", "-D", str(self.pgdata), "-l", str(self.logfile),
                          "-w", "-t", "60", "-o", options, timeout=90)
            if r.returncode == 0:
                return
            tail = self.logfile.read_text()[-2000:] if self.logfile.exists() else ""
            if "shared memory block is still in use" not in tail or time.monotonic() > deadline:
                raise MirrorError(f"PostgreSQL did not start on 127.0.0.1:{port}:\n{r.stdout}{r.stderr}\n{tail}")
            time.sleep(0.5)

    def remove_stale_lock(self, log=print) -> None:
        """Remove a ``postmaster.pid`` that names a process other than this cluster's server
        (PostgreSQL would refuse to start beside it), saying which process it named; that
        process is left alone."""
        foreign = self.foreign_pid()
        if foreign is not None:
            pid, command = foreign
            (self.pgdata / "postmaster.pid").unlink(missing_ok=True)
            log(f"the mirror's PostgreSQL lock file {self.pgdata / 'postmaster.pid'} named pid {pid} ({command}), "
                "which is not this mirror's server (a stale file, the pid since reused): removed the file, "
                "left the process alone")

    def stop(self) -> None:
        """Stop this cluster's own server (a suspended one is resumed first: it is ours);
        a process that ``postmaster.pid`` names but that is not this cluster's is never signalled.

        Raises:
            MirrorError: the server did not stop (names the pids still running).
        """
        if not self.running():
            return
        for pid in self.server_pids():
            if process_state(pid) == "T":
                os.kill(pid, signal.SIGCONT)
        r = self._run("pg_ctl", "stop", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "20", timeout=40)
        if r.returncode and self.running():
            # fast shutdown waits for the backends; immediate ends them at once (a mirror's
            # database is reloaded from files, so nothing is lost)
            r = self._run("pg_ctl", "stop", "-D", str(self.pgdata), "-m", "immediate", "-w", "-t", "10", timeout=20)
        if r.returncode and self.running():
            raise MirrorError(f"this mirror's PostgreSQL (pids {self.server_pids()}) did not stop: {r.stderr.strip()}")

    def port(self) -> int | None:
        """The port of the running server, from its postmaster.pid."""
        try:
            return int((self.pgdata / "postmaster.pid").read_text().splitlines()[3])
        except (FileNotFoundError, IndexError, ValueError):
            return None


def ensure_database(cluster: Cluster, port: int) -> None:
    """Create the mirror's database in the running cluster on ``port`` if it is missing."""
    import psycopg

    with psycopg.connect(cluster.dsn(port, "postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone():
            conn.execute(f"CREATE DATABASE {DATABASE}")


def load(cluster: Cluster, port: int, collections: list[dict], items: list[dict]) -> None:
    """Migrate pgstac, load the collections and items (upsert), switch ``context`` on, register queryables.

    Items of a loaded collection that are not in ``items`` are deleted: a rebuild of the
    mirror's data (another calendar, other ids) leaves no item of the previous build behind.
    """
    from pypgstac.db import PgstacDB
    from pypgstac.load import Loader, Methods
    from pypgstac.migrate import Migrate

    ensure_database(cluster, port)
    db = PgstacDB(dsn=cluster.dsn(port))
    try:
        Migrate(db).run_migration()
        loader = Loader(db=db)
        loader.load_collections(iter(collections), Methods.upsert)
        loader.load_items(iter(items), Methods.upsert)
        keep: dict[str, list[str]] = {c["id"]: [] for c in collections}
        for item in items:
            keep.setdefault(item["collection"], []).append(item["id"])
        with db.connect().cursor() as cur:
            for collection, ids in keep.items():
                cur.execute("DELETE FROM items WHERE collection = %s AND NOT (id = ANY(%s))",
                            [collection, ids])
            # pgstac caches each search's count (numberMatched) for a day: drop the stale ones
            cur.execute("DELETE FROM search_wheres")
            # without context, responses lack numberMatched and pystac-client's matched() is None
            cur.execute("INSERT INTO pgstac_settings (name, value) VALUES ('context', 'on') "
                        "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value")
            for name, (definition, wrapper) in QUERYABLES.items():
                cur.execute("DELETE FROM queryables WHERE name = %s", [name])
                cur.execute("INSERT INTO queryables (name, definition, property_wrapper) VALUES (%s, %s, %s)",
                            [name, json.dumps({"title": name, **definition}), wrapper])
        db.connect().commit()
    finally:
        db.close()


def load_if_needed(home: Path, cluster: Cluster, pg_port: int, files_url: str, log=print) -> None:
    """Load ``home``'s collections and items into ``cluster`` (hrefs made absolute with ``files_url``),
    unless it already holds this build's items for this ``files_url`` (its ``loaded.json`` says)."""
    marker = cluster.loaded_marker
    want = {"inputs": inputs_digest(), "files_url": files_url}
    try:
        if json.loads(marker.read_text()) == want:
            return
    except (FileNotFoundError, json.JSONDecodeError):
        pass
    t0 = time.perf_counter()
    collections, items = [], []
    for collection_file, items_file in collection_files(home):
        collections.append(json.loads(collection_file.read_text()))
        with open(items_file) as f:
            for line in f:
                item = json.loads(line)
                for asset in item["assets"].values():
                    asset["href"] = files_url + asset["href"].lstrip("/")
                items.append(item)
    load(cluster, pg_port, collections, items)
    marker.write_text(json.dumps(want))
    log(f"loaded {len(items)} items into pgstac in {time.perf_counter() - t0:.1f} s")
