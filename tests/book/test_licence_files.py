"""The repository says how it may be used and cited: LICENSE (code), LICENSE-text (text),
CITATION.cff (Citation File Format 1.2.0), consistent with pyproject.toml."""

from __future__ import annotations

import re
import tomllib

import yaml

from tests.fixtures import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# SPDX identifiers CFF accepts for this project (https://spdx.org/licenses/)
SPDX = {"BSD-3-Clause", "CC-BY-4.0"}


def test_code_licence_is_the_one_pyproject_declares():
    assert PYPROJECT["license"] == "BSD-3-Clause"
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("BSD 3-Clause License")
    assert "Neither the name of the copyright holder" in text  # clause 3, the one BSD-2 lacks


def test_text_licence_is_cc_by_4():
    text = (ROOT / "LICENSE-text").read_text()
    assert "Creative Commons Attribution 4.0 International" in text
    assert "https://creativecommons.org/licenses/by/4.0/legalcode" in text


def test_citation_file_is_cff_1_2_and_matches_the_package():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    # the keys CFF 1.2.0 requires, with the types its schema gives them
    assert cff["cff-version"] == "1.2.0"
    assert isinstance(cff["message"], str) and cff["message"]
    assert isinstance(cff["title"], str) and cff["title"]
    assert cff["authors"] and all({"name"} & set(a) or {"family-names"} & set(a) for a in cff["authors"])
    assert cff["type"] in ("software", "dataset")
    assert set(cff["license"]) == SPDX and PYPROJECT["license"] in cff["license"]
    assert str(cff["version"]) == PYPROJECT["version"]
    assert re.fullmatch(r"https://\S+", cff["repository-code"])
    for ref in cff.get("references", []):
        assert ref["type"] and ref["title"] and ref["authors"], ref
