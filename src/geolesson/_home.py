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
        FileNotFoundError: ``GEOLESSON_ROOT`` is set but is not a checkout (it is never
            ignored), or no checkout can be found.
    """
    candidates = []
    if (env := os.environ.get("GEOLESSON_ROOT")) is not None:
        if not (Path(env) / "data" / SCENARIO_FILE).is_file():
            raise FileNotFoundError(f"GEOLESSON_ROOT={env!r} is not a geolesson checkout: it must be the repository "
                                    f"root, holding data/{SCENARIO_FILE}; fix it or unset it")
        return Path(env)
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
    """The mirror's generated, git-ignored directory (``GEOLESSON_MIRROR_DIR`` or ``data/mirror``).

    Raises:
        ValueError: ``GEOLESSON_MIRROR_DIR`` is set but empty, or names an existing file
            that is not a directory.
    """
    if (env := os.environ.get("GEOLESSON_MIRROR_DIR")) is not None:
        home = Path(env).resolve()
        if not env.strip() or (home.exists() and not home.is_dir()):
            raise ValueError(f"GEOLESSON_MIRROR_DIR={env!r} is not allowed: set it to a directory (it is created "
                             "if missing) or unset it for data/mirror in the checkout")
        return home
    return data_dir() / "mirror"


def state_file() -> Path:
    """``<mirror home>/run/state.json``: the running mirror's URLs, ports and pids."""
    return mirror_home() / "run" / "state.json"


def mirror_healthy(state: dict | None, timeout: float = 2.0) -> bool:
    """Whether the mirror described by ``state`` answers its health check (a query through its
    database pool) as itself: the answer names the state's mirror home, so another server that
    took the port after the mirror's web app died does not count."""
    import httpx

    if not state or not isinstance(state.get("api_url"), str):
        return False
    try:
        r = httpx.get(f"{state['api_url']}_mirror/health", timeout=timeout)
        body = r.json() if r.status_code == 200 else None
    except (httpx.HTTPError, httpx.InvalidURL, ValueError):
        return False
    return isinstance(body, dict) and body.get("mirror") == state.get("home")


def read_state() -> dict | None:
    """The running mirror's published state (URLs, ports, pids), or None when it is not started."""
    try:
        state = json.loads(state_file().read_text())
    except (FileNotFoundError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return state if isinstance(state, dict) else None
