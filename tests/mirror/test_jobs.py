"""The build's pool: the longest chains first, the first failure stops the rest, workers die with the build,
and a full disk is named as such (real ENOSPC writes: /dev/full answers every write with it)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from geolesson.mirror.jobs import Job, JobError, run_jobs

FULL = Path("/dev/full")
needs_dev_full = pytest.mark.skipif(not FULL.exists(), reason="no /dev/full (Linux's always-full device) here")


def append(path: str, text: str, seconds: float = 0.0) -> str:
    """A job: sleep ``seconds``, then append ``text`` and a newline to ``path``."""
    time.sleep(seconds)
    with open(path, "a") as f:
        f.write(text + "\n")
    return text


def write_geotiff(path: str) -> None:
    """A job: a 512 x 512 uint16 GeoTIFF at ``path`` (GDAL's writes, as the build's)."""
    import rasterio
    from rasterio.transform import from_origin

    with rasterio.open(path, "w", driver="GTiff", width=512, height=512, count=1, dtype="uint16",
                       crs="EPSG:32635", transform=from_origin(576640, 4008960, 10, 10)) as dst:
        dst.write(np.arange(512 * 512, dtype="uint16").reshape(1, 512, 512))


def test_the_longest_chain_runs_first_and_follow_up_jobs_run(tmp_path):
    log = tmp_path / "order.txt"
    then_jobs = lambda _: [Job("follow-up", 0.1, append, (str(log), "follow-up"))]  # noqa: E731
    jobs = [Job(name, cost, append, (str(log), name), then=then_jobs if name == "b" else None, after=after)
            for name, cost, after in (("a", 1, 0), ("b", 1, 5), ("c", 3, 0))]
    run_jobs(jobs, workers=1, log=lambda *_: None)
    assert log.read_text().split() == ["b", "c", "a", "follow-up"]  # b: 1 + 5 ahead of it; then by cost


def test_a_failing_job_stops_the_others_and_leaves_no_worker(tmp_path):
    marks = tmp_path / "marks.txt"
    jobs = [Job("slow", 2, append, (str(marks), "slow", 30)),
            Job("broken", 1, append, (str(tmp_path / "no" / "such" / "folder"), "x")),
            *[Job(f"queued {i}", 0.5, append, (str(marks), f"queued {i}")) for i in range(4)]]
    t0 = time.monotonic()
    with pytest.raises(JobError, match=r"^broken: FileNotFoundError: .*no/such/folder") as failed:
        run_jobs(jobs, workers=2, log=lambda *_: None)
    assert time.monotonic() - t0 < 20  # the 30 s job was killed, not waited for
    assert "\n" not in str(failed.value) and not failed.value.disk_full
    assert not marks.exists()  # neither the running job nor the queued ones went on
    assert multiprocessing.active_children() == []


@needs_dev_full
@pytest.mark.parametrize("writer", [append, write_geotiff])
def test_a_full_disk_is_named_in_one_line(writer, tmp_path):
    """Python's writes raise ENOSPC; GDAL's say "Write failed" and print the cause, which the job keeps."""
    args = (str(FULL), "x") if writer is append else (str(FULL),)
    with pytest.raises(JobError) as failed:
        run_jobs([Job("the item", 1, writer, args)], workers=1, log=lambda *_: None)
    assert failed.value.disk_full, str(failed.value)
    assert str(failed.value).startswith("the item: ") and "\n" not in str(failed.value)
    run_jobs([Job("the item", 1, write_geotiff, (str(tmp_path / "ok.tif"),))], workers=1, log=lambda *_: None)
    assert (tmp_path / "ok.tif").stat().st_size > 512 * 512


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_workers_die_with_a_killed_build(tmp_path):
    pids = tmp_path / "pids.txt"
    script = textwrap.dedent(f"""
        from tests.mirror.test_jobs import record_pid_and_sleep
        from geolesson.mirror.jobs import Job, run_jobs
        run_jobs([Job(str(i), 1, record_pid_and_sleep, ({str(pids)!r},)) for i in range(2)], workers=2)
    """)
    build = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).parents[2])
    deadline = time.monotonic() + 60
    while not (pids.exists() and len(pids.read_text().split()) == 2):
        assert build.poll() is None and time.monotonic() < deadline, "the workers did not start"
        time.sleep(0.1)
    workers = [int(p) for p in pids.read_text().split()]
    build.send_signal(signal.SIGKILL)  # the build alone, as the OOM killer does; not its group
    build.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    orphans = [pid for pid in workers if _alive(pid)]
    for pid in orphans:
        os.kill(pid, signal.SIGKILL)
    assert not orphans, "a worker outlived the killed build"


def record_pid_and_sleep(path: str) -> None:
    """A job: append this process's id to ``path``, then sleep a minute."""
    append(path, str(os.getpid()), 0)
    time.sleep(60)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
