"""Scores of a binary map against the truth: confusion counts, IoU, precision, recall,
and the seam contrast of a stitched map along the lines where its chips meet.

Definitions (e.g. Everingham et al., "The PASCAL Visual Object Classes (VOC) Challenge",
IJCV 88, 2010, section 4.2 for IoU; precision and recall as in any text on binary
classification): over the pixels that are evaluated,

- TP: predicted and true; FP: predicted, not true; FN: true, not predicted; TN: neither;
- IoU (Jaccard index) = TP / (TP + FP + FN);
- precision = TP / (TP + FP) (of what the map calls burned, how much is);
- recall = TP / (TP + FN) (of what burned, how much the map finds).

A ratio whose denominator is 0 is NaN (undefined), never 0 or 1. Burned areas in hectares:
:func:`geolesson.indices.burned_area_ha`.

Data flow: a leaf (NumPy; pandas for a chip index's columns); it reads arrays and chip
offsets, not files.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from geolesson._checks import check_columns, check_int


class Confusion(NamedTuple):
    """Pixel counts of a binary map against the truth (ints)."""

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def iou(self) -> float:
        """Intersection over union (Jaccard index), TP / (TP + FP + FN), from 0 to 1 (NaN when all three are 0)."""
        return _ratio(self.tp, self.tp + self.fp + self.fn)

    @property
    def precision(self) -> float:
        """The share of what the map calls positive that is, TP / (TP + FP), from 0 to 1 (NaN when it calls nothing)."""
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        """The share of what is positive that the map finds, TP / (TP + FN), from 0 to 1 (NaN when nothing is)."""
        return _ratio(self.tp, self.tp + self.fn)

    def scores(self) -> dict[str, float]:
        """``{"iou", "precision", "recall"}`` as floats (NaN where undefined)."""
        return {"iou": self.iou, "precision": self.precision, "recall": self.recall}


def _ratio(a: int, b: int) -> float:
    return float(a) / float(b) if b else float("nan")


def _binary(name: str, x: Any) -> np.ndarray:
    a = np.asarray(getattr(x, "values", x))
    if a.dtype == bool:
        return a
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ValueError(f"{name} must be a boolean (or 0/1) array, not dtype {a.dtype}")
    bad = ~np.isin(a, (0, 1))
    if bad.any():
        raise ValueError(f"{name} must hold only 0/1 (or bool) values; it has "
                         f"{int(bad.sum())} other values, e.g. {a[bad].flat[0].item()!r} (threshold "
                         "probabilities first; mask NaN with valid=)")
    return a.astype(bool)


def confusion(predicted: Any, truth: Any, valid: Any = None) -> Confusion:
    """Confusion counts of a binary map against the truth, over the ``valid`` pixels.

    Args:
        predicted, truth: arrays (NumPy, xarray, any shape, the same for both) of bool or
            0/1 values.
        valid: None (every pixel), or a bool array of the same shape: only its True pixels
            are counted (e.g. the held-out area, or pixels with data).

    Returns:
        :class:`Confusion` (``.iou``, ``.precision``, ``.recall``, ``.scores()``).

    Raises:
        ValueError: shapes differ, or an array holds values other than 0/1/bool (NaN
            included: mask it with ``valid``).
    """
    p = _binary("predicted", predicted)
    t = _binary("truth", truth)
    if p.shape != t.shape:
        raise ValueError(f"predicted has shape {p.shape}, truth {t.shape}: they must be equal")
    if valid is not None:
        v = _binary("valid", valid)
        if v.shape != p.shape:
            raise ValueError(f"valid has shape {v.shape}, predicted {p.shape}: they must be equal")
        p, t = p[v], t[v]
    tp = int(np.count_nonzero(p & t))
    fp = int(np.count_nonzero(p & ~t))
    fn = int(np.count_nonzero(~p & t))
    return Confusion(tp, fp, fn, int(p.size) - tp - fp - fn)


def _not_whole(a: np.ndarray) -> np.ndarray:
    """The values of a numeric array that are not whole numbers (NaN and infinity included)."""
    return a[~np.isfinite(a) | (a != np.round(a))] if a.dtype.kind == "f" else a[:0]


def _seams(name: str, value: Any) -> np.ndarray:
    """Seam positions as int64, refusing anything that is not a flat list of whole numbers."""
    if value is None or isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise TypeError(f"{name} must be a list of column/row indices (whole numbers), not {value!r}")
    s = np.asarray(value)
    if s.dtype == bool or (s.dtype == object and any(isinstance(v, bool) for v in s.ravel())):
        raise TypeError(f"{name} must hold whole numbers, not bool: {value!r}")
    if s.size == 0:
        return np.zeros(0, dtype=np.int64)
    if s.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold whole numbers, not {value!r}")
    if s.ndim != 1:
        raise ValueError(f"{name} must be a flat (1-D) list of indices, not shape {s.shape}: {value!r}")
    odd = _not_whole(s)
    if odd.size:
        raise ValueError(f"{name} must hold whole column/row indices (a seam lies between two pixels); "
                         f"{odd[0].item()!r} in {value!r} is not one")
    return s.astype(np.int64)


def seam_contrast(image: Any, seams_x: Any, seams_y: Any = ()) -> float:
    """How much a stitched map jumps across chip boundaries, against how much it changes
    elsewhere: ``mean |step| across the seams / mean |step| between other neighbours``.

    A step is the absolute difference of horizontally (between columns ``x - 1`` and ``x``)
    or vertically adjacent pixels. ``seams_x`` are the columns where a chip starts (a seam
    lies between ``x - 1`` and ``x``), ``seams_y`` the rows. 1 means the seams are as smooth
    as the rest of the map; a map stitched from chips whose edges disagree scores above 1.
    NaN pixels (not covered) are left out.

    Args:
        image: a 2-D array ``(y, x)`` (e.g. one band of :meth:`~geolesson.stitching.Stitcher.result`).
        seams_x, seams_y: column / row indices in ``[1, width)`` / ``[1, height)``.

    Raises:
        TypeError: ``image`` is not a numeric array; ``seams_x`` or ``seams_y`` is not a
            sequence of whole numbers (None, a str, bools).
        ValueError: ``image`` not 2-D, a seam that is not a whole number (1.5 is not a
            column; 32.0 is), NaN, outside the allowed range, seams not a flat list, no seam
            given, or no finite step left to compare.
    """
    a = np.asarray(getattr(image, "values", image))
    if a.dtype.kind not in "biuf":
        raise TypeError("image must be a numeric 2-D array (y, x), not "
                        + (repr(image) if image is None else f"an array of dtype {a.dtype}"))
    a = a.astype(np.float64)
    if a.ndim != 2:
        raise ValueError(f"image must be 2-D (y, x), not shape {a.shape}")
    sx, sy = _seams("seams_x", seams_x), _seams("seams_y", seams_y)
    if sx.size + sy.size == 0:
        raise ValueError("seams_x and seams_y are both empty: give at least one seam")
    for name, s, n in (("seams_x", sx, a.shape[1]), ("seams_y", sy, a.shape[0])):
        if s.size and (s.min() < 1 or s.max() >= n):
            raise ValueError(f"{name} must lie in [1, {n}); got {s.min()}..{s.max()}")
    dx = np.abs(np.diff(a, axis=1))  # dx[:, x - 1]: between columns x - 1 and x
    dy = np.abs(np.diff(a, axis=0))
    on_x = np.zeros(dx.shape[1], bool)
    on_x[sx - 1] = True
    on_y = np.zeros(dy.shape[0], bool)
    on_y[sy - 1] = True
    seam = np.concatenate([dx[:, on_x].ravel(), dy[on_y].ravel()])
    rest = np.concatenate([dx[:, ~on_x].ravel(), dy[~on_y].ravel()])
    seam, rest = seam[np.isfinite(seam)], rest[np.isfinite(rest)]
    if seam.size == 0 or rest.size == 0 or rest.mean() == 0:
        raise ValueError("no finite, non-zero steps to compare (is the image constant or all NaN?)")
    return float(seam.mean() / rest.mean())


def seam_lines(chips: Any, shape: Any, crop: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Where the chips of a grid meet: the ``(seams_x, seams_y)`` of :func:`seam_contrast`.

    In an overlapping grid a chip's first column lies inside its left neighbour and the
    column after its last inside its right one, so chip starts and chip ends both are
    lines where the map may pass from one chip's prediction to another's. The seams are
    every ``col_off`` and every ``col_off + width`` (the first column after the chip), and
    likewise ``row_off`` / ``row_off + height``, inside the image (the image's own edges,
    0 and its width or height, are not seams). Without overlap starts and ends coincide:
    the multiples of the chip size. With ``crop`` (the centre crop of
    :class:`~geolesson.stitching.Stitcher`) each chip contributes only its centre: every
    interior start moves ``crop`` pixels in, every interior end ``crop`` pixels back.

    Args:
        chips: a chip index of the image's grid (``pandas.DataFrame`` with ``col_off``,
            ``row_off``, ``width``, ``height`` in pixels, e.g.
            :func:`~geolesson.chips.overlap_grid`).
        shape: ``(height, width)`` of the image in pixels (e.g. ``image.shape``).
        crop: pixels dropped from each interior side of every chip (>= 0), as given to
            the stitcher.

    Returns:
        ``(seams_x, seams_y)``: sorted, unique int64 column and row indices in
        ``[1, width)`` / ``[1, height)``; a seam at ``x`` lies between ``x - 1`` and ``x``.

    Raises:
        TypeError: ``chips`` is not a DataFrame.
        ValueError: a column missing; ``shape`` not two positive whole numbers; a chip
            that reaches outside the image; ``crop`` not an int >= 0, or one that leaves
            nothing of a chip; an offset or size that is not a whole number of pixels.
    """
    check_columns("chips", chips, ("col_off", "row_off", "width", "height"))
    if len(np.shape(shape)) != 1 or len(shape) != 2:
        raise ValueError(f"shape must be (height, width) of the image, not {shape!r}")
    height = check_int("shape[0] (height)", shape[0], 1)
    width = check_int("shape[1] (width)", shape[1], 1)
    crop = check_int("crop", crop, 0)
    lines = []
    for off, size, n, axis in (("col_off", "width", width, "x"),
                               ("row_off", "height", height, "y")):
        start = _pixels(chips, off)
        end = start + _pixels(chips, size)
        outside = (start < 0) | (end > n) | (end <= start)
        if outside.any():
            i = int(np.flatnonzero(outside)[0])
            raise ValueError(f"chips must lie inside the image ({n} pixels along {axis}): "
                             f"the chip in row {i} of chips has {off}={start[i]}, {size}="
                             f"{end[i] - start[i]}")
        if np.any(end - start <= 2 * crop):
            raise ValueError(f"crop={crop} leaves nothing of a chip of {size} "
                             f"{int((end - start).min())} pixels; allowed: crop < half of it")
        inner_start, inner_end = start[start > 0] + crop, end[end < n] - crop
        s = np.union1d(inner_start, inner_end)
        lines.append(s[(s > 0) & (s < n)])
    return lines[0], lines[1]


def _pixels(chips: Any, column: str) -> np.ndarray:
    """A chip index's column of pixel offsets or sizes as int64, refusing fractions (a
    chip starts on a pixel edge: 96.5 is not rounded to 96)."""
    a = np.asarray(chips[column])
    if a.dtype.kind == "f":
        odd = _not_whole(a)
        if odd.size:
            raise ValueError(f"chips[{column!r}] must hold whole numbers of pixels; "
                             f"{odd[0].item()!r} is not one")
    elif a.dtype.kind not in "iu":
        raise ValueError(f"chips[{column!r}] must hold whole numbers of pixels, not dtype "
                         f"{a.dtype}")
    return a.astype(np.int64)
