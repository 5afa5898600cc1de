"""geolesson.items: what is an item and what is not."""

from __future__ import annotations

import pytest

from geolesson import chips


def test_items_that_are_not_items():
    with pytest.raises(TypeError, match="not None .did a search or get_item find nothing"):
        chips.chip_index(None)
    with pytest.raises(TypeError, match="not 'S2A_35SNA'"):
        chips.chip_index("S2A_35SNA")
