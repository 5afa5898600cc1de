"""``geolesson mirror verify``: every built file's SHA-256 against ``build.json``."""

from __future__ import annotations

import time
from pathlib import Path

from geolesson._home import mirror_home
from geolesson.mirror import manifest
from geolesson.mirror.build import inputs_digest


def verify(home: Path | None = None) -> tuple[bool, str]:
    """(ok, message): whether the data is built from the current inputs and every file is intact.

    The message names each missing, truncated or changed file.
    """
    home = home or mirror_home()
    built = manifest.read(home)
    if built is None or "files" not in built:
        return False, f"not built: {home / manifest.MANIFEST} is missing or has no file list; run `geolesson mirror build`"
    t0 = time.perf_counter()
    problems = manifest.hash_problems(home, built)
    if built.get("inputs") != inputs_digest():
        problems.insert(0, f"out of date: built from inputs {built.get('inputs')}, the checkout's are {inputs_digest()}")
    if problems:
        shown = "\n  ".join(problems[:50]) + (f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else "")
        return False, f"the mirror's data in {home} is damaged:\n  {shown}\nrebuild it with `geolesson mirror build`"
    size = sum(r["size"] for r in built["files"].values())
    return True, (f"ok: {len(built['files'])} files, {size / 1e6:.0f} MB match build.json "
                  f"(SHA-256, {time.perf_counter() - t0:.1f} s)")
