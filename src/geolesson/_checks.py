"""Argument checks the helpers share: a ``ValueError`` that names the argument, its value and
what is allowed (never a silent fix)."""

from __future__ import annotations

from typing import Any

import numpy as np


def check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int if it is an integer (not a bool) >= ``minimum``.

    Raises:
        ValueError: anything else (names ``name`` and the value).
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, not {value!r}")
    return int(value)


def check_fraction(name: str, value: Any) -> None:
    """Check a threshold such as ``max_nodata``: None or a number in [0, 1].

    Raises:
        ValueError: anything else (names ``name`` and the value).
    """
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not 0 <= float(value) <= 1:
        raise ValueError(f"{name} must be None or a fraction in [0, 1], not {value!r}")
