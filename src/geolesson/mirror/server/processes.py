"""This mirror home's web app processes: found by ``run/api.pid`` and by their command line, and ended.

The web app runs as ``python -m geolesson.mirror.server.app --home <home> --port N --pg-port M``,
so every process of a mirror names its home: another checkout's mirror is never touched.
Without ``/proc`` (macOS) only the pid in ``run/api.pid`` is asked about (through ``ps``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

APP_MODULE = "geolesson.mirror.server.app"
# the module a mirror started before the regrouping runs: still recognised, so that it is stopped too
_OLD_APP_MODULE = "geolesson.mirror.app"


def pid_file(home: Path) -> Path:
    """``<home>/run/api.pid``: the pid of the web app ``start`` launched."""
    return home / "run" / "api.pid"


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        if Path("/proc").is_dir():
            return None
        # no /proc (macOS): ask ps (only for the pid in run/api.pid); it joins the arguments
        # with spaces, so a mirror home whose path holds a space is not recognised there
        r = subprocess.run(["ps", "-ww", "-o", "command=", "-p", str(pid)], capture_output=True, text=True)
        return r.stdout.split() or None
    return raw.decode(errors="replace").split("\0")[:-1]


def _api_args(cmdline: list[str] | None, home: Path) -> dict | None:
    """``{"port", "pg_port"}`` if ``cmdline`` is this home's web app, else None."""
    if not cmdline or (APP_MODULE not in cmdline and _OLD_APP_MODULE not in cmdline):
        return None
    args = dict(zip(cmdline, cmdline[1:]))
    if args.get("--home") != str(home):
        return None
    try:
        return {"port": int(args["--port"]), "pg_port": int(args["--pg-port"])}
    except (KeyError, ValueError):
        return None


def api_processes(home: Path) -> dict[int, dict]:
    """This home's running web apps: pid -> ``{"port", "pg_port"}`` (from ``run/api.pid`` and /proc)."""
    candidates: set[int] = set()
    try:
        candidates.add(int(pid_file(home).read_text().split()[0]))
    except (OSError, ValueError, IndexError):
        pass
    if Path("/proc").is_dir():
        candidates.update(int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit())
    found = {}
    for pid in candidates:
        args = _api_args(_cmdline(pid), home)
        if args is not None and _alive(pid):
            found[pid] = args
    return found


def process_state(pid: int) -> str | None:
    """The state letter of process ``pid`` (``R``, ``S``, ``D``, ``T`` stopped, ``Z`` zombie, ...),
    or None if there is no such process. Asks ``/proc``, or ``ps`` without it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None
    except (OSError, IndexError):
        if Path("/proc").is_dir():
            return None
    r = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True)
    return r.stdout.strip()[:1] or None


def process_command(pid: int) -> str:
    """Process ``pid``'s command line as one string, cut to 120 characters (for messages)."""
    words = _cmdline(pid) or ["?"]
    text = " ".join(words)
    return text if len(text) <= 120 else text[:117] + "..."


def children(pid: int) -> list[int]:
    """The pids of ``pid``'s child processes (Linux: from ``/proc``; elsewhere from ``ps``)."""
    if Path("/proc").is_dir():
        found = []
        for p in Path("/proc").iterdir():
            if not p.name.isdigit():
                continue
            try:
                if int((p / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(p.name))
            except (OSError, IndexError, ValueError):
                continue
        return sorted(found)
    r = subprocess.run(["ps", "-A", "-o", "pid=,ppid="], capture_output=True, text=True)
    return sorted(int(a) for a, b in (line.split() for line in r.stdout.splitlines() if line.strip())
                  if int(b) == pid)


def _alive(pid: int) -> bool:
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child that exited: reap it
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def terminate(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM the web app (its process group, if it leads one), SIGKILL it after ``timeout`` s."""
    def kill(sig):
        os.killpg(pid, sig) if os.getpgid(pid) == pid else os.kill(pid, sig)

    try:
        kill(signal.SIGTERM)
    except ProcessLookupError:
        return
    except PermissionError:
        return
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            try:
                kill(signal.SIGKILL)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + timeout
        time.sleep(0.05)
