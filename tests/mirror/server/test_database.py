"""PostgreSQL's log is moved aside when it grows past its limit, so restarts cannot fill the disk."""

from __future__ import annotations

from geolesson.mirror.server.database import rotate_log


def test_a_long_log_is_moved_aside_and_replaces_the_older_one(tmp_path):
    log = tmp_path / "postgres.log"
    assert not rotate_log(log, limit=100)  # no log yet: nothing to do
    log.write_text("x" * 100)
    assert not rotate_log(log, limit=100) and log.read_text() == "x" * 100  # at the limit: kept
    (tmp_path / "postgres.log.1").write_text("the oldest run")
    log.write_text("y" * 101)
    assert rotate_log(log, limit=100)
    assert not log.exists() and (tmp_path / "postgres.log.1").read_text() == "y" * 101
    assert sorted(p.name for p in tmp_path.iterdir()) == ["postgres.log.1"]
