"""The book's chapters as the tests read them (the one MyST parser of the tests): the chapters
of ``_toc.yml``, fenced directives and code cells, the "at a glance" minutes, and the chapter
contract rules that chapters do not meet yet."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.fixtures import ROOT

# issue 11: rules today's chapters do not meet yet; h4b deletes an entry with the fix.
KNOWN_FAILING: dict[str, set[str]] = {
    # issue 20: shown code wrapped to the web page's 79-character code column, chapter by chapter
    **{f"book/{name}": {"code_line_width"} for name in (
        "01_search", "02_access_cogs", "03_dask_ndvi", "04_datacubes", "05_chipping",
        "06_batching", "07_predict")},
}


def toc_chapters(toc_path: Path = ROOT / "_toc.yml") -> list[str]:
    """The files of the numbered "Chapters" part of the table of contents, in order."""
    toc = yaml.safe_load(toc_path.read_text())
    parts = [p for p in toc.get("parts", []) if p.get("caption") == "Chapters"]
    assert len(parts) == 1, f"{toc_path} must have exactly one part captioned 'Chapters'"
    return [c["file"] for c in parts[0]["chapters"]]


@dataclass
class Block:
    """A fenced directive: its name, argument, options, body lines and first line number."""

    name: str
    argument: str
    options: dict[str, str]
    body: list[str]
    line: int
    tags: set[str] = field(default_factory=set)
    meta: dict = field(default_factory=dict)  # the options as parsed (nested YAML kept)


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
                               _tags(opts), meta))
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
