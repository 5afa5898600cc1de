"""geolesson.chips.index_archive: parts on a Dask cluster equal chip_index, resume after a kill,
re-index what changed, report failures, refuse bad input before any work.

The scenes are made here (small Sentinel-2-like and Sentinel-1-like COGs in two UTM zones);
one test reads the running mirror to get a real 404 from its file server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest

from geolesson import chips
from tests.fixtures import OSAKA, ROOT, TOKYO, assert_refused, s1_scene, s2_scene


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """Five items: three Sentinel-2-like (SCL statistics), two Sentinel-1-like in two zones."""
    tmp = tmp_path_factory.mktemp("archive")
    items = [s2_scene(tmp, shape10=(600, 520), item_id=f"S2_{i}", seed=i, with_swir=False)[0]
             for i in range(3)]
    items += [s1_scene(tmp / "osaka", "S1_OSAKA", zone=OSAKA, shape=(512, 512))[0],
              s1_scene(tmp / "tokyo", "S1_TOKYO", zone=TOKYO, shape=(512, 384), seed=1)[0]]
    return [i.to_dict() if hasattr(i, "to_dict") else i for i in items]


@pytest.fixture(scope="module")
def dask_client():
    import distributed

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def _sorted(gdf):
    return gdf.sort_values("chip_id").reset_index(drop=True)


def assert_same_index(a, b):
    a, b = _sorted(a), _sorted(b)
    assert a.crs == b.crs
    assert dict(a.dtypes) == dict(b.dtypes)
    pd.testing.assert_frame_equal(pd.DataFrame(a.drop(columns="geometry")),
                                  pd.DataFrame(b.drop(columns="geometry")))
    assert a.geometry.geom_equals_exact(b.geometry, tolerance=0).all()


def test_parts_from_a_dask_cluster_equal_serial_chip_index(archive, dask_client, tmp_path):
    report = chips.index_archive(archive, tmp_path / "idx", chip_size=128, client=dask_client,
                                 progress=False)
    assert report.workers == 2
    assert sorted(report.indexed) == sorted(d["id"] for d in archive)
    assert not report.skipped and not report.failed
    serial = chips.chip_index(archive, 128)
    assert report.chips == len(serial)
    assert_same_index(chips.read_index(tmp_path / "idx"), serial)
    # one part per item, nothing else left in the folder
    assert sorted(p.parent.name for p in (tmp_path / "idx").rglob("*.parquet")) == \
        sorted(f"item_id={d['id']}" for d in archive)
    assert not list((tmp_path / "idx").rglob("*.tmp"))


def test_rerun_skips_unchanged_and_reindexes_what_changed(archive, tmp_path):
    out = tmp_path / "idx"
    first = chips.index_archive(archive, out, chip_size=128, workers=0, progress=False)
    assert len(first.indexed) == len(archive)
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("part.parquet")}

    again = chips.index_archive(archive, out, chip_size=128, workers=0, progress=False)
    assert again.indexed == [] and sorted(again.skipped) == sorted(d["id"] for d in archive)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("part.parquet")} == mtimes

    changed = [json.loads(json.dumps(d)) for d in archive]
    changed[1]["properties"]["updated"] = "2030-01-01T00:00:00Z"  # the provider reprocessed it
    changed[3]["properties"]["sar:polarizations"] = ["VV"]  # S1 items have no `updated`
    third = chips.index_archive(changed, out, chip_size=128, workers=0, progress=False)
    assert sorted(third.indexed) == sorted([changed[1]["id"], changed[3]["id"]])
    assert len(third.skipped) == len(archive) - 2

    resized = chips.index_archive(archive, out, chip_size=256, workers=0, progress=False)
    assert len(resized.indexed) == len(archive)  # another chip size: every part re-indexed
    assert_same_index(chips.read_index(out), chips.chip_index(archive, 256))


def test_other_settings_are_part_of_the_record(archive, tmp_path):
    out = tmp_path / "idx"
    chips.index_archive(archive[:1], out, chip_size=128, workers=0, progress=False)
    filtered = chips.index_archive(archive[:1], out, chip_size=128, max_nodata=0.5, workers=0,
                                   progress=False)
    assert filtered.indexed == [archive[0]["id"]]
    record, rows = chips.archive._read_record(next(out.rglob("part.parquet")))
    assert rows == len(chips.read_index(out))
    assert record["item_id"] == archive[0]["id"]
    assert record["settings"]["chip_size"] == 128 and record["settings"]["max_nodata"] == 0.5


_SLOW_RUN = """
import json, sys, time
from geolesson.chips import archive

real = archive._index_part
def slow(*args, **kwargs):
    result = real(*args, **kwargs)
    time.sleep(0.5)  # the test kills this process between items
    return result
