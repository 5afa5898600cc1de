"""Position-anchored noise for the mirror's simulations.

Every random field is a function of the absolute position on a 10 m grid (and a seed and a
key), never of the array it is computed into: a crop, a whole tile or a strip of rows of either
shows the same values where they overlap, element for element.
"""

from __future__ import annotations

import numpy as np
from scipy import special

Y_REF = 10_000_000.0  # metres: rows are counted southwards from this northing


def position_hash(seed: int, key: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """splitmix64 of (seed, key, i, j): uniform uint64, broadcast over i and j."""
    with np.errstate(over="ignore"):
        h = (np.asarray(i, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ (
            np.asarray(j, dtype=np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F))
        h ^= np.uint64((seed * 1_000_003 + key * 7919) & 0xFFFFFFFFFFFF)
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return h


def _normal(h: np.ndarray) -> np.ndarray:
    u = ((h >> np.uint64(11)).astype(np.float64) + 0.5) / float(2**53)
    return special.ndtri(u).astype("float32")


_w = np.linspace(0, 1, 100_001)
_s = _w * _w * (3 - 2 * _w)
_VALUE_NOISE_STD = float(np.mean((1 - _s) ** 2 + _s**2))  # per axis; 2-D std is this (sqrt of its square)


def value_noise(seed: int, key: int, rows: np.ndarray, cols: np.ndarray, spacing: float) -> np.ndarray:
    """(len(rows), len(cols)) float32, unit-variance smooth noise with features ``spacing`` pixels apart.

    Gaussian values on a lattice of absolute positions, interpolated with smoothstep weights.
    """
    r, c = rows / spacing, cols / spacing
    r0, c0 = np.floor(r).astype(np.int64), np.floor(c).astype(np.int64)
    wr = (r - r0).astype("float32")
    wc = (c - c0).astype("float32")
    wr, wc = wr * wr * (3 - 2 * wr), wc * wc * (3 - 2 * wc)
    ri = np.arange(r0.min(), r0.max() + 2)
    ci = np.arange(c0.min(), c0.max() + 2)
    lattice = _normal(position_hash(seed, key, ri[:, None], ci[None, :]))
    a = lattice[r0 - ri[0]] * (1 - wr)[:, None] + lattice[r0 - ri[0] + 1] * wr[:, None]
    b = a[:, c0 - ci[0]] * (1 - wc) + a[:, c0 - ci[0] + 1] * wc
    return (b / _VALUE_NOISE_STD).astype("float32")


def fractal_noise(seed: int, key: int, rows: np.ndarray, cols: np.ndarray, spacing: float) -> np.ndarray:
    """Two octaves of ``value_noise`` (features at ``spacing`` and ``spacing / 2.5``), unit variance."""
    coarse = value_noise(seed, key, rows, cols, spacing)
    fine = value_noise(seed, key + 1, rows, cols, max(1.0, spacing / 2.5))
    return (0.8 * coarse + 0.6 * fine).astype("float32")


def white_noise(seed: int, key: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(len(rows), len(cols)) float32 independent standard normal values, one per absolute pixel."""
    return _normal(position_hash(seed, key, rows[:, None], cols[None, :]))



# Irwin-Hall with n = 4 over bytes: four uniform integers 0..255 sum to mean 510 and variance
# 4 * (256**2 - 1) / 12
_BYTES_MEAN, _BYTES_STD = 510.0, float(np.sqrt(4 * (256**2 - 1) / 12))


def approximate_normals(seed: int, key: int, rows: np.ndarray, cols: np.ndarray, count: int) -> list[np.ndarray]:
    """``count`` arrays of (len(rows), len(cols)) float32 noise of mean 0 and variance 1, one value per
    absolute pixel and array, at about a third of :func:`white_noise`'s cost per array: each hash
    (keys ``key``, ``key + 1``, ...) gives two arrays, each the sum of four of its bytes
    (Irwin-Hall with n = 4), rescaled. Near-normal (kurtosis 2.7, tails cut at 3.46 sigma, steps
    of 0.007 sigma): good for sensor noise and texture, not for tail statistics such as speckle."""
    out = []
    for k in range((count + 1) // 2):
        h = position_hash(seed, key + k, rows[:, None], cols[None, :])
        b = h.view(np.uint8).reshape(len(rows), len(cols), 8)
        for first in (0, 4):
            s = b[..., first].astype(np.float32) + b[..., first + 1] + b[..., first + 2] + b[..., first + 3]
            s -= np.float32(_BYTES_MEAN)
            s *= np.float32(1 / _BYTES_STD)
            out.append(s)
    return out[:count]
