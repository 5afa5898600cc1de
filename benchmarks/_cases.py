"""Fresh-process benchmark cases, shared by benchmarks/batching.py and benchmarks/chips.py.

A script names its cases ``case_<name>(**kwargs) -> dict`` and calls :func:`dispatch` first
in ``main``; :func:`run` executes one case as ``python script --case <name> --case-args
<json>`` in a new process (cold caches, its own peak RSS) with GDAL's HTTP options in its
environment, and returns the JSON dict the case printed last.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path


def collect(namespace: dict) -> dict:
    """``{name: fn}`` of the ``case_<name>`` functions in a module's ``globals()``."""
    return {name[len("case_"):]: fn for name, fn in namespace.items() if name.startswith("case_")}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The hidden ``--case`` / ``--case-args`` options :func:`run` passes."""
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--case-args", help=argparse.SUPPRESS)


def dispatch(args: argparse.Namespace, cases: dict) -> bool:
    """Run the case ``args`` name, print its result as JSON; False when there is none."""
    if not args.case:
        return False
    print(json.dumps(cases[args.case](**json.loads(args.case_args))))
    return True


def run(script: str, case: str, python: Path, env: dict | None = None, **kwargs) -> dict:
    """Case ``case`` of ``script`` in a fresh ``python`` process. ``env``: extra variables
    (a value None removes one) on top of this environment and GDAL's HTTP options, the same
    for every case, peers included. RuntimeError with the case's stderr if it fails."""
    from geolesson import sources

    full = {**os.environ, **sources.GDAL_HTTP_OPTIONS}
    for key, value in (env or {}).items():
        if value is None:
            full.pop(key, None)
        else:
            full[key] = value
    args = [str(python), script, "--case", case, "--case-args", json.dumps(kwargs)]
    done = subprocess.run(args, capture_output=True, text=True, env=full, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"case {case} {kwargs} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
