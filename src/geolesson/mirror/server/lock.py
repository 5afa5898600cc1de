"""One lifecycle command at a time per mirror home: an exclusive ``fcntl.flock`` on ``<home>/run/lifecycle.lock``.

``start``, ``stop`` and ``build`` hold the lock while they change anything, so concurrent
starts give one mirror (the later ones wait, then find it running) and a build never swaps
data under a starting server. The kernel drops the lock when the holder exits, however it
exits (kill -9 included), so a crashed command never blocks the next one. The lock is
re-entrant within one process (``build`` stops and restarts the mirror while holding it).
"""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path

_held: dict[Path, int] = {}


def lock_file(home: Path) -> Path:
    """``<home>/run/lifecycle.lock``: the file whose ``flock`` is the lifecycle lock."""
    return home / "run" / "lifecycle.lock"


@contextmanager
def lifecycle_lock(home: Path, action: str, log=print, timeout: float = 900.0):
    """Hold the mirror home's lifecycle lock for ``action`` (waiting for another holder up to ``timeout`` s).

    Raises:
        TimeoutError: another command held the lock for longer than ``timeout`` seconds
            (the message names it and its pid).
    """
    path = lock_file(home)
    key = path.resolve() if path.exists() else path
    if _held.get(key):
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another command"
            log(f"waiting for {holder} to finish (lock {path}) ...")
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{holder} still holds {path} after {timeout:.0f} s") from None
                    time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"`geolesson mirror {action}` (pid {os.getpid()})".encode(), 0)
        _held[path.resolve()] = 1
        try:
            yield
        finally:
            _held.pop(path.resolve(), None)
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing the descriptor releases the lock
