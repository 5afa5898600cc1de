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
``concept_check``
    At least one quick concept check in the core (before ``## Exercises``): an exercise
    labelled ``check-...`` (multiple choice or predict-the-output, the Carpentries habit
    that checks the room in a minute), ``:nonumber:`` so the exercises keep their numbers,
    with a hidden gated solution like every exercise's. It does not count towards the three
    exercises.
``instructor_note``
    An "Instructor note" admonition (what to live-code and what to demonstrate, where the
    room stalls), which both renderings show; the instructor guide has the pitfalls.
``pacing``
    The core fits its stated teaching minutes, and at most 45: prose words ÷ 150 plus
    shown code lines ÷ 3 (``chapters.pace``), with the exercises and the optional
    ``Going further`` sections (which the schedules skip) left out.
``try_it_live``
    A "Try it live" heading.
``figures``
    A figure is shown by the code cell that draws it (so it shows in JupyterLab too), with
    MyST-NB's code-cell metadata ``mystnb: figure: {name, caption}`` and ``mystnb: image:
    alt`` (so the web page numbers and captions it): every such cell has a name, a caption
    and alt text (a phrase, not a file name); every ``{figure}`` directive has alt text and a
    caption; no ``{glue:figure}`` (glue does not render in JupyterLab); and no code cell draws
    a figure (``plt.subplots(``, ``plt.figure(``, ``.visualize(``) without that metadata,
    unless its output is removed. The rendered-site test checks the built pages as well
    (every image inside a captioned figure), the JupyterLab test the notebooks.
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
``code_line_width``
    Every line of a shown code cell fits the web page's code column: at most 79
    characters (a longer line is cut off at a 1280 px wide window).
``term_links``
    At least one ``{term}`` link, and every ``{term}`` target is a term of the glossary.
``public_api_only``
    Code cells import no private module (``geolesson._home``, any ``geolesson._x``): what a
    learner types must be the public API documented in the reference page.
``reference_names``
    Every ``geolesson`` name a chapter's code uses (``sources.open_client``,
    ``batching.ChipDataset``, ``from geolesson.chips import read_chip``) is documented on
    the API reference page: its module's ``automodule`` there lists it (``:members:`` takes
    the module's ``__all__``, else the public names defined in it), so the learner can look
    it up.
``reference_links``
    The first time a shown code cell uses a ``geolesson`` function or class, the prose
    around it (up to the next code cell) links to its entry on the reference page,
    ``[`sources.open_client`](#geolesson.sources.open_client)``, with a line on what it does
    with the library underneath. MyST resolves ``#geolesson...`` to the autodoc entry on the
    web page; in JupyterLab the link shows its text (the notebook is not the web site), and
    the Contextual Help panel (Ctrl+I) shows the same docstring the entry is made from.
``figure_size``
    Figures are drawn for the web page at the 100 dpi they are saved at: at a 1280 px
    window the text column is 688 px, a figure's padding leaves its image 672 px and a
    solution's dropdown 650 px. No ``figsize`` is wider than 6.3 in (``book/matplotlibrc``
    sets that default and text of 11 pt), so that with the 0.1 in margin the inline
    backend's tight bounding box adds on each side an image is at most 650 px wide and
    shown unscaled; and no font size is below 9 pt (``"x-small"``, ``"xx-small"`` or a
    number under 9), so no text is below 9 pt on the page. The book test checks the widths
    of the built PNGs, the rendered-site test that each is shown at its own width.
``computed_prose``
    Numbers computed by code reach the prose through ``{eval}`` roles, which both renderings
    evaluate (MyST-NB's inline execution on the web, jupyterlab-myst in JupyterLab): no
    ``{glue...}`` role or directive and no ``glue(`` call is left (JupyterLab shows glue
    roles as raw text), every ``{eval}`` holds one Python expression (no ``;``), as
    ``_config.yml``'s ``eval_regex`` admits, whose names a cell above computes (a caption's:
    its own cell or one above) and no cell below assigns again: JupyterLab's *Run All*
    queues all cells at once, and jupyterlab-myst often evaluates a sentence's roles after
    cells further down ran, so only a value that stays put shows the same in both.
``typed_comparisons``
    A comparison of two computed numbers is computed too: no comparing word typed between
    two ``{eval}`` roles of a sentence ("higher than", "fewer than", "the same as",
    "differs" (not "differs by N"), "3 times", ...): a phrase chosen by code (``geolesson.prose``) says what
    the numbers say on every build, a typed one only on the build it was written against.
    (A ratio computed into ``{eval}`` followed by "× as fast as" is computed, and passes.)
``prose_comments``
    No prose line starts with ``%``: MyST reads it as a comment and drops the line (a
    wrapped "50 % of ..." would lose its second half on the web page).
``notebook_markup``
    What jupyterlab-myst cannot resolve would show as a bare label in JupyterLab: a
    ``{ref}``/``{numref}`` without its own text points at a label of the same chapter
    (``(label)=`` or an exercise's ``:label:``), and ``{doc}`` always carries its own text.
    (``{term}`` links into the glossary show as their plain text there, so they are fine.)
``plumbing_collapsed``
    Code cells that the web page hides (tagged ``remove-input`` or ``hide-input``: the
    values for the prose, figure styling) are collapsed in JupyterLab too: cell metadata
    ``jupyter: {source_hidden: true}``. No cell is tagged ``remove-cell``: MyST-NB's inline
    execution would run it only with the next shown cell (after the prose below it), or
    never.
``solutions_collapsed``
    Each exercise has a ``###`` heading (its title, in both renderings). Its gated solution
    sits under a JupyterLab collapsible heading that is collapsed when the notebook opens:
    a markdown cell of its own (``+++ {"jp-MarkdownHeadingCollapsed": true}``) holding
    ``<h4 hidden>Solution</h4>`` (``hidden``: the web page shows its dropdown instead), then
    ``+++`` and the ``{solution-start}``; after the ``{solution-end}`` a ``+++`` and the next
    heading (the next exercise's or the next section's), which ends the collapsed part.
    JupyterLab keeps such a heading collapsed through *Run All* (it runs the cells under it),
    while it un-hides a cell's ``jupyter.outputs_hidden`` outputs whenever it runs the cell.

Chapters that do not meet a rule yet are listed in ``KNOWN_FAILING`` (none today): each is
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
    Pace,
    blocks,
    code_cells,
    code_lines,
    minutes,
    pace,
    toc_chapters,
)
from tests.fixtures import ROOT

GLOSSARY = ROOT / "book" / "glossary.md"
MAX_CELL_LINES = 20
MAX_LINE_CHARS = 88
MAX_SHOWN_LINE_CHARS = 79  # the web page's code column at a 1280 px window
MIN_EXERCISES = 3
MAX_CORE_MINUTES = 45
HIDDEN_INPUT_TAGS = {"remove-input", "hide-input", "remove-cell", "hide-cell"}
REMOVED_OUTPUT_TAGS = {"remove-output", "remove-cell"}

RULES = ("front_matter", "exercises", "concept_check", "instructor_note", "pacing",
         "try_it_live", "figures", "no_typed_ids_dates", "code_cell_size", "code_line_width",
         "term_links", "public_api_only", "reference_names", "reference_links", "figure_size", "computed_prose",
         "typed_comparisons", "prose_comments", "notebook_markup", "plumbing_collapsed",
         "solutions_collapsed")


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


CHECK_LABEL = "check-"


def check_exercises(text: str) -> list[str]:
    labels, problems = exercises(text)
    labels = [x for x in labels if not x.startswith(CHECK_LABEL)]  # concept checks apart
    if len(labels) < MIN_EXERCISES:
        problems.append(f"{len(labels)} exercises, at least {MIN_EXERCISES} wanted")
    return problems


def check_concept_check(text: str) -> list[str]:
    core = re.split(r"^## Exercises\s*$", text, maxsplit=1, flags=re.M)[0]
    checks = [b for b in blocks(core) if b.name == "exercise-start"
              and b.options.get("label", "").startswith(CHECK_LABEL)]
    if not checks:
        return [f"no concept check in the core (an exercise labelled {CHECK_LABEL}... before "
                "## Exercises, with a hidden solution)"]
    solutions = {b.argument: b for b in blocks(text) if b.name == "solution-start"}
    problems = [f"concept check {b.options['label']} is numbered with the exercises: add :nonumber:"
                for b in checks if "nonumber" not in b.options]
    for b in checks:
        solution = solutions.get(b.options["label"])
        if solution is None or "dropdown" not in solution.options.get("class", ""):
            problems.append(f"concept check {b.options['label']} has no hidden gated solution")
    return problems


def check_instructor_note(text: str) -> list[str]:
    notes = [b for b in blocks(text) if b.name == "admonition"
             and b.argument.lower().startswith("instructor note")]
    return [] if notes else ["no 'Instructor note' admonition"]


def check_pacing(text: str) -> list[str]:
    p, teaching = pace(text), minutes(text)[0]
    limit = min(teaching, MAX_CORE_MINUTES)
    if p.minutes <= limit:
        return []
    return [f"the core takes about {p.minutes:.0f} min ({p.words} words, {p.code_lines} code lines) "
            f"> {limit} min: move deeper material into a 'Going further' section"]


def check_try_it_live(text: str) -> list[str]:
    return [] if re.search(r"^#+ .*Try it live", text, re.M) else ["no 'Try it live' heading"]


FILE_NAME = re.compile(r"^\S+\.(png|jpe?g|svg|gif|pdf)$", re.I)
DRAWS_FIGURE = re.compile(r"\bplt\.(?:subplots|figure)\(|\.visualize\(")


def figure_cells(text: str) -> list[Block]:
    """Code cells that show a figure with MyST-NB's ``mystnb: figure`` metadata."""
    return [c for c in code_cells(text) if isinstance(c.meta.get("mystnb"), dict)
            and "figure" in c.meta["mystnb"]]


def figures(text: str) -> list[Block]:
    return [b for b in blocks(text) if b.name in ("figure", "glue:figure")] + figure_cells(text)


def _not_a_description(alt: str) -> bool:
    return len(alt.split()) < 3 or bool(FILE_NAME.match(alt))


def check_figures(text: str) -> list[str]:
    problems = []
    for b in blocks(text):
        if b.name == "glue:figure":
            problems.append(f"{{glue:figure}} at line {b.line}: JupyterLab cannot show it; show the "
                            "figure from the cell that draws it (mystnb: figure metadata)")
        if b.name == "figure":
            if _not_a_description(b.options.get("alt", "").strip()):
                problems.append(f"figure at line {b.line}: alt text is not a description")
            if not any(s.strip() for s in b.body):
                problems.append(f"figure at line {b.line} has no caption")
    for cell in figure_cells(text):
        mystnb = cell.meta["mystnb"]
        figure, image = mystnb.get("figure") or {}, mystnb.get("image") or {}
        if not str(figure.get("name", "")).strip():
            problems.append(f"figure cell at line {cell.line} has no name (mystnb: figure: name)")
        if not str(figure.get("caption", "")).strip():
            problems.append(f"figure cell at line {cell.line} has no caption")
        if cell.tags & REMOVED_OUTPUT_TAGS:
            problems.append(f"figure cell at line {cell.line} removes its output: the figure would "
                            "not show (drop remove-output)")
        if _not_a_description(str(image.get("alt", "")).strip()):
            problems.append(f"figure cell at line {cell.line}: alt text {image.get('alt')!r} is "
                            "not a description (mystnb: image: alt)")
    shown = {c.line for c in figure_cells(text)}
    for cell in code_cells(text):
        if cell.line not in shown and not (cell.tags & REMOVED_OUTPUT_TAGS) \
                and DRAWS_FIGURE.search("\n".join(cell.body)):
            problems.append(f"code cell at line {cell.line} draws a figure without caption or alt "
                            "text: give it mystnb: figure (name, caption) and image (alt) metadata")
    return problems


# a figure's image gets 650 px inside a solution's dropdown (672 px elsewhere); at the
# 100 dpi of book/matplotlibrc 6.3 in plus the tight bounding box's 0.1 in margins is 650 px
MAX_FIGURE_INCHES = 6.3
MIN_FONT_POINTS = 9.0
FIGSIZE = re.compile(r"\bfigsize\s*=\s*\(\s*([\d.]+)\s*,")
SMALL_FONT = re.compile(r"\b(?:fontsize|labelsize)\s*=\s*(?:\"(x+-small)\"|'(x+-small)'|([\d.]+)\b)")


def check_figure_size(text: str) -> list[str]:
    problems = []
    for cell in code_cells(text):
        code = "\n".join(cell.body)
        for m in FIGSIZE.finditer(code):
            if float(m.group(1)) > MAX_FIGURE_INCHES:
                problems.append(f"code cell at line {cell.line}: figsize {m.group(1)} in wide, more than "
                                f"the page's {MAX_FIGURE_INCHES:g} in: the page would shrink it and its text")
        for m in SMALL_FONT.finditer(code):
            named, number = m.group(1) or m.group(2), m.group(3)
            if named or float(number) < MIN_FONT_POINTS:
                problems.append(f"code cell at line {cell.line}: font size {named or number} is below "
                                f"{MIN_FONT_POINTS:g} pt (use \"small\", 9.2 pt, or larger)")
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


def check_code_line_width(text: str) -> list[str]:
    return [f"code cell at line {cell.line}, line {k + 1}: {len(s)} characters > "
            f"{MAX_SHOWN_LINE_CHARS}: {s.strip()[:50]!r}"
            for cell in filter(shown, code_cells(text)) for k, s in enumerate(code_lines(cell))
            if len(s) > MAX_SHOWN_LINE_CHARS]


TERM = re.compile(r"\{term\}`([^`]+)`")


def term_targets(text: str) -> list[str]:
    """Targets of the {term} links in the prose (not in code cells)."""
    code = {i for c in code_cells(text) for i in c.span}
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


REFERENCE = ROOT / "book" / "reference.md"


def documented_names(reference: Path = REFERENCE) -> set[str]:
    """Dotted names (``geolesson.sources.open_client``) that the reference page's autodoc
    documents: per ``automodule``, its ``:members:`` list, or with a bare ``:members:`` the
    module's ``__all__`` (else the public names defined in it)."""
    import importlib

    names = set()
    text = reference.read_text()
    for m in re.finditer(r"^\.\. automodule:: (\S+)\n((?:   :[\w-]+:.*\n)*)", text, re.M):
        module_name, options = m.group(1), m.group(2)
        names.add(module_name)
        members = re.search(r"^   :members:(.*)$", options, re.M)
        if members is None:
            continue
        listed = [x.strip() for x in members.group(1).split(",") if x.strip()]
        if not listed:
            module = importlib.import_module(module_name)
            listed = list(getattr(module, "__all__", None) or
                          [k for k, v in vars(module).items() if not k.startswith("_")
                           and getattr(v, "__module__", module_name) == module_name])
        names |= {f"{module_name}.{x}" for x in listed}
    return names


def geolesson_names(code: str) -> set[str]:
    """The dotted ``geolesson`` names a cell's code uses: ``alias.attr`` of an imported
    module, and names imported from a module."""
    import ast

    try:
        tree = ast.parse("\n".join(s for s in code.splitlines() if not s.lstrip().startswith(("%", "!"))))
    except SyntaxError:
        return set()
    return _geolesson_names(tree, {})


def _geolesson_names(tree, aliases: dict[str, str]) -> set[str]:
    import ast
    import importlib

    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("geolesson"):
            for a in node.names:
                full = f"{node.module}.{a.name}"
                try:
                    importlib.import_module(full)
                    aliases[a.asname or a.name] = full  # a module
                except ImportError:
                    used.add(full)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("geolesson."):
                    aliases[a.asname or a.name] = a.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            used.add(f"{aliases[node.value.id]}.{node.attr}")
    return used


def check_reference_names(text: str) -> list[str]:
    import ast

    documented, aliases, used = documented_names(), {}, set()
    for cell in code_cells(text):  # in order: an alias is bound by a cell above its use
        code = "\n".join(s for s in cell.body if not s.lstrip().startswith(("%", "!")))
        try:
            used |= _geolesson_names(ast.parse(code), aliases)
        except SyntaxError:
            continue
    # a name re-exported by another module (sources.configure_gdal is gdal's) is documented
    # where it is defined: the same object
    documented_objects = {id(obj) for obj in map(_resolve, documented) if obj is not None}
    return [f"{name} is used in the chapter's code but not documented on the reference page"
            for name in sorted(used - documented)
            if (obj := _resolve(name)) is None or id(obj) not in documented_objects]


API_LINK = re.compile(r"\]\(#(geolesson(?:\.\w+)+)\)")


def first_uses(text: str) -> dict[str, int]:
    """The ``geolesson`` functions and classes that shown code cells use: the first line of
    the first cell that uses each."""
    import ast
    import inspect

    aliases: dict[str, str] = {}
    first: dict[str, int] = {}
    for cell in code_cells(text):  # in order: an alias is bound by a cell above its use
        code = "\n".join(s for s in cell.body if not s.lstrip().startswith(("%", "!")))
        try:
            names = _geolesson_names(ast.parse(code), aliases)
        except SyntaxError:
            continue
        if shown(cell):
            for name in sorted(names):
                obj = _resolve(name)
                if inspect.isfunction(obj) or inspect.isclass(obj):
                    first.setdefault(name, cell.line)
    return first


def check_reference_links(text: str) -> list[str]:
    starts = [c.line for c in code_cells(text)]
    prose = prose_lines(text)
    problems = []
    # the entry of a re-exported name may be where it is defined or under another documented
    # name of the same object (stitching.overlap_grid is documented as chips.overlap_grid)
    entries: dict[int, set[str]] = {}
    for documented in documented_names():
        entries.setdefault(id(_resolve(documented)), set()).add(documented)
    for name, line in first_uses(text).items():
        obj = _resolve(name)
        targets = {name, f"{obj.__module__}.{obj.__qualname__}"} | entries.get(id(obj), set())
        end = next((start for start in starts if start > line), len(text.splitlines()) + 1)
        linked = {m.group(1) for i, s in prose if i < end for m in API_LINK.finditer(s)}
        if not targets & linked:
            problems.append(f"{name} is first used in the code cell at line {line}, but the prose up to "
                            f"the next code cell does not link to it: [`...`](#{name})")
    return problems


def _resolve(dotted: str):
    """The object a dotted ``geolesson`` name names, or None."""
    import importlib

    module_name, _, attr = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError):
        return None


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of the markdown outside code cells."""
    code = {i for c in code_cells(text) for i in c.span}
    return [(i, s) for i, s in enumerate(text.splitlines(), 1) if i not in code]


EVAL = re.compile(r"\{eval\}`([^`]*)`")
GLUE = re.compile(r"\{glue(?::\w+)?\}|^\s*glue\(|\bmyst_nb import glue\b", re.M)


def eval_expressions(text: str) -> list[str]:
    """The expressions of the {eval} roles in the prose, in order."""
    return [e for _, s in prose_lines(text) for e in EVAL.findall(s)]


def _bound_names(code: str) -> set[str]:
    """Names a cell's code binds at its top level (assignments, imports, defs, loops)."""
    import ast

    try:
        tree = ast.parse("\n".join(s for s in code.splitlines() if not s.lstrip().startswith(("%", "!"))))
    except SyntaxError:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def eval_names(expression: str) -> set[str]:
    import ast

    tree = ast.parse(expression.strip(), mode="eval")
    inner = {n.id for node in ast.walk(tree) if isinstance(node, ast.comprehension)
             for n in ast.walk(node.target) if isinstance(n, ast.Name)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - inner


def check_computed_prose(text: str) -> list[str]:
    import builtins

    problems = [f"line {i}: glue ({m.group(0).strip()}): JupyterLab shows glue roles as raw "
                "text; compute the value in a cell and show it with {eval}"
                for i, s in enumerate(text.splitlines(), 1) if (m := GLUE.search(s))]
    # walk the page in order: an {eval} sees only what the cells above it computed (both
    # renderings evaluate it when they reach it: MyST-NB inline, JupyterLab's Run All)
    cells = {c.line: c for c in code_cells(text)}
    bound_below = {line: set().union(*[_bound_names("\n".join(c.body)) for k, c in cells.items() if k > line])
                   for line in [0, *cells]}
    defined, skip_to, last_cell = set(dir(builtins)), 0, 0
    for i, line in enumerate(text.splitlines(), 1):
        evals = EVAL.findall(line)
        if i in cells:
            last_cell = i
            defined |= _bound_names("\n".join(cells[i].body))
            skip_to = cells[i].end
            # a figure's caption is rendered once its cell has run
            caption = ((cells[i].meta.get("mystnb") or {}).get("figure") or {}).get("caption", "")
            evals = EVAL.findall(str(caption))
        elif i <= skip_to:
            continue
        for e in evals:
            if not e.strip() or ";" in e:
                problems.append(f"line {i}: {{eval}}`{e}`: one expression, no statement")
                continue
            try:
                unknown = eval_names(e) - defined
            except SyntaxError:
                problems.append(f"line {i}: {{eval}}`{e}` is not a Python expression")
                continue
            if unknown:
                problems.append(f"line {i}: {{eval}}`{e}` uses {sorted(unknown)} before a cell "
                                "above computes it")
            # JupyterLab's Run All queues every cell at once and jupyterlab-myst asks for a
            # markdown cell's values when it gets to it: often after cells further down ran.
            # A name the prose shows must keep its value to the end of the chapter.
            rebound = eval_names(e) & bound_below[last_cell]
            if rebound:
                problems.append(f"line {i}: {{eval}}`{e}` shows {sorted(rebound)}, which a cell "
                                "further down assigns again (JupyterLab may show that later value)")
    return problems


COMPARING = re.compile(
    r"\b(?:higher|lower|faster|slower|larger|smaller|bigger|fewer|more|less|greater|better|worse)"
    r"\s+than\b|\bthe same as\b|\bas (?:fast|slow|large|small|many|much|high|low) as\b"
    r"|\bdiffers?\b(?! by)|\b\d+\s*times\b|\b(?:thousands|hundreds) of times\b", re.I)
NEAR_WORDS = 8  # a comparing word this close to a computed number on each side compares them


def check_typed_comparisons(text: str) -> list[str]:
    problems = []
    prose = "\n".join(s for _, s in prose_lines(text))
    for paragraph in re.split(r"\n\s*\n", prose):
        for sentence in re.split(r"(?<=[.!?])\s+", " ".join(paragraph.split())):
            marked = EVAL.sub(" \x00 ", sentence)  # each computed number one marker word
            for m in COMPARING.finditer(marked):
                before = marked[:m.start()].split()[-NEAR_WORDS:]
                after = marked[m.end():].split()[:NEAR_WORDS]
                ratio = before[-2:] == ["\x00", "×"]  # "{eval} × as fast as": computed
                if "\x00" in before and "\x00" in after and not ratio:
                    problems.append(f"typed {m.group(0)!r} between two computed numbers in "
                                    f"{EVAL.sub('N', sentence)[:120]!r}: compute the phrase "
                                    "(geolesson.prose.compare, times)")
    return problems


def check_prose_comments(text: str) -> list[str]:
    return [f"line {i}: starts with '%', which MyST drops as a comment: {s.strip()[:60]!r}"
            for i, s in prose_lines(text) if s.lstrip().startswith("%")]


XREF = re.compile(r"\{(ref|numref|doc)\}`([^`]+)`")


def chapter_labels(text: str) -> set[str]:
    """Labels a notebook can resolve by itself: ``(label)=`` targets and exercise labels."""
    labels = set(re.findall(r"^\(([\w:-]+)\)=\s*$", text, re.M))
    return labels | {b.options["label"] for b in blocks(text) if b.options.get("label")}


def check_notebook_markup(text: str) -> list[str]:
    labels, problems = chapter_labels(text), []
    for i, s in prose_lines(text):
        for role, target in XREF.findall(s):
            if re.search(r"<[^<>]+>\s*$", target):
                continue  # its own text: shown as such
            if role == "doc" or target not in labels:
                problems.append(f"line {i}: {{{role}}}`{target}` would show as a bare label in "
                                "JupyterLab: give it its own text (`text <target>`)")
    return problems


def check_plumbing_collapsed(text: str) -> list[str]:
    problems = [f"code cell at line {c.line} (tags {sorted(c.tags)}) is not collapsed in JupyterLab: "
                "add `jupyter: {source_hidden: true}`" for c in code_cells(text)
                if c.tags & HIDDEN_INPUT_TAGS and not (c.meta.get("jupyter") or {}).get("source_hidden")]
    # MyST-NB's inline execution runs a cell when the page reaches it; a removed cell is never
    # reached, so it would run only with the next shown cell: after the prose below it (whose
    # {eval} roles then fail), or never (a last clean-up cell)
    return problems + [f"code cell at line {c.line} is tagged remove-cell: use remove-input "
                       "(inline execution runs a removed cell late, or never)"
                       for c in code_cells(text) if "remove-cell" in c.tags]


SOLUTION_HEADING = '+++ {"jp-MarkdownHeadingCollapsed": true}\n\n<h4 hidden>Solution</h4>\n\n+++\n\n'


def check_solutions_collapsed(text: str) -> list[str]:
    problems = []
    for m in re.finditer(r"^```\{exercise-start\}[^\n]*\n:label: (\S+)", text, re.M):
        before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        if not re.match(r"^### \S", before):
            problems.append(f"exercise {m.group(1)} has no ### heading right above it (its title)")
    for m in re.finditer(r"^```\{solution-start\} (\S+)", text, re.M):
        if not text[:m.start()].endswith(SOLUTION_HEADING):
            problems.append(f"the solution of {m.group(1)} is not under a collapsed heading "
                            f"(the lines above it must be {SOLUTION_HEADING!r})")
        end = text.find("```{solution-end}\n```\n", m.end())
        after = text[end:].split("\n", 2)[2] if end >= 0 else ""
        if end < 0 or not re.match(r"\n\+\+\+\n\n(?:\([\w:-]+\)=\n)?#{1,4} \S", after):
            problems.append(f"the solution of {m.group(1)} is not followed by `+++` and a heading "
                            "of level 1 to 4 (which ends the collapsed part in JupyterLab)")
    return problems


CHECKS = {name: globals()[f"check_{name}"] for name in RULES}


# --------------------------------------------------------------------------------------
# the tests
# --------------------------------------------------------------------------------------

def _params():
    for chapter in toc_chapters():
        for rule in RULES:
            marks = ()
            if rule in KNOWN_FAILING.get(chapter, set()):
                marks = pytest.mark.xfail(strict=True, reason=f"issue 20: {chapter} does not meet {rule} yet")
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

:::{admonition} Instructor note
:class: note

Live-code the search.
:::

An {term}`item` is one scene; {term}`assets <asset>` are its files. See {ref}`live` and
{ref}`the glossary <glossary>`.

```{code-cell} ipython3
---
mystnb:
  figure:
    name: fig-map
    caption: |
      The footprints of the items.
  image:
    alt: >-
      Footprints of the items over the area of interest
---
search = client.search(datetime="2023-07-28/2023-09-30", bbox=bbox)
fig, ax = plt.subplots()
```

```{code-cell} ipython3
---
tags: [remove-input]
jupyter: {source_hidden: true}
---
''' + "\n".join(f"x{i} = {i}  # a long hidden cell is fine {'.' * 80}" for i in range(30)) + '''
```

The search found {eval}`search.matched()` items, {eval}`f"{x1:.1f}"` per date.

### Check: lazy?

```{exercise-start}
:label: check-lazy
:nonumber:
```
Does `client.search` download items? 1. yes 2. no
```{exercise-end}
```

+++ {"jp-MarkdownHeadingCollapsed": true}

<h4 hidden>Solution</h4>

+++

```{solution-start} check-lazy
:class: dropdown
```
**2.** It builds a request.
```{solution-end}
```

+++

## Exercises
''' + "".join(f'''
### Thing {k}

```{{exercise-start}}
:label: ex-{k}
```
Do thing {k}.
```{{exercise-end}}
```

+++ {{"jp-MarkdownHeadingCollapsed": true}}

<h4 hidden>Solution</h4>

+++

```{{solution-start}} ex-{k}
:class: dropdown
```
```{{code-cell}} ipython3
print({k})
```
```{{solution-end}}
```

+++
''' for k in range(3)) + '''
(live)=
## Try it live

Set GEOLESSON_SOURCE=live; as in {numref}`ex-1`.
'''


def test_the_checker_passes_a_chapter_that_meets_the_contract():
    assert {rule: CHECKS[rule](GOOD) for rule in RULES} == {rule: [] for rule in RULES}
    assert len(figures(GOOD)) == 1 and len(exercises(GOOD)[0]) == 4  # 3 and a concept check
    assert term_targets(GOOD) == ["item", "asset"]
    assert eval_expressions(GOOD) == ["search.matched()", 'f"{x1:.1f}"']
    assert minutes(GOOD) == (30, 20)


@pytest.mark.parametrize("rule, old, new", [
    ("front_matter", "| **Teaching** | 30 min |", "| **Teaching** | half an hour |"),
    ("front_matter", "| **Keypoints** | A STAC API answers with metadata, not pixels. |", ""),
    ("exercises", "```{solution-start} ex-2\n:class: dropdown", "```{solution-start} ex-2\n:class: note"),
    ("exercises", "```{solution-start} ex-1\n", "```{solution-start} ex-9\n"),
    ("exercises", "```{exercise-start}\n:label: ex-0\n```", "```{exercise-start}\n```"),
    ("try_it_live", "## Try it live", "## Live mode"),
    ("instructor_note", ":::{admonition} Instructor note", ":::{admonition} Note"),
    ("concept_check", ":label: check-lazy\n:nonumber:\n", ":label: check-lazy\n"),
    ("concept_check", "```{solution-start} check-lazy\n:class: dropdown",
     "```{solution-start} check-lazy\n:class: note"),
    ("concept_check", "check-lazy", "lazy"),
    ("exercises", ":label: ex-2", ":label: check-2"),
    ("figures", "Footprints of the items over the area of interest", "fig-map.png"),
    ("figures", "    caption: |\n      The footprints of the items.\n", ""),
    ("figures", "    name: fig-map\n", ""),
    ("figures", "---\nmystnb:", "---\nmystnb_off:"),
    ("figures", "print(0)", "fig = plt.figure()"),
    ("figures", "---\nmystnb:\n  figure:", "---\ntags: [remove-output]\nmystnb:\n  figure:"),
    ("figures", "print(0)", "```\n\n```{glue:figure} fig-map\n:alt: a map of it\n\nA map.\n```\n```{code-cell}"),
    ("figure_size", "fig, ax = plt.subplots()", "fig, ax = plt.subplots(figsize=(12, 4))"),
    ("figure_size", "fig, ax = plt.subplots()", 'fig, ax = plt.subplots()\nax.set_title("x", fontsize="x-small")'),
    ("figure_size", "fig, ax = plt.subplots()", "fig, ax = plt.subplots()\nax.tick_params(labelsize=7)"),
    ("no_typed_ids_dates", "print(1)", 'item = client.get_item("S2A_35SNA_20230831_0_L2A")'),
    ("no_typed_ids_dates", "print(1)", 'cube.sel(time="2023-08-06")'),
    ("no_typed_ids_dates", "print(1)", "t = datetime(2023, 8, 6)"),
    ("no_typed_ids_dates", "print(1)", 'pd.Timestamp("2023-08-06T09:20:31Z")'),
    ("code_cell_size", "print(1)", "\n".join(f"x{i} = {i}" for i in range(21))),
    ("code_cell_size", "print(1)", "x = '" + "a" * 84 + "'"),
    ("code_line_width", "print(1)", "x = '" + "a" * 74 + "'"),
    ("typed_comparisons", "{eval}`f\"{x1:.1f}\"` per date.",
     "{eval}`f\"{x1:.1f}\"` per date, more than the {eval}`x0` of June."),
    ("typed_comparisons", "{eval}`f\"{x1:.1f}\"` per date.",
     "{eval}`f\"{x1:.1f}\"` per date: 3 times the {eval}`x0` of June."),
    ("prose_comments", "Set GEOLESSON_SOURCE=live; as in",
     "Set GEOLESSON_SOURCE=live for\n% of the cells; as in"),
    ("term_links", "{term}`assets <asset>`", "{term}`assets <asset-file>`"),
    ("term_links", "An {term}`item` is one scene; {term}`assets <asset>` are its files.", ""),
    ("reference_names", "print(1)", "from geolesson import sources\nsources.no_such_helper()"),
    ("reference_names", "print(1)", "from geolesson.chips import no_such_helper"),
    ("reference_links", "print(1)", 'from geolesson import sources\nclient = sources.open_client("earth-search")'),
    ("public_api_only", "print(1)", "from geolesson._home import data_dir"),
    ("public_api_only", "print(1)", "import geolesson._home as home"),
    ("public_api_only", "print(1)", "from geolesson import _home"),
    ("computed_prose", "{eval}`search.matched()`", "{glue:text}`n_found`"),
    ("computed_prose", "print(1)", 'glue("n_found", 3, display=False)'),
    ("computed_prose", "{eval}`search.matched()`", "{eval}`n = 3; n`"),
    ("computed_prose", "An {term}`item` is one", "An {eval}`x1` {term}`item` is one"),
    ("computed_prose", "print(1)", "x1 = 2"),
    ("notebook_markup", "{ref}`live`", "{ref}`instructors`"),
    ("notebook_markup", "{numref}`ex-1`", "{numref}`fig-map`"),
    ("notebook_markup", "{ref}`the glossary <glossary>`", "{doc}`glossary`"),
    ("plumbing_collapsed", "tags: [remove-input]\njupyter: {source_hidden: true}\n", "tags: [remove-input]\n"),
    ("plumbing_collapsed", "tags: [remove-input]\njupyter", "tags: [remove-cell]\njupyter"),
    ("solutions_collapsed", "### Thing 1\n\n", ""),
    ("solutions_collapsed", '+++ {"jp-MarkdownHeadingCollapsed": true}\n\n<h4 hidden>Solution</h4>\n\n+++\n\n', ""),
    ("solutions_collapsed", '{"jp-MarkdownHeadingCollapsed": true}', ""),
    ("solutions_collapsed", "```{solution-end}\n```\n\n+++\n\n### Thing 1", "```{solution-end}\n```\n\n### Thing 1"),
    ("solutions_collapsed", "+++\n\n(live)=\n## Try it live", "+++\n\nSome words.\n\n(live)=\n## Try it live"),
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
    assert check_code_line_width(GOOD.replace("print(1)", "x = '" + "a" * 73 + "'")) == []
    documented = "from geolesson import sources, gdal\nsources.open_client()\nsources.configure_gdal()"
    overlap = GOOD.replace("print(1)", "from geolesson import stitching\nstitching.overlap_grid(item)")
    link = "[`stitching.overlap_grid`](#geolesson.chips.{}) cuts it. An {{term}}`item` is one scene;"
    for entry, problems in (("overlap_grid", 0), ("read_chip", 1)):  # the same object's entry, another's
        page = overlap.replace("An {term}`item` is one scene;", link.format(entry))
        assert len(check_reference_links(page)) == problems
    assert check_reference_names(GOOD.replace("print(1)", documented)) == []
    computed = "{eval}`x0` per date, {eval}`prose.compare(x0, x1)` the {eval}`x1` of June."
    assert check_typed_comparisons(GOOD.replace("per date.", computed)) == []
    far = "{eval}`x0` items. We read many, one after another, and each costs more than one request."
    assert check_typed_comparisons(GOOD.replace("{eval}`search.matched()` items", far)) == []
    assert check_prose_comments(GOOD.replace("Set GEOLESSON", "Set\n  50 % GEOLESSON")) == []


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
        "core minutes (estimate)": round(pace(text).minutes),
        "teaching minutes (stated)": minutes(text)[0],
        "failing rules": [r for r in RULES if CHECKS[r](text)],
    }


def test_a_code_cells_options_do_not_turn_its_last_lines_into_prose():
    code = "\n".join(f"value_{i} = {i}" for i in range(4))
    plain = f"Some words here.\n\n```{{code-cell}} ipython3\n{code}\n```\n"
    tagged = plain.replace("ipython3\n", "ipython3\n---\ntags: [hide-output]\n---\n")
    assert pace(tagged) == pace(plain) == Pace(words=3, code_lines=4, minutes=3 / 150 + 4 / 3)


if __name__ == "__main__":
    for ch in toc_chapters():
        print(ch, numbers(ch))
    sys.exit(0)
