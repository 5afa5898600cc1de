"""Where the project's inputs and the mirror's generated state live on disk.

This is the only contract shared by the teaching helpers and the mirror: the
mirror writes ``state.json`` when it starts and removes it when it stops; the
helpers read it to find the mirror's URLs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

SCENARIO_FILE = "mirror_scenario.toml"


def project_root() -> Path:
    """The geolesson checkout that holds ``data/`` (the committed inputs).

    ``GEOLESSON_ROOT`` wins; otherwise the checkout this package is installed from
    (editable install), then the first parent of the working directory with
    ``data/mirror_scenario.toml``.

    Raises:
        FileNotFoundError: no checkout can be found.
    """
    candidates = []
    if env := os.environ.get("GEOLESSON_ROOT"):
        candidates.append(Path(env))
    candidates.append(Path(__file__).resolve().parents[2])
    cwd = Path.cwd().resolve()
    candidates.extend([cwd, *cwd.parents])
    for root in candidates:
        if (root / "data" / SCENARIO_FILE).is_file():
            return root
    raise FileNotFoundError(
        f"no geolesson checkout found (looked for data/{SCENARIO_FILE} in "
        f"{', '.join(str(c) for c in candidates[:3])}, ...); set GEOLESSON_ROOT to the repository root"
    )


def data_dir() -> Path:
    """The committed inputs: AOI vectors and the mirror scenario."""
    return project_root() / "data"


def mirror_home() -> Path:
    """The mirror's generated, git-ignored directory (``GEOLESSON_MIRROR_DIR`` or ``data/mirror``)."""
    if env := os.environ.get("GEOLESSON_MIRROR_DIR"):
        return Path(env).resolve()
    return data_dir() / "mirror"


def state_file() -> Path:
    return mirror_home() / "run" / "state.json"


def mirror_healthy(state: dict | None, timeout: float = 2.0) -> bool:
    """Whether the mirror described by ``state`` answers its health check."""
    import httpx

    if not state:
        return False
    try:
        return httpx.get(f"{state['api_url']}_mirror/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def read_state() -> dict | None:
    """The running mirror's published state (URLs, ports, pids), or None when it is not started."""
    try:
        return json.loads(state_file().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
