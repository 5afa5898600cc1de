"""The book's chapters as the tests read them (the one MyST parser of the tests): the chapters
of ``_toc.yml``, fenced directives and code cells, the "at a glance" minutes, and the chapter
contract rules that chapters do not meet yet."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.fixtures import ROOT

# rules today's chapters do not meet yet (a strict xfail each): the fix deletes its entry.
KNOWN_FAILING: dict[str, set[str]] = {}


def toc_chapters(toc_path: Path = ROOT / "_toc.yml") -> list[str]:
    """The files of the numbered "Chapters" part of the table of contents, in order."""
    toc = yaml.safe_load(toc_path.read_text())
    parts = [p for p in toc.get("parts", []) if p.get("caption") == "Chapters"]
    assert len(parts) == 1, f"{toc_path} must have exactly one part captioned 'Chapters'"
    return [c["file"] for c in parts[0]["chapters"]]


@dataclass
class Block:
    """A fenced directive: its name, argument, options, body lines, first line number and
    the line number of its closing fence (both 1-based)."""

    name: str
    argument: str
    options: dict[str, str]
    body: list[str]
    line: int
    tags: set[str] = field(default_factory=set)
    meta: dict = field(default_factory=dict)  # the options as parsed (nested YAML kept)
    end: int = 0

    @property
    def span(self) -> range:
        """Its line numbers, from the opening fence to the closing one, options included."""
        return range(self.line, self.end + 1)


FENCE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:-]+)\}\s*(?P<arg>.*)$")


def _options(lines: list[str]) -> tuple[dict[str, str], list[str], dict]:
    """Split a directive's body into its options (``:key: value`` lines or a ``---`` YAML
    block at the top) and the rest; the options flat (as text) and as parsed."""
    if lines and lines[0].strip() == "---":
        end = next((i for i, s in enumerate(lines[1:], 1) if s.strip() == "---"), None)
        if end is not None:
            opts = yaml.safe_load("\n".join(lines[1:end])) or {}
            return ({str(k): str(v) if not isinstance(v, list) else ", ".join(map(str, v))
                     for k, v in opts.items()}, lines[end + 1:], opts)
    opts = {}
    i = 0
    while i < len(lines) and (m := re.match(r"^:([\w-]+):\s*(.*)$", lines[i])):
        opts[m.group(1)] = m.group(2).strip()
        i += 1
    return opts, lines[i:], dict(opts)


def _tags(opts: dict[str, str]) -> set[str]:
    raw = opts.get("tags", "")
    return {t.strip(" '\"") for t in raw.strip("[]").split(",") if t.strip(" '\"")}


def blocks(text: str) -> list[Block]:
    """Every fenced directive (code cells included), nested ones too, in document order."""
    lines = text.splitlines()
    found: list[Block] = []

    def scan(start: int, stop: int) -> None:
        i = start
        while i < stop:
            m = FENCE.match(lines[i])
            if not m:
                i += 1
                continue
            fence = m.group("fence")
            end = next((j for j in range(i + 1, stop) if lines[j].strip() == fence), stop)
            opts, body, meta = _options(lines[i + 1:end])
            found.append(Block(m.group("name"), m.group("arg").strip(), opts, body, i + 1,
                               _tags(opts), meta, end + 1))
            if m.group("name") != "code-cell":
                scan(i + 1, end)
            i = end + 1

    scan(0, len(lines))
    return found


def code_cells(text: str) -> list[Block]:
    return [b for b in blocks(text) if b.name == "code-cell"]


def code_lines(cell: Block) -> list[str]:
    """The cell's code from its first to its last non-blank line."""
    body = cell.body
    nonblank = [i for i, s in enumerate(body) if s.strip()]
    return body[nonblank[0]:nonblank[-1] + 1] if nonblank else []


GLANCE_ROW = re.compile(r"^\|\s*\*\*(?P<key>[A-Za-z]+)\*\*\s*\|\s*(?P<value>.*?)\s*\|\s*$")


