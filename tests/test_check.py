"""`geolesson check`, the learner's install self-test."""

from __future__ import annotations

import subprocess
import sys


def test_check_passes_against_the_mirror(mirror):
    r = subprocess.run([sys.executable, "-m", "geolesson.cli", "check"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 6 and all(line.startswith("ok") for line in lines)
    assert "mirror data: ok:" in r.stdout
    assert "GDAL" in r.stdout and "PROJ" in r.stdout and "search found S2" in r.stdout
    read = next(line for line in lines if "COG window read" in line)
    assert f" at {mirror['files_url']}" in read and read.split(" (")[0].endswith(".tif")


def test_check_reports_failures_with_a_hint(monkeypatch):
    from geolesson import check

    monkeypatch.setenv("GEOLESSON_SOURCE", "nonsense")
    out = []
    assert check.run_checks(out.append) is False
    failed = [line for line in out if line.startswith("FAILED")]
    assert failed and all("hint:" in line for line in failed)
    assert any("'nonsense'" in line for line in failed)
