"""The batching tests' data: :func:`tests.fixtures.s1_scenes`, made once per module."""

from __future__ import annotations

import pytest

from tests.fixtures import s1_scenes


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """(items, arrays by item id, chip index) of four Sentinel-1-like scenes in two UTM zones."""
    return s1_scenes(tmp_path_factory.mktemp("s1"))
