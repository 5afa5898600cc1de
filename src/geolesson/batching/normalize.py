"""Normalization statistics per band (nodata masked, SAR in dB), saved beside the index as
JSON, and the transform that applies them.

Compute them on the training split only: statistics that have seen the validation or test
chips leak information about them into training (the same reason a scaler is fitted on the
training data only; Hastie, Tibshirani & Friedman, "The Elements of Statistical Learning",
2nd ed., section 7.10.2, "The wrong and right way to do cross-validation").
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geolesson._checks import check_number, check_path
from geolesson.indices import to_db


@dataclass(frozen=True)
class BandStatistics:
    """Mean and standard deviation per band over the valid pixels of a set of chips.

    Attributes:
        bands: channel names (asset keys), in channel order.
        mean, std: per band, in the band's physical unit, or in dB where ``db`` is True;
            ``std`` is the population standard deviation (``ddof=0``).
        count: valid (finite) pixels per band that went into them.
        db: per band, whether the values were converted with
            :func:`geolesson.indices.to_db` first (linear power -> dB, for SAR).
        chips: how many chips were read.

    Raises:
        ValueError: the fields do not hold one value per band, a mean or standard deviation is
            not a finite number (or a standard deviation is negative), a count is negative.
    """

    bands: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    count: tuple[int, ...]
    db: tuple[bool, ...]
    chips: int

    def __post_init__(self):
        n = len(self.bands)
        for name in ("mean", "std", "count", "db"):
            values = getattr(self, name)
            if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) != n:
                got = f"{len(values)} value(s)" if hasattr(values, "__len__") else repr(values)
                raise ValueError(f"BandStatistics: {name} must hold one value per band ({n} bands: "
                                 f"{list(self.bands)}), not {got}: {values!r}")
        for band, mean, std, count, db in zip(self.bands, self.mean, self.std, self.count, self.db):
            check_number(f"BandStatistics mean of band {band!r}", mean)
            check_number(f"BandStatistics std of band {band!r}", std, minimum=0)
            if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
                raise ValueError(f"BandStatistics count of band {band!r} must be an integer >= 0, not {count!r}")
            if not isinstance(db, (bool, np.bool_)):
                raise ValueError(f"BandStatistics db of band {band!r} must be True or False, not {db!r}")

    def to_json(self) -> str:
        """The statistics as a JSON object (``bands``, ``mean``, ``std``, ``count``, ``db``,
        ``chips``), as :func:`save_statistics` writes it."""
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> BandStatistics:
        """The statistics :meth:`to_json` wrote.

        Raises:
            ValueError: ``text`` is not JSON, not a JSON object, lacks a field, or holds values
                :class:`BandStatistics` refuses (the message says which).
        """
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"the statistics are not JSON ({exc})") from None
        if not isinstance(d, dict):
            raise ValueError(f"the statistics must be a JSON object with {_FIELDS}, not a "
                             f"{type(d).__name__}")
        missing = [k for k in _FIELDS if k not in d]
        if missing:
            raise ValueError(f"the statistics lack the field(s) {missing} (a BandStatistics has {_FIELDS})")
        try:
            return cls(tuple(map(str, d["bands"])), tuple(map(float, d["mean"])), tuple(map(float, d["std"])),
                       tuple(map(int, d["count"])), tuple(d["db"]), int(d["chips"]))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"the statistics hold values of the wrong kind: {exc}") from None


#: The fields of a :class:`BandStatistics` in its JSON.
_FIELDS = ["bands", "mean", "std", "count", "db", "chips"]


def _db_flags(db: bool | Sequence[bool], n: int) -> tuple[bool, ...]:
    if isinstance(db, (bool, np.bool_)):
        return (bool(db),) * n
    flags = tuple(db) if isinstance(db, Sequence) and not isinstance(db, (str, bytes)) else None
    if flags is None or len(flags) != n or not all(isinstance(v, (bool, np.bool_)) for v in flags):
        raise ValueError(f"db must be one bool or one bool per band ({n}), not {db!r}")
    return tuple(bool(v) for v in flags)


def _channel_names(dataset: Any, n: int) -> tuple[str, ...]:
    assets = getattr(dataset, "_assets", None)
    if isinstance(assets, tuple):
        return assets
    if isinstance(assets, dict):
        return tuple("|".join(sorted({v[c] for v in assets.values()})) for c in range(n))
    return tuple(f"band{c}" for c in range(n))


def band_statistics(dataset: Any, *, db: bool | Sequence[bool] = False) -> BandStatistics:
    """Per-band mean and standard deviation over every valid pixel of every chip of ``dataset``.

    Pass the training split's dataset only. Each chip is read once (without the dataset's
    transform); NaN (nodata) and, in dB, zero or negative power (NaN after
    :func:`geolesson.indices.to_db`) are left out. Per chip, the count, mean and sum of
    squared deviations are computed in float64 and merged with Chan, Golub & LeVeque's
    pairwise update ("Algorithms for computing the sample variance", The American
    Statistician 37(3), 1983), which stays exact where a running sum of squares would
    cancel.

    Args:
        dataset: a :class:`~geolesson.batching.ChipDataset` (or any map-style dataset whose
            samples have an ``"image"`` ``(C, H, W)``; with a ``read(i)`` method, that is
            used, so the transform is skipped).
        db: convert linear power to dB first, for all bands (True, for Sentinel-1 gamma0) or
            per band (a sequence of bools).

    Returns:
        :class:`BandStatistics`.

    Raises:
        TypeError: ``dataset`` is not a map-style dataset (no ``len()`` or indexing).
        ValueError: the dataset is empty, a sample has no ``"image"``, ``db`` has the wrong
            length, or a band has no valid pixel at all.
    """
    if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
        raise TypeError(f"dataset must be a map-style dataset (a ChipDataset, or a list of samples), "
                        f"not {dataset!r}")
    n_chips = len(dataset)
    if n_chips == 0:
        raise ValueError("band_statistics needs at least one chip; the dataset is empty")
    read = getattr(dataset, "read", None) or dataset.__getitem__
    count = mean = m2 = None
    flags = None
    for i in range(n_chips):
        sample = read(i)
        if not isinstance(sample, dict) or "image" not in sample:
            raise ValueError(f"dataset: sample {i} has no 'image' (a dict with an 'image' tensor "
                             f"(C, H, W) is needed), it is {type(sample).__name__}"
                             + (f" with keys {sorted(sample)}" if isinstance(sample, dict) else ""))
        image = sample["image"].numpy()
        if flags is None:
            flags = _db_flags(db, image.shape[0])
            count, mean, m2 = (np.zeros(image.shape[0]) for _ in range(3))
        for c in range(image.shape[0]):
            x = to_db(image[c]) if flags[c] else image[c]
            x = x[np.isfinite(x)].astype(np.float64)
            if x.size == 0:
                continue
            nb, mb = float(x.size), float(x.mean())
            m2b = float(((x - mb) ** 2).sum())
            na, ma = count[c], mean[c]
            total = na + nb
            delta = mb - ma
            mean[c] = ma + delta * nb / total
            m2[c] = m2[c] + m2b + delta * delta * na * nb / total
            count[c] = total
    names = _channel_names(dataset, len(flags))
    empty = [names[c] for c in range(len(flags)) if count[c] == 0]
    if empty:
        raise ValueError(f"band(s) {empty} have no valid pixel in the {n_chips} chips: no statistics")
    std = [math.sqrt(m2[c] / count[c]) for c in range(len(flags))]
    return BandStatistics(names, tuple(float(v) for v in mean), tuple(std),
                          tuple(int(v) for v in count), flags, n_chips)


def statistics_path(index_path: str | os.PathLike) -> Path:
    """Where the statistics of an index live: beside it, ``season.parquet`` ->
    ``season.stats.json``; a partitioned folder ``season/`` -> ``season.stats.json``.

    Raises:
        TypeError: ``index_path`` is not a path.
    """
    p = check_path("index_path", index_path)
    if p.name.endswith(".stats.json"):
        return p
    return p.with_name((p.stem if p.suffix == ".parquet" else p.name) + ".stats.json")


def save_statistics(stats: BandStatistics, index_path: str | os.PathLike) -> Path:
    """Write ``stats`` as JSON beside the index (:func:`statistics_path`); returns the path.

    Raises:
        TypeError: ``stats`` is not a :class:`BandStatistics`, or ``index_path`` not a path.
    """
    _check_stats("stats", stats)
    path = statistics_path(index_path)
    path.write_text(stats.to_json() + "\n")
    return path


def load_statistics(path: str | os.PathLike) -> BandStatistics:
    """Read statistics saved by :func:`save_statistics`, given the index path or the JSON path.

    Raises:
        TypeError: ``path`` is not a path.
        FileNotFoundError: no statistics file there (the message names the path).
        ValueError: the file is not statistics that :func:`save_statistics` wrote (garbled or
            incomplete JSON, values out of range); the message names the file.
    """
    path = statistics_path(check_path("path", path))
    if not path.exists():
        raise FileNotFoundError(f"no normalization statistics at {path} (save_statistics writes them)")
    try:
        return BandStatistics.from_json(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: {exc}; rewrite it with save_statistics(band_statistics(...), ...)") from None


def _check_stats(name: str, stats: Any) -> None:
    if not isinstance(stats, BandStatistics):
        raise TypeError(f"{name} must be a BandStatistics (band_statistics or load_statistics give one), "
                        f"not {type(stats).__name__}: {stats!r}"[:300])


class Normalize:
    """A ChipDataset transform: ``image -> (to_db(image) if db else image - mean) / std`` per band.

    Args:
        stats: :class:`BandStatistics` (of the training split).
        fill: None: nodata stays NaN. A number: NaN pixels (after normalization) are set to
            it, and the sample gets ``"valid"``, ``(H, W)`` bool, True where every band had
            a value (a model or loss can then ignore the filled pixels).

    Raises:
        TypeError: ``stats`` is not a :class:`BandStatistics`.
        ValueError: a band's standard deviation is 0 (a constant band cannot be scaled to
            unit variance: drop it); ``fill`` is not None or a finite number; (on call) the
            image has a different number of bands than ``stats``.
    """

    def __init__(self, stats: BandStatistics, *, fill: float | None = None):
        _check_stats("stats", stats)
        for band, std in zip(stats.bands, stats.std):
            if not std > 0:
                raise ValueError(f"stats: the std of band {band!r} is {std!r}; Normalize divides by it, "
                                 "so it must be > 0 (a band with std 0 is constant: leave it out)")
        self.stats = stats
        self.fill = None if fill is None else check_number("fill", fill)
        self._mean = np.asarray(stats.mean, dtype=np.float32)[:, None, None]
        self._std = np.asarray(stats.std, dtype=np.float32)[:, None, None]

    def __call__(self, sample: dict) -> dict:
        image = sample["image"].numpy()
        if image.shape[0] != len(self.stats.bands):
            raise ValueError(f"Normalize: the image has {image.shape[0]} bands, the statistics "
                             f"{len(self.stats.bands)} ({list(self.stats.bands)})")
        x = np.stack([to_db(image[c]) if self.stats.db[c] else image[c]
                      for c in range(image.shape[0])])  # a new array: scaled in place below
        if x.dtype == np.float32:
            x -= self._mean
            x /= self._std
        else:
            x = ((x - self._mean) / self._std).astype(np.float32)
        out = dict(sample)
        if self.fill is not None:
            missing = np.isnan(x)
            out["valid"] = torch.from_numpy(~missing.any(axis=0))
            np.copyto(x, np.float32(self.fill), where=missing)
        out["image"] = torch.from_numpy(x)
        return out

    def __repr__(self) -> str:
        return f"Normalize(bands={list(self.stats.bands)}, db={list(self.stats.db)}, fill={self.fill})"
