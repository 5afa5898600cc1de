"""How much memory this session may use, for lessons that size an in-memory demonstration.

Where the book runs decides the answer: mybinder.org gives a session about 2 GB, a
laptop has its RAM, a container its cgroup limit. ``available_memory`` looks, in order, at

1. ``MEM_LIMIT``: the limit in bytes that JupyterHub's spawners (and so Binder) put in
   the environment of the notebook server and its kernels when a memory limit is set
   (JupyterHub documentation, "Spawners": ``Spawner.mem_limit``; jupyter-resource-usage
   reads the same variable);
2. the cgroup memory limit of this process: cgroup v2 ``memory.max`` of its cgroup and of
   every parent cgroup (the smallest applies), else cgroup v1 ``memory.limit_in_bytes``
   (Linux kernel documentation, ``admin-guide/cgroup-v2`` and ``cgroup-v1/memory``);
3. the machine: ``MemAvailable`` of ``/proc/meminfo`` (what can be allocated without
   swapping, Linux >= 3.14), else the physical memory (``os.sysconf``).

The first that gives a number wins.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

# cgroup v1 reports "no limit" as a huge number (PAGE_COUNTER_MAX pages, ~9.2e18 bytes)
_UNLIMITED = 2**60


@dataclass(frozen=True)
class MemoryBudget:
    """The memory a session may use: ``bytes`` (int, bytes) and where the number comes from."""

    bytes: int
    source: str  # "MEM_LIMIT", "cgroup", "machine (MemAvailable)" or "machine (physical)"

    @property
    def gib(self) -> float:
        """The budget in GiB (2**30 bytes)."""
        return self.bytes / 2**30


def _mem_limit(environ: Mapping[str, str]) -> int | None:
    value = environ.get("MEM_LIMIT")
    if value is None or value.strip() == "":
        return None
    try:
        limit = int(value.strip())
    except ValueError:
        raise ValueError(f"MEM_LIMIT={value!r} is not a whole number of bytes "
                         "(JupyterHub sets e.g. MEM_LIMIT=2147483648 for 2 GiB)") from None
    if limit <= 0:
        raise ValueError(f"MEM_LIMIT={value!r} must be a positive number of bytes")
    return limit


def _read_limit(path: Path) -> int | None:
    """A cgroup limit file's value in bytes; None if absent, unreadable or unlimited."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text == "max" or not text.isdigit():
        return None
    value = int(text)
    return value if 0 < value < _UNLIMITED else None


def _limits_up(base: Path, path: str, filename: str) -> list[int]:
    """Limits in ``filename`` of the cgroup ``base/path`` and of each parent up to ``base``."""
    group, limits = base / path.lstrip("/"), []
    while True:
        if (limit := _read_limit(group / filename)) is not None:
            limits.append(limit)
        if group == base or base not in group.parents:
            return limits
        group = group.parent


def _cgroup_limit(cgroup_root: Path, proc_cgroup: Path) -> int | None:
    limits = []
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":  # cgroup v2: "0::/user.slice/..."
            limits += _limits_up(cgroup_root, path, "memory.max")
        elif "memory" in controllers.split(","):  # cgroup v1: "4:memory:/docker/..."
            limits += _limits_up(cgroup_root / "memory", path, "memory.limit_in_bytes")
    return min(limits) if limits else None


def _machine(meminfo: Path) -> MemoryBudget:
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return MemoryBudget(int(line.split()[1]) * 1024, "machine (MemAvailable)")
    except OSError:
        pass
    return MemoryBudget(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "machine (physical)")


def available_memory(environ: Mapping[str, str] | None = None, cgroup_root: str | Path = "/sys/fs/cgroup",
                     proc_cgroup: str | Path = "/proc/self/cgroup",
                     meminfo: str | Path = "/proc/meminfo") -> MemoryBudget:
    """The memory this session may use: ``MEM_LIMIT``, else the cgroup limit, else the machine's.

    Args:
        environ: the environment to read ``MEM_LIMIT`` from (default ``os.environ``).
        cgroup_root, proc_cgroup, meminfo: where Linux exposes cgroups, this process's cgroup
            and memory statistics (parameters so that tests can point them at files they make).

    Returns:
        A ``MemoryBudget`` (bytes, source). Not what is free right now inside a limit: a
        lesson takes a share of it and leaves the rest to the kernel, Jupyter and the mirror.

    Raises:
        ValueError: ``MEM_LIMIT`` is set but is not a positive whole number of bytes.
    """
    environ = os.environ if environ is None else environ
    if (limit := _mem_limit(environ)) is not None:
        return MemoryBudget(limit, "MEM_LIMIT")
    if (limit := _cgroup_limit(Path(cgroup_root), Path(proc_cgroup))) is not None:
        return MemoryBudget(limit, "cgroup")
    return _machine(Path(meminfo))
