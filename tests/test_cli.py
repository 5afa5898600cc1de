"""The ``geolesson`` command: bad options of ``geolesson chips index`` exit 2 with one line,
before any search or cluster starts; an unreachable scheduler fails in bounded time, one line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from tests.fixtures import run_cli

INDEX = ("chips", "index", "--collection", "sentinel-2-l2a", "--chip-size", "256", "--out")


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path, monkeypatch):
    """Run in a temporary folder: a relative path that slips through writes there, not into the
    checkout (an empty --out once wrote 48 item_id=... folders into the repository root)."""
    monkeypatch.chdir(tmp_path)


def _index(tmp, *options):
    return run_cli(*INDEX, str(tmp / "idx"), *options)


# (id, options after `chips index ... --out DIR`, words the one line must hold)
BAD_OPTIONS = [
    ("max-items-zero", ["--max-items", "0"], ["--max-items", "'0'", ">= 1"]),
    ("max-items-negative", ["--max-items", "-1"], ["--max-items", "'-1'", ">= 1"]),
    ("max-items-float", ["--max-items", "2.5"], ["--max-items", "'2.5'"]),
    ("bbox-longitude", ["--bbox", "27.8", "36.0", "200", "36.2"], ["--bbox", "200", "-180..180"]),
    ("bbox-latitude", ["--bbox", "27.8", "-91", "28.0", "36.2"], ["--bbox", "-91", "-90..90"]),
    ("bbox-south-above-north", ["--bbox", "27.8", "36.5", "28.0", "36.2"], ["--bbox", "36.5", "36.2", "south"]),
    ("bbox-three-numbers", ["--bbox", "27.8", "36.0", "28.0"], ["--bbox", "4"]),
    ("bbox-nan", ["--bbox", "nan", "36.0", "28.0", "36.2"], ["--bbox", "nan"]),
    ("bbox-word", ["--bbox", "rhodes", "36.0", "28.0", "36.2"], ["--bbox", "'rhodes'"]),
    ("datetime-garbage", ["--datetime", "garbage"], ["--datetime", "'garbage'", "2023-06-01/2023-09-30"]),
    ("datetime-month-13", ["--datetime", "2023-13-01"], ["--datetime", "'2023-13-01'"]),
    ("datetime-reversed", ["--datetime", "2023-09-30/2023-06-01"], ["--datetime", "'2023-09-30/2023-06-01'", "before"]),
    ("datetime-three-parts", ["--datetime", "2023/2024/2025"], ["--datetime", "'2023/2024/2025'"]),
    ("chip-size-zero", ["--chip-size", "0"], ["--chip-size", "'0'", ">= 1"]),
    ("chip-size-word", ["--chip-size", "big"], ["--chip-size", "'big'"]),
    ("max-nodata-above-1", ["--max-nodata", "1.5"], ["--max-nodata", "'1.5'", "[0, 1]"]),
    ("max-nodata-nan", ["--max-nodata", "nan"], ["--max-nodata", "'nan'"]),
    ("workers-negative", ["--workers", "-1"], ["--workers", "'-1'", "0"]),
    ("workers-and-scheduler", ["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"],
     ["--scheduler", "not allowed with argument --workers"]),
    ("scheduler-garbage", ["--scheduler", "not an address"], ["--scheduler", "'not an address'"]),
    ("provider-unknown", ["--provider", "usgs"], ["--provider", "'usgs'"]),
    ("collection-empty", ["--collection", ""], ["--collection", "''"]),
    ("out-empty", ["--out", ""], ["--out", "''"]),
]


@pytest.mark.parametrize("options, words", [pytest.param(*c[1:], id=c[0]) for c in BAD_OPTIONS])
def test_bad_options_exit_2_with_one_line(tmp_path, options, words):
    code, err = _index(tmp_path, *options)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    missing = [w for w in words if w not in lines[0]]
    assert not missing, f"the line lacks {missing}: {lines[0]}"
    assert list(tmp_path.iterdir()) == []  # nothing written, here or as a relative path


def test_good_dates_and_boxes_are_taken():
    """What STAC accepts is accepted: open intervals, a year or month alone, RFC 3339 times, a box over
    the antimeridian (west > east)."""
    from geolesson.cli import parser

    for text in ("2023", "2023-07", "2023-07-01", "2023-06-01/2023-09-30", "../2023-09-30", "2023-06-01/..",
                 "2023-07-01T09:00:00Z", "2023-07-01T09:00:00+02:00/2023-07-02T00:00:00Z"):
        args = parser().parse_args([*INDEX, "x", "--datetime", text])
        assert args.datetime == text
    args = parser().parse_args([*INDEX, "x", "--bbox", "170", "-10", "-170", "10"])
    assert args.bbox == [170.0, -10.0, -170.0, 10.0]


def test_an_unreachable_scheduler_fails_in_bounded_time_with_one_line(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    code, err = _index(tmp_path, "--scheduler", f"tcp://127.0.0.1:{port}")
    seconds = time.perf_counter() - t0
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"tcp://127.0.0.1:{port}" in lines[0] and "Dask scheduler" in lines[0], err
    assert seconds < 30, f"{seconds:.0f} s to give up on a closed port"
    assert not (tmp_path / "idx").exists()


def test_a_pipe_closed_by_its_reader_ends_without_a_traceback(tmp_path):
    """`geolesson mirror status | head -1`: head leaves after one line."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    run = subprocess.run([sys.executable, "-m", "geolesson.cli", "mirror", "status"], stdout=write_end,
                         stderr=subprocess.PIPE, text=True, timeout=60,
                         env={**os.environ, "GEOLESSON_MIRROR_DIR": str(tmp_path / "home")})
    os.close(write_end)
    assert run.returncode == 1 and run.stderr == ""
