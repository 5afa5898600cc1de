"""A private PostgreSQL + PostGIS + pgstac cluster for the mirror's STAC API.

The cluster lives in ``<mirror home>/pg``, listens on 127.0.0.1 only and never touches a
system cluster. PostgreSQL refuses to run as root, so as root every server command runs
through ``runuser -u postgres`` (the user is created where missing).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

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
}


class MirrorError(RuntimeError):
    """The mirror cannot do what was asked; the message says why and what to do."""


def find_bindir() -> Path:
    """PostgreSQL's server programs: ``GEOLESSON_PG_BINDIR``, Debian's newest with PostGIS, or ``PATH``."""
    if env := os.environ.get("GEOLESSON_PG_BINDIR"):
        return Path(env)
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


class Cluster:
    """The mirror's PostgreSQL cluster in ``home/pg``."""

    def __init__(self, home: Path):
        self.as_root = os.geteuid() == 0
        self.root = cluster_root(home, self.as_root)
        self.pgdata = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.logfile = self.root / "postgres.log"
        self.bindir = find_bindir()

    # -- running commands as the cluster's owner ---------------------------------
    def _owner_prefix(self) -> list[str]:
        if not self.as_root:
            return []
        try:
            pwd.getpwnam(SUPERUSER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SUPERUSER], check=True)
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
        if self.as_root:
            owner = pwd.getpwnam(SUPERUSER)
            for d in (self.root, self.socket_dir):
                os.chown(d, owner.pw_uid, owner.pw_gid)

    # -- lifecycle ---------------------------------------------------------------
    def initialised(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def init(self) -> None:
        if self.initialised():
            return
        self._prepare_dirs()
        r = self._run("initdb", "-D", str(self.pgdata), "-U", SUPERUSER, "--auth=trust",
                      "--encoding=UTF8", "--locale=C", "--no-instructions", timeout=120)
        if r.returncode:
            raise MirrorError(f"initdb failed:\n{r.stderr.strip()}")

    def running(self) -> bool:
        if not self.initialised():
            return False
        return self._run("pg_ctl", "status", "-D", str(self.pgdata)).returncode == 0

    def start(self, port: int) -> None:
        self.init()
        self._prepare_dirs()
        options = (f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={self.socket_dir} "
                   # a teaching mirror rebuilt from files: durability is not needed, speed is
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        r = self._run("pg_ctl", "start", "-D", str(self.pgdata), "-l", str(self.logfile),
                      "-w", "-t", "60", "-o", options, timeout=90)
        if r.returncode:
            tail = self.logfile.read_text()[-2000:] if self.logfile.exists() else ""
            raise MirrorError(f"PostgreSQL did not start on 127.0.0.1:{port}:\n{r.stdout}{r.stderr}\n{tail}")

    def stop(self) -> None:
        if self.running():
            r = self._run("pg_ctl", "stop", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "30", timeout=60)
            if r.returncode:
                raise MirrorError(f"PostgreSQL did not stop: {r.stderr.strip()}")

    def port(self) -> int | None:
        """The port of the running server, from its postmaster.pid."""
        try:
            return int((self.pgdata / "postmaster.pid").read_text().splitlines()[3])
        except (FileNotFoundError, IndexError, ValueError):
            return None


def dsn(port: int, database: str = DATABASE) -> str:
    return f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{database}"


def ensure_database(port: int) -> None:
    import psycopg

    with psycopg.connect(dsn(port, "postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone():
            conn.execute(f"CREATE DATABASE {DATABASE}")


def load(port: int, collection: dict, items: list[dict]) -> None:
    """Migrate pgstac, load the collection and items (upsert), switch ``context`` on, register queryables."""
    from pypgstac.db import PgstacDB
    from pypgstac.load import Loader, Methods
    from pypgstac.migrate import Migrate

    ensure_database(port)
    db = PgstacDB(dsn=dsn(port))
    try:
        Migrate(db).run_migration()
        loader = Loader(db=db)
        loader.load_collections(iter([collection]), Methods.upsert)
        loader.load_items(iter(items), Methods.upsert)
        with db.connect().cursor() as cur:
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
