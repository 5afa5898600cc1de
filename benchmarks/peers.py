"""The peers' own virtual environments: libraries whose pins clash with ours (stacchip pins
numpy<2; torchgeo and xbatcher pull Lightning, timm, kornia) run in git-ignored venvs under
benchmarks/, made from a requirements file and remade when it changes."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class PeerVenv:
    """A peer venv: ``benchmarks/<folder>`` with ``benchmarks/<requirements>`` installed."""

    folder: str
    requirements: str
    #: refuse an install that would bring a CUDA torch or CUDA packages (the CPU wheel only)
    cpu_torch_only: bool = False

    @property
    def path(self) -> Path:
        return HERE / self.folder

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def requirements_file(self) -> Path:
        return HERE / self.requirements

    def current(self) -> bool:
        """Whether the venv exists and was made from the requirements file as it is now."""
        stamp = self.path / ".requirements"
        return (self.python.exists() and stamp.exists()
                and stamp.read_text() == self.requirements_file.read_text())

    def create(self) -> Path:
        """Make the venv anew and install the requirements; returns its python."""
        print(f"creating {self.path.relative_to(HERE.parent)} from {self.requirements} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(self.path)], check=True)
        self._pip("install", "--quiet", "--upgrade", "pip")
        if self.cpu_torch_only:
            self._refuse_cuda()
        self._pip("install", "--quiet", "-r", str(self.requirements_file))
        (self.path / ".requirements").write_text(self.requirements_file.read_text())
        return self.python

    def ensure(self) -> Path:
        """The venv's python, made first where it is missing or out of date."""
        return self.python if self.current() else self.create()

    def existing(self, how: str) -> Path:
        """The venv's python; SystemExit saying ``how`` to make it where it is missing or out of date."""
        if not self.current():
            raise SystemExit(f"the peers' venv {self.path} is missing or older than {self.requirements}: {how}")
        return self.python

    def _pip(self, *args: str) -> None:
        subprocess.run([str(self.python), "-m", "pip", *args], check=True)

    def _refuse_cuda(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp, "report.json")
            self._pip("install", "--quiet", "--dry-run", "--report", str(report), "-r", str(self.requirements_file))
            planned = {p["metadata"]["name"].lower(): p["metadata"]["version"]
                       for p in json.loads(report.read_text())["install"]}
        cuda = sorted(n for n in planned if n.startswith(("nvidia-", "cuda-", "triton")))
        if cuda or "+cpu" not in planned.get("torch", ""):
            raise SystemExit(f"refusing: this install would bring a CUDA torch ({planned.get('torch')}) or CUDA "
                             f"packages {cuda}; the peers need the CPU wheel torch==2.13.0+cpu")
