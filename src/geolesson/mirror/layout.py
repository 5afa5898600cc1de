"""The mirror's data on disk, and whether it is intact: read by the builder and the server alike.

A mirror home (``GEOLESSON_MIRROR_DIR`` or ``data/mirror``) holds:

``files/``
    the COGs and thumbnails the file server serves (item hrefs are relative to it);
``stac/``
    each collection's ``collection.json`` and ``items.ndjson`` (Sentinel-2 in ``stac/``
    itself, Sentinel-1 in ``stac/sentinel-1-rtc/``) and ``build.json``, written last by a
    build: the inputs digest and, for every file of the data (paths relative to the home,
    e.g. ``files/.../B04.tif``, ``stac/items.ndjson``), its size in bytes and SHA-256;
``run/``, ``pg/``
    the running servers' state, logs and database (:mod:`geolesson.mirror.server`).

A build writes into ``.build-<pid>`` and swaps it in when complete; ``.old-<pid>`` holds
the data being replaced. :func:`size_problems` compares sizes (a ``stat`` per file: fast
enough for every start); :func:`hash_problems` and :func:`verify` read every byte
(``geolesson mirror verify``, ``geolesson check``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from geolesson._home import SCENARIO_FILE, data_dir, mirror_home

MANIFEST = "stac/build.json"
#: the folder below ``stac/`` of each collection's collection.json and items.ndjson
COLLECTION_DIRS = {"sentinel-2-l2a": "", "sentinel-1-rtc": "sentinel-1-rtc"}
#: the parts of this package that read the data but never shape it: left out of the inputs digest
_NOT_DATA_CODE = ("server", "layout.py", "__init__.py")


def files_dir(home: Path | None = None) -> Path:
    """``<home>/files``: the file server's root (``home`` defaults to the mirror home)."""
    return (home or mirror_home()) / "files"


def stac_dir(home: Path | None = None) -> Path:
    """``<home>/stac``: the collections' JSON and ``build.json``."""
    return (home or mirror_home()) / "stac"


def collection_dir(collection: str, home: Path | None = None) -> Path:
    """The folder of ``collection``'s ``collection.json`` and ``items.ndjson`` (KeyError: not a mirror collection)."""
    return stac_dir(home) / COLLECTION_DIRS[collection]


def collection_files(home: Path | None = None) -> list[tuple[Path, Path]]:
    """(collection.json, items.ndjson) of every collection the build wrote: sentinel-2-l2a, and
    sentinel-1-rtc where the scenario has a ``[sentinel1]`` section."""
    pairs = [(d / "collection.json", d / "items.ndjson") for d in (collection_dir(c, home) for c in COLLECTION_DIRS)]
    return [pair for pair in pairs if pair[0].exists()]


def write_collection(folder: Path, collection: dict, items: list[dict]) -> None:
    """``folder/collection.json`` and ``folder/items.ndjson`` (one compact item per line, sorted by id)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "collection.json").write_text(json.dumps(collection, indent=1))
    with open(folder / "items.ndjson", "w") as f:
        for item in sorted(items, key=lambda it: it["id"]):
            f.write(json.dumps(item, separators=(",", ":")) + "\n")


def data_code() -> list[Path]:
    """The package's files that shape the data: every ``.py`` file of ``geolesson.mirror`` except the
    server and this module (so a new simulation module is in the digest without being listed)."""
    here = Path(__file__).parent
    return sorted(p for p in here.rglob("*.py") if p.relative_to(here).parts[0] not in _NOT_DATA_CODE)


def inputs_digest() -> str:
    """Hash of everything the data depends on: the scenario, the vectors and :func:`data_code`."""
    here = Path(__file__).parent
    h = hashlib.sha256()
    for p in [data_dir() / SCENARIO_FILE, *sorted(data_dir().glob("rhodes_*.geojson")),
              *sorted(data_dir().glob("*_landcover_true.geojson"))]:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    for p in data_code():
        h.update(p.relative_to(here).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def remove_leftovers(home: Path) -> None:
    """Delete the folders of builds that were interrupted (call with the lifecycle lock held)."""
    for leftover in [*home.glob(".build-*"), *home.glob(".old-*")]:
        shutil.rmtree(leftover, ignore_errors=True)


# -- build.json ---------------------------------------------------------------------------

def record(path: Path) -> dict:
    """``{"size": bytes, "sha256": hex digest}`` of one file."""
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    return {"size": path.stat().st_size, "sha256": digest}


def records(root: Path, base: Path) -> dict[str, dict]:
    """:func:`record` of every file under ``root``, keyed by its path relative to ``base``."""
    return {p.relative_to(base).as_posix(): record(p) for p in sorted(root.rglob("*")) if p.is_file()}


def read_manifest(home: Path) -> dict | None:
    """The parsed ``build.json`` of ``home``, or None if it is missing or unreadable."""
    try:
        manifest = json.loads((home / MANIFEST).read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return manifest if isinstance(manifest, dict) else None


def size_problems(home: Path, manifest: dict) -> list[str]:
    """Files of ``manifest`` that are missing or whose size differs, one sentence each (empty: all present)."""
    problems = []
    for rel, want in manifest.get("files", {}).items():
        try:
            size = (home / rel).stat().st_size
        except FileNotFoundError:
            problems.append(f"missing: {rel}")
            continue
        if size < want["size"]:
            problems.append(f"truncated: {rel} ({size} of {want['size']} bytes)")
        elif size != want["size"]:
            problems.append(f"wrong size: {rel} ({size} bytes, built with {want['size']})")
    return problems


def hash_problems(home: Path, manifest: dict, threads: int = 2) -> list[str]:
    """:func:`size_problems`, then every remaining file's SHA-256 against the manifest."""
    problems = size_problems(home, manifest)
    bad = {p.split(": ", 1)[1].split(" (")[0] for p in problems}
    todo = [rel for rel in manifest.get("files", {}) if rel not in bad]

    def check(rel: str) -> str | None:
        if record(home / rel)["sha256"] != manifest["files"][rel]["sha256"]:
            return f"changed: {rel} (same size, different content)"
        return None

    with ThreadPoolExecutor(max_workers=threads) as pool:  # hashlib releases the GIL
        problems += [p for p in pool.map(check, todo) if p]
    return problems


