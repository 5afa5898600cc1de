"""The book builds and executes end to end against the mirror (the notebook test), offline."""

from __future__ import annotations

import re

import pytest

from tests.book.chapters import toc_chapters
from tests.fixtures import ROOT

HTML = ROOT / "_build" / "html"
CHAPTERS = toc_chapters()

# built_book (the book built once per session; returns the html folder) is in conftest.py


@pytest.mark.book
def test_every_page_is_rendered(built_book):
    for page in ["index", "book/intro", "book/setup", *CHAPTERS]:
        assert (built_book / f"{page}.html").is_file(), page


@pytest.mark.book
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapters_are_executed_with_figures_and_hidden_solutions(built_book, chapter):
    html = (built_book / f"{chapter}.html").read_text()
    assert len(re.findall(r"<img[^>]+src=\"[^\"]*_images/", html)) >= 2  # figures made by executed cells
    assert "Traceback" not in html
    assert html.count('class="exercise') >= 3
    assert html.count("dropdown") >= 3  # solutions hidden by default
    assert "SIMULATED" in html or "simulated" in html


@pytest.mark.book
def test_pages_need_no_internet(built_book):
    for page in built_book.rglob("*.html"):
        html = page.read_text()
        external = re.findall(r"<script[^>]+src=\"(https?://[^\"]+)\"", html)
        external += re.findall(r"<link[^>]+href=\"(https?://[^\"]+\.(?:css|js))\"", html)
        assert not external, (page, external)


@pytest.mark.book
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_numbers_in_prose_read_as_numbers(built_book, chapter):
    """A value an {eval} role puts into a sentence shows as a reader writes it: 36, not
    np.int64(36) (numpy 2 scalars' repr) or array(36)."""
    html = (built_book / f"{chapter}.html").read_text()
    values = re.findall(r'<span class="output text_plain">(.*?)</span>', html, re.S)
    assert values, "no computed value in the prose"
    raw = [v for v in values if re.search(r"\b(?:np\.\w+|array)\(", v)]
    assert not raw, raw


# what the web page gives a figure's image at a 1280 px window: 650 px inside a solution's
# dropdown (672 px elsewhere; the text column is 688 px). A wider image is scaled down, and
# its text below 9 pt (a 711 px figure's 9.2 pt tick labels show at 8.9 pt). book/matplotlibrc
# draws figures 6.3 in wide at 100 dpi, 650 px with the inline backend's tight bounding box
MAX_FIGURE_PX = 650


@pytest.mark.book
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_figures_are_drawn_at_the_page_width(built_book, chapter):
    """A figure wider than the text column is scaled down on the page, and its text with it
    (a 13 in figure's 11 pt labels show at 6 pt): every figure the chapter's cells drew fits."""
    from PIL import Image  # matplotlib's own dependency

    html = (built_book / f"{chapter}.html").read_text()
    widths = {}
    for src in re.findall(r'<img[^>]+src="\.\./(_images/[^"]+\.png)"', html):
        with Image.open(built_book / src) as image:
            widths[src] = image.width
    assert widths, "no figure"
    assert max(widths.values()) <= MAX_FIGURE_PX, {s: w for s, w in widths.items() if w > MAX_FIGURE_PX}


def test_every_chapter_removes_its_working_folder(book_build):
    """A chapter that writes files works in ``tempfile.mkdtemp(prefix="geolesson-...")`` and
    removes the folder in its last cell, so a learner who reruns it does not pile them up in
    /tmp (chapters 1 and 2 did not: over a hundred of each piled up). The build's own TMPDIR holds
    what the kernels left."""
    left = [name for name in book_build.temp_names if name.startswith("geolesson-")]
    assert left == [], left
    assert "dask-scratch-space" in book_build.temp_names  # the kernels did use the build's TMPDIR
