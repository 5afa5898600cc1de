"""The code passes ruff as configured in pyproject.toml (pyflakes, pycodestyle, import order)."""

from __future__ import annotations

import subprocess
import sys

from tests.fixtures import ROOT


def test_ruff_finds_nothing():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise", "."],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
