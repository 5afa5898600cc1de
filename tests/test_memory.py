"""geolesson.memory: the memory budget from MEM_LIMIT, the cgroup limit or the machine, on files the tests make."""

from __future__ import annotations

import pytest

from geolesson.memory import available_memory

GIB = 2**30


@pytest.fixture
def fake_linux(tmp_path):
    """A /proc/meminfo and an empty cgroup tree under tmp_path; returns the keyword arguments."""
    (tmp_path / "meminfo").write_text("MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:    3000000 kB\n")
    (tmp_path / "cgroup").mkdir()
    (tmp_path / "proc_cgroup").write_text("0::/\n")
    return dict(cgroup_root=tmp_path / "cgroup", proc_cgroup=tmp_path / "proc_cgroup", meminfo=tmp_path / "meminfo")


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_mem_limit_wins_over_cgroup_and_machine(fake_linux):
    write(fake_linux["cgroup_root"] / "memory.max", str(4 * GIB))
    budget = available_memory({"MEM_LIMIT": str(2 * GIB)}, **fake_linux)
    assert (budget.bytes, budget.source, budget.gib) == (2 * GIB, "MEM_LIMIT", 2.0)


@pytest.mark.parametrize("value", ["2G", "1.5e9", "-5", "0"])
def test_bad_mem_limit_names_the_variable_and_value(fake_linux, value):
    with pytest.raises(ValueError, match=f"MEM_LIMIT='{value}'"):
        available_memory({"MEM_LIMIT": value}, **fake_linux)


def test_cgroup_v2_smallest_limit_on_the_path_applies(fake_linux):
    root = fake_linux["cgroup_root"]
    write(fake_linux["proc_cgroup"], "0::/user.slice/session-1.scope\n")
    write(root / "user.slice" / "memory.max", str(3 * GIB))
    write(root / "user.slice" / "session-1.scope" / "memory.max", "max")  # no limit of its own
    budget = available_memory({}, **fake_linux)
    assert (budget.bytes, budget.source) == (3 * GIB, "cgroup")


def test_cgroup_v1_limit_and_its_unlimited_marker(fake_linux):
    root = fake_linux["cgroup_root"]
    write(fake_linux["proc_cgroup"], "5:cpu,cpuacct:/\n4:memory:/docker/abc\n")
    # inside a container the host path does not exist; the namespace root holds the limit
    write(root / "memory" / "memory.limit_in_bytes", str(1800 * 2**20))
    assert available_memory({}, **fake_linux).bytes == 1800 * 2**20
    write(root / "memory" / "memory.limit_in_bytes", "9223372036854771712")  # v1's "no limit"
    assert available_memory({}, **fake_linux).source == "machine (MemAvailable)"


def test_machine_memavailable_when_nothing_limits(fake_linux):
    write(fake_linux["cgroup_root"] / "memory.max", "max")
    budget = available_memory({"MEM_LIMIT": ""}, **fake_linux)
    assert (budget.bytes, budget.source) == (3000000 * 1024, "machine (MemAvailable)")


def test_physical_memory_without_meminfo(fake_linux, tmp_path):
    fake_linux["meminfo"] = tmp_path / "missing"
    budget = available_memory({}, **fake_linux)
    assert budget.source == "machine (physical)" and budget.bytes > 0
