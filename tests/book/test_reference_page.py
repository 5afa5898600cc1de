"""book/reference.md documents every public module of geolesson (the rendered page itself is
checked by tests/book/test_site.py; the book build with -n checks that its cross-references resolve)."""

from __future__ import annotations

import pkgutil
import re

import geolesson
from tests.fixtures import ROOT

# not the learners' API: the mirror (a separate leaf, driven by the `geolesson` command),
# the command line and the install self-test
NOT_LEARNER_API = ("geolesson.mirror", "geolesson.cli", "geolesson.check")


def public_modules() -> set[str]:
    names = {m.name for m in pkgutil.walk_packages(geolesson.__path__, "geolesson.")}
    return {n for n in names
            if not any(part.startswith("_") for part in n.split("."))
            and not n.startswith(NOT_LEARNER_API)}


def test_every_public_module_is_on_the_reference_page():
    documented = set(re.findall(r"^\.\. automodule:: (\S+)", (ROOT / "book" / "reference.md").read_text(), re.M))
    assert public_modules() <= documented, sorted(public_modules() - documented)
    assert documented <= public_modules(), sorted(documented - public_modules())  # no stale entry


def test_the_walk_finds_the_modules_it_should():
    mods = public_modules()
    assert {"geolesson.sources", "geolesson.chips", "geolesson.chips.index"} <= mods
    assert not {m for m in mods if "._" in m or m.startswith("geolesson.mirror")}
