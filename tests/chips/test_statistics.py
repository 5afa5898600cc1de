"""geolesson.chips.statistics: per-chip counts of a band, for any integer dtype."""

from __future__ import annotations

import numpy as np

from geolesson import chips


def test_class_runs_and_counts_for_any_integer_dtype():
    assert chips.statistics._runs([10, 3, 9, 8, 1, 3]) == [(1, 1), (3, 3), (8, 10)]
    scl = np.random.default_rng(3).integers(0, 12, size=(300, 260))
    expected = None
    for dtype in ("uint8", "uint16", "int16", "int64"):
        strips = [(0, scl[:200].astype(dtype)), (200, scl[200:].astype(dtype))]
        counts = chips.statistics.chip_counts(iter(strips), 100, 300, 260, 3, 3, [1, 3, 8, 9, 10])
        if expected is None:
            blocks = [[scl[r * 100:(r + 1) * 100, c * 100:(c + 1) * 100] for c in range(3)] for r in range(3)]
            expected = ([[b.size for b in row] for row in blocks], [[(b == 0).sum() for b in row] for row in blocks],
                        [[np.isin(b, [1, 3, 8, 9, 10]).sum() for b in row] for row in blocks])
        for got, want in zip(counts, expected):
            np.testing.assert_array_equal(got, want)
