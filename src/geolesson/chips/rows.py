"""A chip index row in whatever form it comes: its fields and its window.

A row of a chip index reaches the readers as a ``pandas.Series`` (``idx.iloc[0]``), a dict
(``idx.to_dict("records")``) or an ``itertuples()`` tuple; these read it alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from geolesson.grid import GridWindow


def row_field(row: Any, key: str) -> Any:
    """The value of column ``key`` of ``row`` (by key, else by attribute).

    Raises:
        KeyError: the row has no such field (names it).
    """
    try:
        return row[key]
    except (KeyError, TypeError, IndexError):
        value = getattr(row, key, None)
        if value is None:
            raise KeyError(f"the chip row has no {key!r} (is it a row of a chip index?)") from None
        return value


def row_get(row: Any, key: str) -> Any:
    """The value of column ``key`` of ``row``, or None where the row has no such field."""
    try:
        return row_field(row, key)
    except KeyError:
        return None


def row_window(row: Any) -> GridWindow:
    """The row's window on its item's grid: ``(row_off, col_off, height, width)`` as ints.

    Raises:
        KeyError: the row lacks one of the four columns.
    """
    return tuple(int(row_field(row, k)) for k in ("row_off", "col_off", "height", "width"))


def rows_list(rows: Any) -> list:
    """``rows`` as a list of rows: a (Geo)DataFrame's records, or the rows of any iterable."""
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):  # (Geo)DataFrame
        return rows.to_dict("records")
    return list(rows)


def asset_keys(assets: Any) -> tuple[str, ...]:
    """Asset keys as a tuple, in channel order: one key (a str) or an iterable of keys.

    Raises:
        TypeError: ``assets`` is neither a str nor an iterable of str (e.g. None).
        ValueError: no key at all.
    """
    if isinstance(assets, str):
        return (assets,)
    if not isinstance(assets, Iterable) or isinstance(assets, (bytes, Mapping)):
        raise TypeError(f"assets must be an asset key or a sequence of them, e.g. ('red', 'nir'), not {assets!r}")
    assets = tuple(assets)
    if not assets:
        raise ValueError("assets must name at least one asset, e.g. ('red', 'green', 'blue', 'nir')")
    odd = [a for a in assets if not isinstance(a, str)]
    if odd:
        raise TypeError(f"assets must be asset keys (str), e.g. ('red', 'nir'); {odd[0]!r} in {assets!r} is not")
    return assets
