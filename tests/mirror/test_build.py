"""`geolesson mirror build` on a tiny scenario: atomic, verified, byte-identical when repeated."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from geolesson._home import SCENARIO_FILE, data_dir
from tests.fixtures import DATA

VARIANT = DATA / "variant_scenario.toml"


@pytest.fixture
def tiny_checkout(tmp_path, monkeypatch):
    """A checkout whose scenario is three dates of 384 px crops, with its own mirror home."""
    root = tmp_path / "checkout"
    (root / "data").mkdir(parents=True)
    for p in data_dir().glob("rhodes_*.geojson"):
        shutil.copy(p, root / "data" / p.name)
    text = VARIANT.read_text()
    text = text.replace('stop = "2023-09-29"', 'stop = "2023-06-13"')
    text = re.sub(r"cloud_cover = \[[^\]]*\]", "cloud_cover = [30, 0.0, 64]", text)
    text = re.sub(r"partial_orbit = \{[^}]*\}", 'partial_orbit = { "35SNV" = ["2023-06-09"] }', text)
    (root / "data" / SCENARIO_FILE).write_text(text)
    monkeypatch.setenv("GEOLESSON_ROOT", str(root))
    monkeypatch.setenv("GEOLESSON_MIRROR_DIR", str(tmp_path / "home"))
    return tmp_path / "home"


def test_builds_are_byte_identical_verified_and_repaired(tiny_checkout):
    from geolesson.mirror import is_built, verify
    from geolesson.mirror.build import build

    home = tiny_checkout
    build(workers=1, log=lambda *_: None)
    first = (home / "stac" / "build.json").read_bytes()
    manifest = json.loads(first)
    tifs = [f for f in manifest["files"] if f.endswith(".tif")]
    assert manifest["items"] == 6 and tifs and len(tifs) % 6 == 0  # the same COGs for every item
    assert all(r["size"] == (home / f).stat().st_size for f, r in manifest["files"].items())
    assert is_built(home) and verify(home)[0]
    build(workers=2, force=True, log=lambda *_: None)
    assert (home / "stac" / "build.json").read_bytes() == first
    assert sorted(p.name for p in home.iterdir()) == ["files", "run", "stac"]  # no temporary folder left
    up_to_date = []
    build(log=up_to_date.append)
    assert up_to_date == [f"mirror data is up to date in {home}"]

    victim = home / tifs[0]
    victim.unlink()
    assert not is_built(home)
    said = []
    build(workers=2, log=said.append)
    assert any("damaged" in line and f"missing: {tifs[0]}" in line for line in said)
    assert victim.is_file() and is_built(home)
    assert (home / "stac" / "build.json").read_bytes() == first


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full (Linux's always-full device) here")
def test_a_build_on_a_full_disk_says_so_in_one_line_and_keeps_the_data(tiny_checkout, monkeypatch):
    """A job's writes fail with ENOSPC (into /dev/full) while the other jobs run: the build stops, says
    why in one line (exit 1, no traceback), deletes its folder and leaves the built data as they were."""
    from geolesson.mirror import build as builder
    from geolesson.mirror import is_built, verify
    from geolesson.mirror.jobs import Job
    from tests.fixtures import run_cli
    from tests.mirror.test_jobs import write_geotiff

    home = tiny_checkout
    builder.build(workers=2, log=lambda *_: None)
    first = (home / "stac" / "build.json").read_bytes()
    s2_jobs = builder.sentinel2_jobs

    def a_job_on_a_full_disk(out):
        jobs, finish = s2_jobs(out)
        return [*jobs, Job("S2A_35SNA_20230608_0_L2A: B04 COG", 1e9, write_geotiff, ("/dev/full",))], finish

    monkeypatch.setattr(builder, "sentinel2_jobs", a_job_on_a_full_disk)
    code, err = run_cli("mirror", "build", "--force", "--workers", "2")
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: mirror build failed: the disk is full: no space left on the device of {home} "
                          "while writing S2A_35SNA_20230608_0_L2A: B04 COG"), err
    assert "MB are free now" in err and "the last complete build took" in err
    assert sorted(p.name for p in home.iterdir()) == ["files", "run", "stac"]  # no partial build left
    assert (home / "stac" / "build.json").read_bytes() == first and is_built(home) and verify(home)[0]


def test_inputs_digest_covers_every_module_the_build_runs():
    """The digest hashes the package's files, not a list: each module a build imports is in it."""
    import subprocess
    import sys

    from geolesson.mirror import layout

    code = ("import sys, geolesson.mirror.build; "
            "print('\\n'.join(m.__file__ for n, m in sys.modules.items() if n.startswith('geolesson.mirror')))")
    loaded = {Path(f) for f in subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                              check=True).stdout.split()}
    package = Path(layout.__file__).parent
    hashed = set(layout.data_code())
    makers = {p for p in loaded if p.relative_to(package).parts[0] not in ("server", "layout.py", "__init__.py")}
    assert {"simulation.py", "writing.py", "items.py", "scenario.py", "noise.py"} <= {p.name for p in makers}
    assert makers <= hashed
    assert not any("server" in p.relative_to(package).parts for p in hashed)  # serving never shapes the data


def test_an_interrupted_build_says_so_in_one_line_and_leaves_nothing(tiny_checkout, monkeypatch):
    """Ctrl-C while jobs run (here: raised where a job's result arrives): exit 130, one line, no worker,
    no partial folder."""
    import multiprocessing

    from geolesson.mirror import build as builder
    from geolesson.mirror.jobs import Job
    from tests.fixtures import run_cli
    from tests.mirror.test_jobs import append

    def interrupt(_):
        raise KeyboardInterrupt

    def jobs_then_ctrl_c(out):
        jobs, finish = builder.sentinel1_jobs(out)
        return [*jobs, Job("a quick job", 1e9, append, (str(out / "quick.txt"), "done"), then=interrupt)], finish

    monkeypatch.setattr(builder, "sentinel2_jobs", jobs_then_ctrl_c)
    code, err = run_cli("mirror", "build", "--workers", "2")
    assert code == 130 and err.count("\n") == 1 and err.startswith("error: mirror build interrupted"), err
    assert multiprocessing.active_children() == []
    assert sorted(p.name for p in tiny_checkout.iterdir()) == ["run"]  # the lock's folder; no partial build