# -- is the data there? ---------------------------------------------------------------------

#: Where the files whose content was last found to match build.json are noted, with the
#: ``stat`` they had then (size, mtime, inode): :func:`data_problems` hashes only files whose
#: ``stat`` changed since, so a start reads 1.4 GB once after a build, not every time.
VERIFIED = "run/verified.json"


def _stamp(path: Path, sha256: str) -> list:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino, sha256]


def data_problems(home: Path | None = None) -> list[str] | None:
    """None if the data was never built or is out of date; else the missing, truncated or
    changed files (empty: intact).

    Sizes are checked with a ``stat`` per file; contents with SHA-256 against build.json,
    for the files whose size, mtime or inode differ from when their content was last found
    intact (``run/verified.json``: every file the first time after a build). A file changed in
    place (flipped bytes, an editor, ``dd``) gets a new mtime and is hashed again; damage
    that leaves mtime alone (a failing disk) is found by :func:`verify`, which hashes all.
    """
    home = home or mirror_home()
    built = read_manifest(home)
    if not built or built.get("inputs") != inputs_digest() or "files" not in built:
        return None
    problems = size_problems(home, built)
    bad = {p.split(": ", 1)[1].split(" (")[0] for p in problems}
    try:
        verified = json.loads((home / VERIFIED).read_text())
        verified = verified if isinstance(verified, dict) else {}
    except (OSError, ValueError):
        verified = {}
    stamps, todo = {}, []
    for rel, want in built["files"].items():
        if rel in bad:
            continue
        stamp = _stamp(home / rel, want["sha256"])
        (stamps.__setitem__(rel, stamp) if verified.get(rel) == stamp else todo.append(rel))
    if todo:
        changed = set()
        for p in hash_problems(home, {"files": {rel: built["files"][rel] for rel in todo}}):
            problems.append(p)
            changed.add(p.split(": ", 1)[1].split(" (")[0])
        stamps.update({rel: _stamp(home / rel, built["files"][rel]["sha256"]) for rel in todo if rel not in changed})
        tmp = home / f"{VERIFIED}.{os.getpid()}.tmp"
        try:
            tmp.parent.mkdir(exist_ok=True)
            tmp.write_text(json.dumps(stamps))
            tmp.replace(home / VERIFIED)
        except OSError:  # a read-only home: hash again next time
            tmp.unlink(missing_ok=True)
    return problems


def is_built(home: Path | None = None) -> bool:
    """Whether the data is built from the current inputs with every file present and intact
    (:func:`data_problems`)."""
    return data_problems(home) == []


def verify(home: Path | None = None) -> tuple[bool, str]:
    """(ok, message): whether the data is built from the current inputs and every file is intact.

    The message names each missing, truncated or changed file.
    """
    home = home or mirror_home()
    built = read_manifest(home)
    if built is None or "files" not in built:
        return False, f"not built: {home / MANIFEST} is missing or has no file list; run `geolesson mirror build`"
    t0 = time.perf_counter()
    problems = hash_problems(home, built)
    if built.get("inputs") != inputs_digest():
        problems.insert(0, f"out of date: built from inputs {built.get('inputs')}, "
                           f"the checkout's are {inputs_digest()}")
    if problems:
        shown = "\n  ".join(problems[:50]) + (f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else "")
        return False, f"the mirror's data in {home} is damaged:\n  {shown}\nrebuild it with `geolesson mirror build`"
    size = sum(r["size"] for r in built["files"].values())
    return True, (f"ok: {len(built['files'])} files, {size / 1e6:.0f} MB match build.json "
                  f"(SHA-256, {time.perf_counter() - t0:.1f} s)")
