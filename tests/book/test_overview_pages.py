"""The pages around the chapters follow the table of contents: the intro's story, the summary's
recap, the 2-day schedule and the instructor guide's pitfalls name every chapter, and none
of them types how many chapters there are (a count goes stale when a chapter is added)."""

from __future__ import annotations

import re

from tests.book.chapters import toc_chapters
from tests.fixtures import ROOT

BOOK = ROOT / "book"
COUNT_WORDS = r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten)\s+(?:steps|chapters)\b"


def section(text: str, heading: str) -> str:
    """The text under the first heading that starts with ``heading``, to the next heading of
    the same or a higher level."""
    m = re.search(rf"^(#+) {re.escape(heading)}.*$", text, re.M)
    assert m, f"no heading {heading!r}"
    end = re.search(rf"^#{{1,{len(m[1])}}} ", text[m.end():], re.M)
    return text[m.end(): m.end() + end.start() if end else None]


def numbered_items(text: str) -> list[str]:
    return re.findall(r"^(\d+)\. ", text, re.M)


def test_the_intro_tells_one_step_per_chapter():
    story = section((BOOK / "intro.md").read_text(), "One story")
    assert numbered_items(story) == [str(i) for i in range(1, len(toc_chapters()) + 1)]


def test_the_summary_recaps_every_chapter_in_order():
    recap = section((BOOK / "summary.md").read_text(), "What the chapters built")
    docs = re.findall(r"^\d+\. \{doc\}`([\w-]+)`", recap, re.M)
    assert [f"book/{d}" for d in docs] == toc_chapters()


def test_the_2_day_schedule_teaches_every_chapter():
    schedule = section((BOOK / "instructors.md").read_text(), "2-day workshop")
    taught = {int(n) for n in re.findall(r"[Cc]hapter (\d+)", schedule)}
    assert taught == set(range(1, len(toc_chapters()) + 1)), taught
    assert "when that chapter is there" not in schedule


def test_the_guide_has_pitfalls_for_every_chapter():
    pitfalls = section((BOOK / "instructors.md").read_text(), "Pitfalls")
    chapters = {int(n) for n in re.findall(r"^### Chapter (\d+)", pitfalls, re.M)}
    assert chapters == set(range(1, len(toc_chapters()) + 1)), chapters


def test_no_page_types_how_many_chapters_there_are():
    for page in ("intro.md", "summary.md", "instructors.md", "setup.md"):
        text = (BOOK / page).read_text()
        assert not re.search(COUNT_WORDS, text, re.I), (page, re.search(COUNT_WORDS, text, re.I))