def minutes(text: str) -> tuple[int, int]:
    """(teaching, exercise) minutes of a chapter's "at a glance" table."""
    glance = next(b for b in blocks(text) if b.name == "admonition" and "at a glance" in b.argument.lower())
    rows = {m["key"].lower(): m["value"] for s in glance.body if (m := GLANCE_ROW.match(s))}
    return int(rows["teaching"].split()[0]), int(rows["exercises"].split()[0])


# --------------------------------------------------------------------------------------
# pacing: how long the core of a chapter takes to teach (DESIGN.md, issue 20)
# --------------------------------------------------------------------------------------

WORDS_PER_MINUTE = 150      # prose an instructor explains
CODE_LINES_PER_MINUTE = 3   # shown code a learner types along
HIDDEN_INPUT_TAGS = {"remove-input", "hide-input", "remove-cell", "hide-cell"}
#: headings whose section is not core: the exercises, and optional deeper material
NOT_CORE = re.compile(r"^#{2,3} (?:Exercises|Going further)\b")
ROLE = re.compile(r"\{(\w+(?::\w+)?)\}`([^`]*)`")
MARKUP_LINE = re.compile(r"^(?:`{3,}|:{3,}|\+\+\+|<h4|:[\w-]+:|\([\w:-]+\)=$|---$|\|[-| ]*\|$)")


def _role_text(m: re.Match) -> str:
    """What a reader sees of a role: a computed number is one word, a link its text."""
    if m.group(1) == "eval":
        return "N"
    text = re.match(r"^(.*?)\s*<[^<>]+>\s*$", m.group(2), re.S)
    return text.group(1) if text else m.group(2)


def prose_words(line: str) -> int:
    return sum(1 for w in ROLE.sub(_role_text, line).split() if re.search(r"\w", w))


def core_lines(text: str) -> set[int]:
    """Line numbers (1-based) of the core: after the front matter and the "at a glance"
    box, outside the exercises and the "Going further" sections (to the next heading of
    the same or a higher level) and outside instructor notes."""
    lines = text.splitlines()
    start = 0
    if lines and lines[0] == "---":
        start = lines.index("---", 1) + 1
    glance = next((b for b in blocks(text) if b.name == "admonition"
                   and "at a glance" in b.argument.lower()), None)
    if glance is not None:
        start = max(start, glance.end)
    # an instructor note is for the instructor, not taught: not core
    notes = {i for b in blocks(text) if b.name == "admonition"
             and b.argument.lower().startswith("instructor note")
             for i in b.span}
    # a "# comment" line of a code cell is not a heading
    in_cell = {i for c in code_cells(text) for i in c.span}
    core, skip_level = set(), None
    for i, s in enumerate(lines, 1):
        heading = re.match(r"^(#{1,6}) ", s) if i not in in_cell else None
        if heading and skip_level is not None and len(heading[1]) <= skip_level:
            skip_level = None
        if heading and NOT_CORE.match(s):
            skip_level = len(s) - len(s.lstrip("#"))
        if i > start and skip_level is None and i not in notes:
            core.add(i)
    return core


@dataclass
class Pace:
    words: int        # prose words of the core
    code_lines: int   # shown code lines of the core
    minutes: float    # words / 150 + code lines / 3


def pace(text: str) -> Pace:
    """The teaching time of a chapter's core, estimated as in issue 20: prose words ÷ 150
    plus shown code lines ÷ 3 (hidden plumbing, exercises and "Going further" excluded)."""
    core = core_lines(text)
    cells = code_cells(text)
    in_cell = {i for c in cells for i in c.span}
    words = sum(prose_words(s) for i, s in enumerate(text.splitlines(), 1)
                if i in core and i not in in_cell and not MARKUP_LINE.match(s.strip()))
    code = sum(len(code_lines(c)) for c in cells
               if c.line in core and not (c.tags & HIDDEN_INPUT_TAGS))
    return Pace(words, code, words / WORDS_PER_MINUTE + code / CODE_LINES_PER_MINUTE)
