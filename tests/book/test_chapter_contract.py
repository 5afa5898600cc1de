"""The chapter contract of DESIGN.md, checked on the source of every chapter.

Every page of the numbered "Chapters" part of ``_toc.yml`` is read as MyST markdown and
checked rule by rule (one test per chapter and rule):

``front_matter``
    The "Chapter at a glance" admonition has a table with the rows Teaching and Exercises
    ("<N> min") and non-empty Questions, Objectives and Keypoints.
``exercises``
    At least three exercises with a ``:label:``, each with a *gated* solution
    (``{solution-start} <label>`` ... ``{solution-end}``, so its code cells are executed in
    every build) hidden by default (``:class: dropdown``).
``try_it_live``
    A "Try it live" heading.
``figures``
    Every ``{figure}`` / ``{glue:figure}`` has alt text (a phrase, not a file name) and a
    caption, and no code cell shows a figure outside them (``plt.show()``, ``fig.show()``
    or ``display(fig...)`` in a cell whose output is not removed). The rendered-site test
    checks the built pages as well (every image inside a captioned figure).
``no_typed_ids_dates``
    No STAC item id and no single acquisition date typed into a code cell (solutions
    included): items are chosen by searches, so the cells run live too. Date *intervals*
    for searches (``"2023-07-28/2023-09-30"``, ``"../2023-07-18"``) are allowed.
``code_cell_size``
    Every *shown* code cell has at most 20 lines and lines of at most 88 characters.
    Shown = not tagged ``remove-input``, ``hide-input``, ``remove-cell`` or ``hide-cell``
    (solution cells count: the toggle shows them). Lines are counted from the first to
    the last non-blank line of the cell's code, blank lines in between included; the
    cell's option lines (``:tags:``, or a ``---`` block) are not code.
``term_links``
    At least one ``{term}`` link, and every ``{term}`` target is a term of the glossary.
``public_api_only``
    Code cells import no private module (``geolesson._home``, any ``geolesson._x``): what a
    learner types must be the public API documented in the reference page.

Chapters that do not meet a rule yet are listed in ``KNOWN_FAILING`` (issue 11): each is
an ``xfail(strict=True)``, so fixing a rule without deleting its entry fails the suite.
``python -m tests.book.test_chapter_contract`` prints each chapter's numbers.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests.book.chapters import (
    GLANCE_ROW,
    KNOWN_FAILING,
    Block,
    blocks,
    code_cells,
    code_lines,
    minutes,
    toc_chapters,
)
from tests.fixtures import ROOT

GLOSSARY = ROOT / "book" / "glossary.md"
MAX_CELL_LINES = 20
MAX_LINE_CHARS = 88
MIN_EXERCISES = 3
HIDDEN_INPUT_TAGS = {"remove-input", "hide-input", "remove-cell", "hide-cell"}
REMOVED_OUTPUT_TAGS = {"remove-output", "remove-cell"}

RULES = ("front_matter", "exercises", "try_it_live", "figures", "no_typed_ids_dates",
         "code_cell_size", "term_links", "public_api_only")


def shown(cell: Block) -> bool:
    return not (cell.tags & HIDDEN_INPUT_TAGS)


def glossary_terms(path: Path = GLOSSARY) -> set[str]:
    """The terms of the glossary page, lower case (Sphinx resolves {term} case-insensitively)."""
    terms = set()
    for b in blocks(path.read_text()):
        if b.name == "glossary":
            terms |= {s.strip().lower() for s in b.body if s.strip() and not s[0].isspace()}
    return terms


# --------------------------------------------------------------------------------------
# the rules: each returns a list of problems (empty = the rule holds)
# --------------------------------------------------------------------------------------


def check_front_matter(text: str) -> list[str]:
    glance = [b for b in blocks(text) if b.name == "admonition" and "at a glance" in b.argument.lower()]
    if not glance:
        return ["no 'Chapter at a glance' admonition"]
    rows = {m["key"].lower(): m["value"] for s in glance[0].body if (m := GLANCE_ROW.match(s))}
    problems = [f"{k}: '{rows.get(k, '')}' is not '<N> min'" for k in ("teaching", "exercises")
                if not re.fullmatch(r"\d+ min", rows.get(k, ""))]
    problems += [f"{k} is missing or empty" for k in ("questions", "objectives", "keypoints")
                 if len(rows.get(k, "")) < 10]
    return problems


def exercises(text: str) -> tuple[list[str], list[str]]:
    """(labels of the exercises, problems with their solutions)."""
    bs = blocks(text)
    labels = [b.options.get("label", "") for b in bs if b.name in ("exercise-start", "exercise")]
    problems = [f"exercise at line {b.line} has no :label:" for b in bs
                if b.name in ("exercise-start", "exercise") and not b.options.get("label")]
    solutions = {b.argument: b for b in bs if b.name == "solution-start"}
    for label in filter(None, labels):
        sol = solutions.get(label)
        if sol is None:
            problems.append(f"exercise {label} has no gated solution ({{solution-start}} {label})")
        elif "dropdown" not in sol.options.get("class", ""):
            problems.append(f"the solution of {label} is not hidden (:class: dropdown)")
    n_start = sum(b.name == "solution-start" for b in bs)
    if n_start != sum(s.strip().startswith(("```{solution-end}", ":::{solution-end}"))
                      for s in text.splitlines()):
        problems.append("{solution-start} and {solution-end} do not pair up")
    return [x for x in labels if x], problems


def check_exercises(text: str) -> list[str]:
    labels, problems = exercises(text)
    if len(labels) < MIN_EXERCISES:
        problems.append(f"{len(labels)} exercises, at least {MIN_EXERCISES} wanted")
    return problems


def check_try_it_live(text: str) -> list[str]:
    return [] if re.search(r"^#+ .*Try it live", text, re.M) else ["no 'Try it live' heading"]


FILE_NAME = re.compile(r"^\S+\.(png|jpe?g|svg|gif|pdf)$", re.I)
SHOWS_FIGURE = re.compile(r"\bplt\.show\(|\bfig\w*\.show\(|\bdisplay\(\s*fig")


def figures(text: str) -> list[Block]:
    return [b for b in blocks(text) if b.name in ("figure", "glue:figure")]


def check_figures(text: str) -> list[str]:
    problems = []
    for b in figures(text):
        alt = b.options.get("alt", "").strip()
        if len(alt.split()) < 3 or FILE_NAME.match(alt):
            problems.append(f"figure at line {b.line}: alt text {alt!r} is not a description")
        if not any(s.strip() for s in b.body):
            problems.append(f"figure at line {b.line} has no caption")
    for cell in code_cells(text):
        if not (cell.tags & REMOVED_OUTPUT_TAGS) and SHOWS_FIGURE.search("\n".join(cell.body)):
            problems.append(f"code cell at line {cell.line} shows a figure without caption or alt "
                            "text: glue it and show it with {glue:figure}")
    return problems


ITEM_ID = re.compile(
    r"\bS2[ABCD]_\d{2}[A-Z]{3}_\d{8}_\d+_L[12][AC]\b"      # Earth Search Sentinel-2
    r"|\bS2[ABCD]_MSIL[12][AC]_\d{8}T\d{6}"                 # Planetary Computer Sentinel-2
    r"|\bS1[ABCD]_(?:IW|EW|SM|WV)_\w+"                      # Sentinel-1
    r"|\bL[COTE]0\d_L[12]\w{2}_\d{6}_\d{8}")                # Landsat
ISO_DATE = re.compile(r"(?<![\d/.-])(?:19|20)\d{2}-[01]\d-[0-3]\d(?:T[\d:.]+Z?)?(?![\d/])")
DATE_CALL = re.compile(r"\b(?:datetime|date|Timestamp|datetime64)\(\s*(?:19|20)\d{2}\s*,")
# Dates of the event itself, not of an acquisition: the July 2023 fire on Rhodes (18-27 July;
# the scar is complete from 28 July). They are the same on the live services.
EVENT_DATES = {"2023-07-18", "2023-07-27", "2023-07-28"}


def check_no_typed_ids_dates(text: str) -> list[str]:
    problems = []
    for cell in code_cells(text):
        for k, line in enumerate(cell.body):
            typed = [("item id", m.group(0)) for m in ITEM_ID.finditer(line)]
            typed += [("date", m.group(0)) for m in ISO_DATE.finditer(line)
                      if m.group(0)[:10] not in EVENT_DATES]
            typed += [("date", m.group(0)) for m in DATE_CALL.finditer(line)]
            problems += [f"code cell at line {cell.line}, line {k + 1}: typed {what} {value!r}"
                         for what, value in typed]
    return problems


def check_code_cell_size(text: str) -> list[str]:
    problems = []
    for cell in filter(shown, code_cells(text)):
        lines = code_lines(cell)
        if len(lines) > MAX_CELL_LINES:
            problems.append(f"code cell at line {cell.line}: {len(lines)} lines > {MAX_CELL_LINES}")
        for k, s in enumerate(lines):
            if len(s) > MAX_LINE_CHARS:
                problems.append(f"code cell at line {cell.line}, line {k + 1}: {len(s)} characters "
                                f"> {MAX_LINE_CHARS}")
    return problems


TERM = re.compile(r"\{term\}`([^`]+)`")


def term_targets(text: str) -> list[str]:
    """Targets of the {term} links in the prose (not in code cells)."""
    code = {i for c in code_cells(text) for i in range(c.line, c.line + len(c.body) + 2)}
    prose = "\n".join(s for i, s in enumerate(text.splitlines(), 1) if i not in code)
    return [(m := re.search(r"<([^<>]+)>\s*$", t)) and m.group(1).strip() or t.strip()
            for t in TERM.findall(prose)]


def check_term_links(text: str) -> list[str]:
    targets = term_targets(text)
    if not targets:
        return ["no {term} link to the glossary"]
    known = glossary_terms()
    return [f"{{term}} target {t!r} is not a glossary term" for t in targets if t.lower() not in known]


PRIVATE_IMPORT = re.compile(r"^\s*(?:from\s+geolesson(?:\.\w+)*\._\w+|import\s+geolesson(?:\.\w+)*\._\w+"
                            r"|from\s+geolesson(?:\.\w+)*\s+import\s+(?:\(?\s*)?_\w+)")


def check_public_api_only(text: str) -> list[str]:
    return [f"code cell at line {cell.line}, line {k + 1}: private import {line.strip()!r}"
            for cell in code_cells(text) for k, line in enumerate(cell.body)
            if PRIVATE_IMPORT.search(line)]


CHECKS = {name: globals()[f"check_{name}"] for name in RULES}


# --------------------------------------------------------------------------------------
# the tests
# --------------------------------------------------------------------------------------

def _params():
    for chapter in toc_chapters():
        for rule in RULES:
            marks = ()
            if rule in KNOWN_FAILING.get(chapter, set()):
                marks = pytest.mark.xfail(strict=True, reason=f"issue 11: {chapter} does not meet {rule} yet")
            yield pytest.param(chapter, rule, marks=marks, id=f"{chapter.split('/')[-1]}-{rule}")


@pytest.mark.parametrize("chapter, rule", list(_params()))
def test_chapter_meets_the_contract(chapter, rule):
    text = (ROOT / f"{chapter}.md").read_text()
    problems = CHECKS[rule](text)
    assert not problems, f"{chapter}: " + "\n".join(problems)


def test_known_failing_names_only_chapters_and_rules_that_exist():
    chapters = set(toc_chapters())
    assert set(KNOWN_FAILING) <= chapters, set(KNOWN_FAILING) - chapters
    assert all(rules <= set(RULES) for rules in KNOWN_FAILING.values())


# The checker itself, on chapters made here: each rule must fail on a page that breaks it.

GOOD = '''
# A chapter

:::{admonition} Chapter at a glance
:class: tip

| | |
|---|---|
| **Teaching** | 30 min |
| **Exercises** | 20 min |
| **Questions** | Where are the scenes of my place? |
| **Objectives** | Search a STAC API by place and time. |
| **Keypoints** | A STAC API answers with metadata, not pixels. |
:::

An {term}`item` is one scene; {term}`assets <asset>` are its files.

```{code-cell} ipython3
search = client.search(datetime="2023-07-28/2023-09-30", bbox=bbox)
fig, ax = plt.subplots()
glue("fig-map", fig, display=False)
```

```{glue:figure} fig-map
:alt: Footprints of the items over the area of interest
:name: fig-map

The footprints of the items.
```

```{code-cell} ipython3
:tags: [remove-input]
''' + "\n".join(f"x{i} = {i}  # a long hidden cell is fine {'.' * 80}" for i in range(30)) + '''
```
''' + "".join(f'''
```{{exercise-start}}
:label: ex-{k}
```
Do thing {k}.
```{{exercise-end}}
```

```{{solution-start}} ex-{k}
:class: dropdown
```
```{{code-cell}} ipython3
print({k})
```
```{{solution-end}}
```
''' for k in range(3)) + '''
## Try it live

Set GEOLESSON_SOURCE=live.
'''


def test_the_checker_passes_a_chapter_that_meets_the_contract():
    assert {rule: CHECKS[rule](GOOD) for rule in RULES} == {rule: [] for rule in RULES}
    assert len(figures(GOOD)) == 1 and len(exercises(GOOD)[0]) == 3
    assert term_targets(GOOD) == ["item", "asset"]
    assert minutes(GOOD) == (30, 20)


@pytest.mark.parametrize("rule, old, new", [
    ("front_matter", "| **Teaching** | 30 min |", "| **Teaching** | half an hour |"),
    ("front_matter", "| **Keypoints** | A STAC API answers with metadata, not pixels. |", ""),
    ("exercises", "```{solution-start} ex-2\n:class: dropdown", "```{solution-start} ex-2\n:class: note"),
    ("exercises", "```{solution-start} ex-1\n", "```{solution-start} ex-9\n"),
    ("exercises", "```{exercise-start}\n:label: ex-0\n```", "```{exercise-start}\n```"),
    ("try_it_live", "## Try it live", "## Live mode"),
    ("figures", ":alt: Footprints of the items over the area of interest", ":alt: fig-map.png"),
    ("figures", "The footprints of the items.", ""),
    ("figures", 'glue("fig-map", fig, display=False)', "plt.show()"),
    ("no_typed_ids_dates", "print(1)", 'item = client.get_item("S2A_35SNA_20230831_0_L2A")'),
    ("no_typed_ids_dates", "print(1)", 'cube.sel(time="2023-08-06")'),
    ("no_typed_ids_dates", "print(1)", "t = datetime(2023, 8, 6)"),
    ("no_typed_ids_dates", "print(1)", 'pd.Timestamp("2023-08-06T09:20:31Z")'),
    ("code_cell_size", "print(1)", "\n".join(f"x{i} = {i}" for i in range(21))),
    ("code_cell_size", "print(1)", "x = '" + "a" * 84 + "'"),
    ("term_links", "{term}`assets <asset>`", "{term}`assets <asset-file>`"),
    ("term_links", "An {term}`item` is one scene; {term}`assets <asset>` are its files.", ""),
    ("public_api_only", "print(1)", "from geolesson._home import data_dir"),
    ("public_api_only", "print(1)", "import geolesson._home as home"),
    ("public_api_only", "print(1)", "from geolesson import _home"),
])
def test_the_checker_fails_a_chapter_that_breaks_a_rule(rule, old, new):
    assert old in GOOD
    bad = GOOD.replace(old, new, 1)
    assert CHECKS[rule](bad), f"{rule} passed a chapter with {new!r}"


def test_the_checker_counts_what_a_reader_sees():
    twenty = "\n".join(f"x{i} = {i}" for i in range(20))
    page = GOOD.replace("print(1)", "\n\n" + twenty + "\n\n")   # blank edges do not count
    assert check_code_cell_size(page) == []
    assert check_no_typed_ids_dates(GOOD.replace("print(1)", 'SEASON = "2023-06-01/2023-09-30"')) == []
    assert check_no_typed_ids_dates(GOOD.replace("print(1)", 'before = "../2023-07-18"')) == []
    assert check_public_api_only(GOOD.replace("print(1)", "from geolesson import sources")) == []
    fire = 'ax.axvspan(pd.Timestamp("2023-07-18"), pd.Timestamp("2023-07-27"))'
    assert check_no_typed_ids_dates(GOOD.replace("print(1)", fire)) == []


def numbers(chapter: str) -> dict:
    """What the contract counts in a chapter (the issue's closing note reports these)."""
    text = (ROOT / f"{chapter}.md").read_text()
    cells = [code_lines(c) for c in code_cells(text) if shown(c)]
    return {
        "shown code lines": sum(map(len, cells)),
        "shown cells": len(cells),
        "longest cell": max(map(len, cells), default=0),
        "longest line": max((len(s) for c in cells for s in c), default=0),
        "exercises": len(exercises(text)[0]),
        "figures": len(figures(text)),
        "term links": len(term_targets(text)),
        "failing rules": [r for r in RULES if CHECKS[r](text)],
    }


if __name__ == "__main__":
    for ch in toc_chapters():
        print(ch, numbers(ch))
    sys.exit(0)
