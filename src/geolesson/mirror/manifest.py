"""What a build wrote, and whether it is still there: ``build.json``'s file list with sizes and SHA-256.

``build.json`` (in ``<home>/stac``, written last by a build) holds the inputs digest and, for
every file of the data (paths relative to the mirror home, e.g. ``files/.../B04.tif``,
``stac/items.ndjson``), its size in bytes and SHA-256. :func:`size_problems` compares sizes
(a ``stat`` per file: fast enough for every start); :func:`hash_problems` reads every byte
(``geolesson mirror verify``, ``geolesson check``).
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

MANIFEST = "stac/build.json"


def record(path: Path) -> dict:
    """``{"size": bytes, "sha256": hex digest}`` of one file."""
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    return {"size": path.stat().st_size, "sha256": digest}


def records(root: Path, base: Path) -> dict[str, dict]:
    """:func:`record` of every file under ``root``, keyed by its path relative to ``base``."""
    return {p.relative_to(base).as_posix(): record(p) for p in sorted(root.rglob("*")) if p.is_file()}


def read(home: Path) -> dict | None:
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
