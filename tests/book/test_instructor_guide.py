"""The instructor guide's times are the chapters' own: each row of its "Chapters at a glance"
table and the sum under it agree with the "at a glance" box of the chapter it names."""

from __future__ import annotations

import re

from tests.book.chapters import minutes, toc_chapters
from tests.fixtures import ROOT

GUIDE = (ROOT / "book" / "instructors.md").read_text()
ROW = re.compile(r"^\| \d+ \{doc\}`(?P<doc>[\w-]+)` \| (?P<teach>\d+) min \| (?P<ex>\d+) min \|", re.M)


def test_every_row_gives_its_chapters_minutes():
    rows = {f"book/{m['doc']}": (int(m["teach"]), int(m["ex"])) for m in ROW.finditer(GUIDE)}
    assert len(rows) >= 5, rows
    for chapter, (teach, ex) in rows.items():
        assert (teach, ex) == minutes((ROOT / f"{chapter}.md").read_text()), chapter


def test_the_sum_is_the_sum_of_the_rows():
    rows = [(int(m["teach"]), int(m["ex"])) for m in ROW.finditer(GUIDE)]
    m = re.search(r"sum to (\d+) minutes of teaching and (\d+) of exercises", GUIDE)
    assert m, "the guide states the chapters' total time"
    assert (int(m[1]), int(m[2])) == (sum(t for t, _ in rows), sum(e for _, e in rows))


def test_the_table_names_chapters_of_the_book():
    assert {f"book/{m['doc']}" for m in ROW.finditer(GUIDE)} <= set(toc_chapters())
