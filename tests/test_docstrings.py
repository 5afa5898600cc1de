"""Every public callable of the package, the mirror's included, is documented, and the teaching
helpers' items are typed.

Public: a module, class, function or method whose name has no leading underscore, in a
module of ``src/geolesson``. A docstring gives shapes, units and errors; this checks that
there is one, and that no ``item``/``items`` parameter of the teaching helpers (outside the
mirror, which writes items as dicts) is typed ``Any`` (``geolesson.items.ItemLike``,
``ItemsLike`` name what is taken).
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.fixtures import ROOT

PACKAGE = ROOT / "src" / "geolesson"
ITEM_PARAMETERS = {"item", "items", "items_or_search"}


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def teaching_modules() -> list[Path]:
    return [p for p in modules() if "mirror" not in p.relative_to(PACKAGE).parts]


def public_callables(path: Path):
    """(qualified name, node) of every public function, class and method of a module."""
    def walk(body, prefix):
        for node in body:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or node.name.startswith("_"):
                continue
            yield prefix + node.name, node
            if isinstance(node, ast.ClassDef):
                yield from walk(node.body, prefix + node.name + ".")

    yield from walk(ast.parse(path.read_text()).body, "")


def test_every_public_callable_has_a_docstring():
    missing = [f"{p.relative_to(PACKAGE)}:{name}" for p in modules()
               for name, node in public_callables(p) if not ast.get_docstring(node)]
    assert missing == []


def test_no_item_parameter_is_typed_any():
    untyped = [f"{p.relative_to(PACKAGE)}:{name}({a.arg})" for p in teaching_modules()
               for name, node in public_callables(p) if not isinstance(node, ast.ClassDef)
               for a in node.args.args + node.args.kwonlyargs
               if a.arg in ITEM_PARAMETERS and (a.annotation is None or "Any" in ast.unparse(a.annotation))]
    assert untyped == []


def test_the_checks_see_what_they_should():
    names = {name for p in teaching_modules() for name, _ in public_callables(p)}
    assert {"ItemGrid", "ItemGrid.from_item", "chip_index", "Confusion.iou", "main"} <= names
    mirror = {name for p in set(modules()) - set(teaching_modules()) for name, _ in public_callables(p)}
    assert {"Cluster.start", "create_app", "item_id", "Tile.transform", "S1Scenario.passes_of"} <= mirror
