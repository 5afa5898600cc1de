"""The package's import graph: layers imported one way, no private name across modules, the mirror a leaf.

Data flow one way (DESIGN.md): a module may import the modules of its own package and of the
layers before its own, never after. The offline mirror is a separate leaf: it imports only
``geolesson._home`` (where its state lives), and only the command-line tools import it; the
teaching helpers only ever see its URLs. No module imports another module's private name
(``from geolesson.x import _y`` or ``x._y``): what modules share is public and documented.

See the layers and who imports whom (a newcomer's map of the package)::

    python tests/test_imports.py            # this checkout's src/
    python tests/test_imports.py OTHER/src  # another checkout, e.g. an older commit's
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

#: The layers, first to last, each with the modules (or packages) in it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundations", ("geolesson._home", "geolesson._checks", "geolesson.http", "geolesson.gdal",
                     "geolesson.memory", "geolesson.session")),
    ("sources", ("geolesson.sources",)),
    ("items and their grids", ("geolesson.items", "geolesson.grid", "geolesson.select")),
    ("pixels", ("geolesson.cog", "geolesson.indices")),
    ("chips", ("geolesson.chips",)),
    ("batches", ("geolesson.batching",)),
    ("predictions", ("geolesson.model", "geolesson.stitching", "geolesson.evaluation")),
    ("pictures and words", ("geolesson.plot", "geolesson.prose")),
    ("tools", ("geolesson.cli", "geolesson.check")),
]
MIRROR = "geolesson.mirror"
#: what the mirror may import from outside itself, and who may import the mirror
MIRROR_IMPORTS = ("geolesson._home",)
MIRROR_USERS = ("geolesson.cli", "geolesson.check")


def module_name(path: Path, src: Path) -> str:
    name = ".".join(path.relative_to(src).with_suffix("").parts)
    return name.removesuffix(".__init__")


def modules(src: Path = SRC) -> dict[str, Path]:
    """Every module of the package under ``src``: dotted name -> file."""
    return {module_name(p, src): p for p in sorted((src / "geolesson").rglob("*.py"))}


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def package_of(name: str) -> str:
    """The unit a module belongs to: ``geolesson.chips.reads`` -> ``geolesson.chips``."""
    return ".".join(name.split(".")[:2])


def layer_of(name: str) -> int | None:
    """The index in :data:`LAYERS` of the module ``name`` (None: the mirror, or not placed)."""
    for i, (_, members) in enumerate(LAYERS):
        if any(_under(name, m) for m in members):
            return i
    return None


def imports(src: Path = SRC) -> list[tuple[str, str, str | None, int]]:
    """Every import of a package module by a package module: (importer, imported module,
    name taken from it or None, line). Also ``alias._name`` reaches into an imported module."""
    mods = modules(src)
    found = []
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        tree = ast.parse(path.read_text(), str(path))
        aliases: dict[str, str] = {}  # local name -> package module it is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if not _under(target, "geolesson"):
                    continue
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    if sub in mods:  # `from geolesson import chips`: a module, not a name
                        found.append((name, sub, None, node.lineno))
                        aliases[alias.asname or alias.name] = sub
                    else:
                        found.append((name, target, alias.name, node.lineno))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if _under(alias.name, "geolesson") and alias.name in mods:
                        found.append((name, alias.name, None, node.lineno))
                        if alias.asname:
                            aliases[alias.asname] = alias.name
        for node in ast.walk(tree):  # `chips.reads._field(...)`, `_stats._step(...)`
            if isinstance(node, ast.Attribute) and _private(node.attr):
                chain, value = [node.attr], node.value
                while isinstance(value, ast.Attribute):
                    chain.append(value.attr)
                    value = value.value
                if isinstance(value, ast.Name) and value.id in aliases:
                    target = aliases[value.id]
                    for part in reversed(chain[1:]):
                        if f"{target}.{part}" in mods:
                            target = f"{target}.{part}"
                    found.append((name, target, node.attr, node.lineno))
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_imports(src: Path = SRC) -> list[str]:
    """Private names one module takes from another: ``importer:line imports module._name``."""
    return [f"{a}:{line} imports {b}.{n}" for a, b, n, line in imports(src)
            if n is not None and _private(n) and b != a]


def layer_violations(src: Path = SRC) -> list[str]:
    """Imports against the one-way order, into the mirror, or out of it."""
    bad = []
    for a, b, line in sorted({(a, b, line) for a, b, _, line in imports(src)}):
        if package_of(a) == package_of(b):
            continue
        where = f"{a}:{line} imports {b}"
        if _under(a, MIRROR):
            if not any(_under(b, m) for m in MIRROR_IMPORTS):
                bad.append(f"{where}: the mirror imports only {', '.join(MIRROR_IMPORTS)}")
            continue
        if _under(b, MIRROR):
            if not any(_under(a, m) for m in MIRROR_USERS):
                bad.append(f"{where}: only {', '.join(MIRROR_USERS)} may use the mirror (a leaf)")
            continue
        la, lb = layer_of(a), layer_of(b)
        if la is None or lb is None:
            bad.append(f"{where}: {a if la is None else b} is in no layer of tests/test_imports.py")
        elif lb > la:
            bad.append(f"{where}: layer '{LAYERS[la][0]}' imports the later layer '{LAYERS[lb][0]}'")
    return bad


def unplaced(src: Path = SRC) -> list[str]:
    return [m for m in modules(src) if m != "geolesson" and not _under(m, MIRROR) and layer_of(m) is None]


def test_every_module_has_a_layer():
    assert unplaced() == []


def test_imports_follow_the_layers_and_the_mirror_is_a_leaf():
    assert layer_violations() == []


def test_no_module_imports_another_modules_private_names():
    assert private_imports() == []


def test_the_walk_sees_imports_and_private_reaches(tmp_path):
    """The checks above can fail: a private reach, a backward import and an import of the mirror are found."""
    pkg = tmp_path / "geolesson"
    (pkg / "chips").mkdir(parents=True)
    for f in ("__init__.py", "chips/__init__.py", "chips/grid.py", "sources.py"):
        (pkg / f).write_text("")
    (pkg / "mirror").mkdir()
    (pkg / "mirror" / "__init__.py").write_text("")
    (pkg / "chips" / "reads.py").write_text("from geolesson.chips.grid import _Grid\n")
    (pkg / "cog.py").write_text("from geolesson import chips\nchips.grid._epsg(1)\n")
    (pkg / "indices.py").write_text("import geolesson.mirror\n")
    assert private_imports(tmp_path) == ["geolesson.chips.reads:1 imports geolesson.chips.grid._Grid",
                                         "geolesson.cog:2 imports geolesson.chips.grid._epsg"]
    assert layer_violations(tmp_path) == [
        "geolesson.cog:1 imports geolesson.chips: layer 'pixels' imports the later layer 'chips'",
        "geolesson.cog:2 imports geolesson.chips.grid: layer 'pixels' imports the later layer 'chips'",
        "geolesson.indices:1 imports geolesson.mirror: only geolesson.cli, geolesson.check may use the "
        "mirror (a leaf)"]


def main(src: Path = SRC) -> int:
    """Print the layers with each module's imports of other units, then what breaks the rules."""
    edges: dict[str, set[str]] = defaultdict(set)
    for a, b, _, _ in imports(src):
        if package_of(a) != package_of(b):
            edges[package_of(a)].add(package_of(b))
    units = sorted({package_of(m) for m in modules(src)} - {"geolesson"})
    print(f"layers of {src / 'geolesson'} (a unit imports only units of its own or earlier layers):")
    for i, (title, _) in enumerate(LAYERS):
        members = [u for u in units if layer_of(u) == i]
        print(f"{i + 1}. {title}")
        for u in members:
            used = sorted(edges.get(u, ()))
            print(f"     {u:<24} <- {', '.join(x.removeprefix('geolesson.') for x in used) or '(nothing)'}")
    print(f"leaf: {MIRROR} <- {', '.join(sorted(edges.get(MIRROR, ()))) or '(nothing)'}; "
          f"used by {', '.join(sorted(u for u in units if MIRROR in edges.get(u, ()))) or 'nobody'}")
    problems = ([f"not in a layer: {m}" for m in unplaced(src)] + layer_violations(src)
                + private_imports(src))
    print(f"\n{len(private_imports(src))} private imports across modules, "
          f"{len(layer_violations(src))} imports against the layers")
    for p in problems:
        print(f"  {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else SRC))
