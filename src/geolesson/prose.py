"""Words for the book's prose, chosen from the numbers a reader sees next to them.

A sentence that compares measured numbers ("higher than", "641 times", "the most") must say
what the printed numbers say, on every build and on every machine. The chapters compute
such phrases with these helpers instead of typing them, and compare numbers *as shown*:
rounded to the digits the page prints, so that two values that print the same are called
the same.
"""

from __future__ import annotations

import math

__all__ = ["compare", "times", "plural", "share_of"]

#: The default words of :func:`compare`: (greater, smaller, equal).
COMPARISON = ("higher than", "lower than", "the same as")


def compare(a: float, b: float, digits: int | None = None, rel_tol: float = 0.0,
            words: tuple[str, str, str] = COMPARISON) -> str:
    """How ``a`` compares with ``b``, in words: ``words[0]`` if greater, ``words[1]`` if
    smaller, ``words[2]`` if the two are the same as the reader sees them.

    Args:
        a: the number the sentence is about (any unit).
        b: the number it is compared with (the same unit).
        digits: compare ``round(a, digits)`` with ``round(b, digits)``, the values as a
            page that prints ``digits`` decimals shows them; None compares them unrounded.
        rel_tol: also call them the same when they differ by at most this fraction of the
            larger magnitude (0.05: within 5 %), for measurements that vary from run to run.
        words: the three phrases (greater, smaller, equal), e.g.
            ``("faster than", "slower than", "as fast as")``.

    Raises:
        ValueError: ``a`` or ``b`` is NaN, ``digits`` is negative or ``rel_tol`` is negative.
    """
    if math.isnan(a) or math.isnan(b):
        raise ValueError(f"compare: a NaN cannot be compared in words (a={a}, b={b})")
    if digits is not None and digits < 0:
        raise ValueError(f"compare: digits must be None or >= 0, not {digits}")
    if rel_tol < 0:
        raise ValueError(f"compare: rel_tol must be >= 0, not {rel_tol}")
    if digits is not None:
        a, b = round(a, digits), round(b, digits)
    if a == b or math.isclose(a, b, rel_tol=rel_tol, abs_tol=0.0):
        return words[2]
    return words[0] if a > b else words[1]


def times(ratio: float, digits: int = 0) -> str:
    """A ratio as a count of times, as printed: ``times(641.3)`` is ``"641 times"``,
    ``times(1.04, 1)`` is ``"1.0 times"``; thousands get separators (``"1,250 times"``).

    Raises:
        ValueError: ``ratio`` is NaN, infinite or negative, or ``digits`` is negative.
    """
    if not math.isfinite(ratio) or ratio < 0:
        raise ValueError(f"times: ratio must be a finite number >= 0, not {ratio}")
    if digits < 0:
        raise ValueError(f"times: digits must be >= 0, not {digits}")
    return f"{ratio:,.{digits}f} times"


def plural(n: int, singular: str, plural_form: str | None = None) -> str:
    """A count with its noun: ``plural(1, "date")`` is ``"1 date"``, ``plural(3, "date")``
    is ``"3 dates"``; ``plural_form`` for irregular nouns (``plural(2, "patch", "patches")``).
    """
    return f"{n} {singular if n == 1 else (plural_form or singular + 's')}"


def share_of(part: int, whole: int) -> str:
    """``part`` of ``whole`` as a fraction in words when it is a simple one ("half", "a
    quarter", "a third", "all"), else as a percentage (``"38 %"``): how the prose says what
    share of the pixels one band has of another.

    Raises:
        ValueError: ``whole`` is not positive, or ``part`` is negative or larger than ``whole``.
    """
    if whole <= 0 or part < 0 or part > whole:
        raise ValueError(f"share_of: need 0 <= part <= whole and whole > 0, not {part} of {whole}")
    if part == whole:
        return "all"
    names = {2: "half", 3: "a third", 4: "a quarter", 8: "an eighth", 16: "a sixteenth"}
    if part and whole % part == 0 and whole // part in names:
        return names[whole // part]
    return f"{100 * part / whole:.0f} %"
