"""Argument checks the helpers share: a ``ValueError`` (``TypeError`` for something that is
not the kind of object asked for) that names the argument, its value and what is allowed
(never a silent fix)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

_REAL = (int, float, np.integer, np.floating)


def _shown(value: Any) -> str:
    """``repr(value)``, cut to 80 characters (a learner's array or frame can be huge)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    """``value`` as an int if it is an integer (not a bool) >= ``minimum`` (and <= ``maximum``).

    Raises:
        ValueError: anything else (names ``name`` and the value).
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum \
            or (maximum is not None and value > maximum):
        allowed = f">= {minimum}" if maximum is None else f"in {minimum}..{maximum}"
        raise ValueError(f"{name} must be an integer {allowed}, not {_shown(value)}")
    return int(value)


def check_number(name: str, value: Any, *, minimum: float | None = None,
                 maximum: float | None = None, positive: bool = False) -> float:
    """``value`` as a float if it is a finite real number (not a bool) within the bounds:
    ``>= minimum``, ``<= maximum``, ``> 0`` where ``positive``.

    Raises:
        ValueError: anything else, NaN and infinity included (names ``name`` and the value).
    """
    ok = not isinstance(value, bool) and isinstance(value, _REAL) and math.isfinite(value)
    ok = ok and (minimum is None or value >= minimum) and (maximum is None or value <= maximum) \
        and (not positive or value > 0)
    if not ok:
        bounds = [b for b in ("> 0" if positive else None,
                              None if minimum is None else f">= {minimum:g}",
                              None if maximum is None else f"<= {maximum:g}") if b]
        raise ValueError(f"{name} must be a finite number{' ' + ' and '.join(bounds) if bounds else ''}, "
                         f"not {_shown(value)}")
    return float(value)


def check_fraction(name: str, value: Any) -> None:
    """Check a threshold such as ``max_nodata``: None or a number in [0, 1].

    Raises:
        ValueError: anything else (names ``name`` and the value).
    """
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, _REAL) or not 0 <= float(value) <= 1:
        raise ValueError(f"{name} must be None or a fraction in [0, 1], not {_shown(value)}")


def check_callable(name: str, value: Any, what: str) -> None:
    """Check that ``value`` can be called (``what`` says what it should be, e.g. ``"sample -> sample"``).

    Raises:
        TypeError: it cannot (names ``name`` and the value).
    """
    if not callable(value):
        raise TypeError(f"{name} must be a callable ({what}), not {_shown(value)}")


def check_columns(name: str, frame: Any, columns: Iterable[str], what: str = "a chip index") -> None:
    """Check that ``frame`` is a (Geo)DataFrame holding ``columns``.

    Raises:
        TypeError: ``frame`` is not a DataFrame (names ``name`` and its type).
        ValueError: columns are missing (names them and the columns it has).
    """
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be {what} (a pandas or geopandas DataFrame), not "
                        f"{type(frame).__name__}" + (f" {_shown(frame)}" if frame is None or
                                                     isinstance(frame, (str, int, float)) else ""))
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} must be {what}: it lacks the column(s) {missing} (its columns: "
                         f"{list(map(str, frame.columns))[:20]})")


def check_path(name: str, value: Any) -> Path:
    """``value`` as a ``Path`` if it is a str or ``os.PathLike`` naming something (not empty).

    Raises:
        TypeError: ``value`` is not a path (names ``name`` and the value).
        ValueError: an empty string.
    """
    if isinstance(value, bool) or not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (a str or pathlib.Path), not {_shown(value)}")
    if not os.fspath(value):
        raise ValueError(f"{name} must name a file or folder, not {_shown(value)}")
    return Path(value)


def finite_problem(name: str, array: np.ndarray) -> str | None:
    """None if every value of ``array`` is finite; else a sentence naming ``name`` and how many
    values are NaN or infinite (for the caller's error message)."""
    finite = np.isfinite(array)
    if finite.all():
        return None
    n_nan = int(np.isnan(array).sum())
    return (f"{name} holds {n_nan} NaN and {int((~finite).sum()) - n_nan} infinite value(s) "
            f"of {array.size}")