archive._index_part = slow
items = json.load(open(sys.argv[1]))
archive.index_archive(items, sys.argv[2], chip_size=128, workers=0, progress=False)
"""


def test_killed_run_resumes_to_the_same_index(archive, tmp_path):
    items_file = tmp_path / "items.json"
    items_file.write_text(json.dumps(archive))
    out = tmp_path / "idx"
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_RUN, str(items_file), str(out)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(list(out.rglob("part.parquet"))) < 2:
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "the run wrote no two parts within 120 s"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    written = list(out.rglob("part.parquet"))
    assert 2 <= len(written) < len(archive)
    for part in written:  # whole parts only: each one is readable and carries its record
        assert chips.archive._read_record(part)[0]["item_id"] in part.parent.name
    # a temporary file left by the kill must not count as a part, and is cleaned up
    (written[0].parent / ".part.parquet.dead.tmp").write_bytes(b"half a parquet file")

    resumed = chips.index_archive(archive, out, chip_size=128, workers=0, progress=False)
    assert len(resumed.skipped) == len(written)
    assert len(resumed.indexed) == len(archive) - len(written)
    assert not list(out.rglob("*.tmp"))
    final = chips.read_index(out)
    assert final["chip_id"].is_unique
    assert_same_index(final, chips.chip_index(archive, 128))


def test_a_killed_dask_worker_does_not_lose_or_duplicate_parts(archive, dask_client, tmp_path):
    def slow_down():
        from geolesson.chips import archive as module

        real = module._index_part
        if getattr(real, "slowed", False):
            return

        def slow(*args, **kwargs):
            time.sleep(1.0)
            return real(*args, **kwargs)

        slow.slowed = True
        module._index_part = slow

    dask_client.run(slow_down)
    pids = list(dask_client.run(os.getpid).values())
    out = tmp_path / "idx"
    result = {}
    run = threading.Thread(target=lambda: result.update(report=chips.index_archive(
        archive, out, chip_size=128, client=dask_client, progress=False)))
    run.start()
    time.sleep(1.5)  # both workers are inside their first (slowed) task
    assert run.is_alive() and len(list(out.rglob("part.parquet"))) < len(archive)
    os.kill(pids[0], signal.SIGKILL)  # the nanny restarts it; the scheduler reruns its task
    run.join(timeout=180)
    assert not run.is_alive()
    report = result["report"]
    assert not report.failed, report
    assert sorted(report.indexed) == sorted(d["id"] for d in archive)
    assert_same_index(chips.read_index(out), chips.chip_index(archive, 128))
    dask_client.restart()  # fresh, unpatched workers for the other tests


def test_failing_item_is_reported_with_its_href(archive, mirror, local_items, tmp_path):
    broken = json.loads(json.dumps(local_items[0]))
    broken["id"] = "BROKEN_ITEM"
    missing = f"{mirror['files_url']}no/such/folder/SCL.tif"
    for asset in broken["assets"].values():
        asset["href"] = f"{mirror['files_url']}{asset['href'].lstrip('/')}"
    broken["assets"]["scl"]["href"] = missing  # the file server answers 404
    items = [archive[0], broken, archive[3]]
    with pytest.warns(UserWarning, match="1 of 3 items failed"):
        report = chips.index_archive(items, tmp_path / "idx", chip_size=256, workers=0,
                                     progress=False)
    assert list(report.failed) == ["BROKEN_ITEM"]
    assert missing in report.failed["BROKEN_ITEM"]
    assert sorted(report.indexed) == sorted([archive[0]["id"], archive[3]["id"]])
    assert set(chips.read_index(tmp_path / "idx")["item_id"]) == set(report.indexed)
    assert "BROKEN_ITEM" in str(report)


def test_bad_input_is_refused_before_any_work(archive, client, tmp_path):
    out = tmp_path / "idx"
    empty = client.search(collections=["sentinel-2-l2a"], datetime="1990-01-01/1990-01-02")
    with pytest.raises(ValueError, match="matched no item"):
        chips.index_archive(empty, out, workers=0)
    with pytest.raises(ValueError, match="items_or_search is empty"):
        chips.index_archive([], out, workers=0)
    with pytest.raises(ValueError, match="chip_size=1024 is larger than the scene: item 'S2_0'"):
        chips.index_archive(archive, out, chip_size=1024, workers=0)
    with pytest.raises(ValueError, match="chip_size=255 .* whole number"):
        chips.index_archive(archive, out, chip_size=255, workers=0)
    with pytest.raises(ValueError, match="chip_size must be a positive integer"):
        chips.index_archive(archive, out, chip_size=0, workers=0)
    with pytest.raises(ValueError, match="workers must be an integer from 0"):
        chips.index_archive(archive, out, workers=-1)
    with pytest.raises(ValueError, match="both given"):
        chips.index_archive(archive, out, workers=2, client=object())
    with pytest.raises(ValueError, match="more than once.*S2_0"):
        chips.index_archive([archive[0], archive[0]], out, workers=0)
    assert not out.exists()  # nothing was created, let alone submitted
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match=f"out_dir='{blocker / 'idx'}' is not a writable folder"):
        chips.index_archive(archive, blocker / "idx", workers=0)


def test_command_line_indexes_a_search_and_resumes(mirror, tmp_path):
    cmd = [sys.executable, "-m", "geolesson.cli", "chips", "index",
           "--collection", "sentinel-2-l2a", "--bbox", "27.86", "36.0", "28.06", "36.22",
           "--datetime", "2023-07-01/2023-07-15", "--chip-size", "512", "--out",
           str(tmp_path / "idx"), "--workers", "0"]
    first = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    index = chips.read_index(tmp_path / "idx")
    n_items = index["item_id"].nunique()
    assert n_items >= 2
    assert f"{n_items} items: {n_items} indexed, 0 skipped" in first.stdout
    assert f"{len(index)} chips" in first.stdout
    assert "MB read" in first.stdout
    second = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"{n_items} items: 0 indexed, {n_items} skipped" in second.stdout

    cmd[cmd.index("--datetime") + 1] = "1990-01-01/1990-01-02"
    nothing = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert nothing.returncode == 2
    assert "matched no item" in nothing.stderr


# (id, call(items, out), expected, words the message must hold): one row per bad input, each
# refused before the out folder is made
BAD_INPUTS = [
    ("items-none", lambda it, out: chips.index_archive(None, out, workers=0), TypeError, ["items_or_search", "None"]),
    ("items-str", lambda it, out: chips.index_archive("S2_0", out, workers=0), TypeError,
     ["items_or_search", "'S2_0'"]),
    ("items-empty", lambda it, out: chips.index_archive([], out, workers=0), ValueError, ["items_or_search", "empty"]),
    ("items-twice", lambda it, out: chips.index_archive([it[0], it[0]], out, workers=0), ValueError,
     ["more than once", "S2_0"]),
    ("out-none", lambda it, out: chips.index_archive(it, None, workers=0), TypeError, ["out_dir", "None"]),
    ("out-int", lambda it, out: chips.index_archive(it, 5, workers=0), TypeError, ["out_dir", "5"]),
    ("out-empty", lambda it, out: chips.index_archive(it, "", workers=0), ValueError, ["out_dir", "''"]),
    ("client-str", lambda it, out: chips.index_archive(it, out, client="tcp://127.0.0.1:8786"), TypeError,
     ["client", "'tcp://127.0.0.1:8786'", "distributed.Client"]),
    ("client-and-workers", lambda it, out: chips.index_archive(it, out, workers=2, client=object()), ValueError,
     ["workers=2", "client", "both"]),
    ("workers-negative", lambda it, out: chips.index_archive(it, out, workers=-1), ValueError, ["workers", "-1"]),
    ("workers-bool", lambda it, out: chips.index_archive(it, out, workers=True), ValueError, ["workers", "True"]),
    ("workers-float", lambda it, out: chips.index_archive(it, out, workers=2.0), ValueError, ["workers", "2.0"]),
    ("chip-size-zero", lambda it, out: chips.index_archive(it, out, chip_size=0, workers=0), ValueError,
     ["chip_size", "0"]),
    ("chip-size-bool", lambda it, out: chips.index_archive(it, out, chip_size=True, workers=0), ValueError,
     ["chip_size", "True"]),
    ("chip-size-too-large", lambda it, out: chips.index_archive(it, out, chip_size=1024, workers=0), ValueError,
     ["chip_size=1024", "S2_0"]),
    ("max-nodata-nan", lambda it, out: chips.index_archive(it, out, max_nodata=float("nan"), workers=0), ValueError,
     ["max_nodata", "nan"]),
    ("max-cloud-2", lambda it, out: chips.index_archive(it, out, max_cloud=2, workers=0), ValueError,
     ["max_cloud", "2"]),
    ("partial-clip", lambda it, out: chips.index_archive(it, out, partial="clip", workers=0), ValueError,
     ["partial", "'clip'"]),
    ("statistics-unknown", lambda it, out: chips.index_archive(it, out, statistics="cloud", workers=0), ValueError,
     ["statistics", "'cloud'"]),
    ("cloud-classes-none", lambda it, out: chips.index_archive(it, out, cloud_classes=None, workers=0), TypeError,
     ["cloud_classes", "None"]),
    ("scl-asset-none", lambda it, out: chips.index_archive(it, out, scl_asset=None, workers=0), TypeError,
     ["scl_asset", "None"]),
    ("reference-asset-int", lambda it, out: chips.index_archive(it, out, reference_asset=3, workers=0), TypeError,
     ["reference_asset", "3"]),
    ("progress-str", lambda it, out: chips.index_archive(it, out, progress="no", workers=0), TypeError,
     ["progress", "'no'"]),
]


@pytest.mark.parametrize("call, expected, words", [pytest.param(*c[1:], id=c[0]) for c in BAD_INPUTS])
def test_bad_input_is_refused_naming_the_parameter_and_value(archive, tmp_path, monkeypatch, call, expected,
                                                             words):
    monkeypatch.chdir(tmp_path)  # out_dir="" once wrote item_id=... folders into the working directory
    out = tmp_path / "idx"
    assert_refused(lambda: call(archive, out), expected, words)
    assert list(tmp_path.iterdir()) == []  # refused before anything was made, here or relative to it
