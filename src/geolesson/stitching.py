"""Stitching: per-chip predictions back onto each item's own grid.

Split -> apply -> combine. An item is cut into chips on a grid with overlap
(:func:`~geolesson.chips.overlap_grid`, stride = ``chip_size - overlap``), a model predicts each chip, and
:class:`Stitcher` places every prediction back at its chip's window on the item's grid,
in the item's CRS. Where chips overlap, predictions are averaged with a per-pixel weight
(a blending window that falls off towards the chip's edges, where a convolutional
network sees zero padding instead of context), and every output pixel counts the chips
that covered it (its *hit count*). The design follows Raster Vision's semantic
segmentation stitching (``SemanticSegmentationSmoothLabels``: sums of scores and per-pixel
hit counts, divided at the end; raster-vision.readthedocs.io, "Semantic segmentation",
``smooth_output``); the blending window is the linear cross-fade of Pielawski & Wählby,
"Introducing Hann windows for reducing edge-effects in patch-based image segmentation"
(PLoS ONE 15(3), 2020) in its linear form, chosen because it never reaches zero (so
scene-edge pixels covered by a single chip keep a weight).

Memory does not grow with the scene: chips arrive in row order (the order of
:func:`~geolesson.chips.overlap_grid`), and the stitcher keeps only the rows that a later chip can still
touch (at most ``chip_size`` rows x the item's width, float64 sums and weights); finished
rows are handed on, to an in-memory array (:meth:`Stitcher.result`) or to a tiled GeoTIFF
written window by window and converted to a Cloud-Optimized GeoTIFF (:func:`write_cog`).

A mosaic across items (and CRSs) is out of scope: stitch each item on its own grid, write
one COG per item, and reproject those (``gdalwarp``, ``rioxarray.merge``) for a map.

Every stitcher speaks its item's :class:`~geolesson.grid.ItemGrid` (``Stitcher.grid``): the
predictions go back on it, with its transform and CRS. ``stitching.overlap_grid`` is
:func:`geolesson.chips.overlap_grid`, here under the name the chapters use.

Data flow: imports :mod:`geolesson.grid` and :mod:`geolesson.chips` (chip rows) only.
"""

from __future__ import annotations

import functools
import os
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np

from geolesson._checks import check_callable, check_int, check_path, finite_problem
from geolesson.chips import overlap_grid  # noqa: F401  (the chapters call stitching.overlap_grid)
from geolesson.chips.rows import row_field, row_get, row_window
from geolesson.grid import ItemGrid
from geolesson.items import ItemLike

#: Blending windows of :class:`Stitcher`.
BLENDS = ("linear", "uniform")


def blend_weights(height: int, width: int, ramp: int) -> np.ndarray:
    """The linear blending window: float64 ``(height, width)``, 1 inside, falling linearly
    over the ``ramp`` pixels nearest each edge to ``1 / (ramp + 1)`` at the edge pixel.

    ``w = min(1, (d + 1) / (ramp + 1))`` per axis, with ``d`` the pixel's distance in
    pixels to the nearest edge of the chip (0 on the edge), and the 2-D window the product
    of the two axes. Two neighbours that overlap by exactly ``ramp`` pixels cross-fade: their
    weights add up to 1 on every shared pixel (``(ramp - k) / (ramp + 1) + (k + 1) / (ramp +
    1)``), so the blend is a partition of unity away from the scene's edges. ``ramp=0`` is
    the uniform window (all ones).

    Raises:
        ValueError: a size < 1 or ``ramp`` < 0.
    """
    height, width = check_int("height", height, 1), check_int("width", width, 1)
    ramp = check_int("ramp", ramp, 0)

    def axis(n: int) -> np.ndarray:
        i = np.arange(n)
        d = np.minimum(i, n - 1 - i)
        return np.minimum(1.0, (d + 1) / (ramp + 1))

    return np.outer(axis(height), axis(width))


@functools.lru_cache(maxsize=64)
def _cached_weights(height: int, width: int, ramp: int) -> np.ndarray:
    """:func:`blend_weights`, computed once per chip shape (a grid has one or a few)."""
    weights = blend_weights(height, width, ramp)
    weights.flags.writeable = False
    return weights


class Stitcher:
    """Per-chip predictions of one item, placed back on the item's grid and blended.

    Predictions of chips (rows of a chip index of this item, e.g. :func:`~geolesson.chips.overlap_grid`) are
    added with :meth:`add` in row order (non-decreasing ``row_off``). Each is multiplied by
    the blending window (:func:`blend_weights`, ``blend="linear"`` with ``ramp`` pixels;
    ``"uniform"`` for a plain mean), after dropping ``crop`` pixels on each side that does
    not lie on the scene's edge (the centre-crop option: keep only the chip's centre, where
    the model saw context on all sides; at the scene's edge nothing is cropped, so the edge
    stays covered). Sums and weights are float64; a finished pixel is
    ``sum(w * p) / sum(w)``, cast to float32 (a weighted mean of equal float32 values gives
    that value back exactly; the uniform window's ``sum(w)`` is the pixel's hit count).
    Pixels no chip covered are NaN and are counted in ``uncovered``, never filled.

    Only the rows a later chip can still reach are kept (``buffer_rows`` rows x width,
    at most the chip height): memory does not grow with the scene's height. Finished rows go
    to ``sink(row0, values, hits)`` where given (:func:`write_cog` uses this), else into a
    full-size array for :meth:`result`.

    Args:
        item: the ``pystac.Item`` or STAC item dict whose grid the predictions go back on.
        channels: prediction channels C (predictions are ``(C, H, W)``, or ``(H, W)`` for
            C = 1).
        blend: ``"linear"`` or ``"uniform"`` (:data:`BLENDS`).
        ramp: width in pixels of the linear window's ramp (usually the grid's overlap);
            None (default): each row's ``overlap`` column (:func:`~geolesson.chips.overlap_grid` writes it;
            a ValueError if a row has none, e.g. a row of ``ChipDataset.rows()``).
        crop: pixels dropped from each interior side of every prediction (>= 0, less than
            half the chip size).
        reference_asset: the band whose grid the chips follow (None: ``red``, else ``vv``).
        sink: None, or a callable receiving finished rows: ``row0`` (int), ``values``
            float32 ``(C, n, width)``, ``hits`` uint16 ``(n, width)``.

    Attributes:
        grid: the item's :class:`~geolesson.grid.ItemGrid` (the reference asset's), whose
            ``transform``, ``epsg``, ``height`` and ``width`` the stitcher also carries.
        uncovered: pixels no chip covered so far (NaN in the output).
        chips: predictions added so far.
        buffer_rows: the most rows held at once.

    Raises:
        ValueError: (``__init__``) bad ``channels``, ``blend``, ``ramp`` or ``crop``;
            (:meth:`add`) a row of another item, a prediction whose shape is not
            ``(C, height, width)`` of its chip, a window outside the item, a row that comes
            after rows further down (not row order), a ``crop`` that leaves nothing.
    """

    def __init__(self, item: ItemLike, *, channels: int = 1, blend: str = "linear",
                 ramp: int | None = None, crop: int = 0, reference_asset: str | None = None,
                 sink=None):
        if not isinstance(item, Mapping) and not hasattr(item, "assets"):
            raise TypeError(f"item must be a STAC item (a pystac.Item or its dict), not {item!r}"[:200])
        if sink is not None:
            check_callable("sink", sink, "(row0, values, hits) -> None, or None to keep the result")
        self.grid = ItemGrid.from_item(item, reference_asset)
        self.item_id, self.epsg = self.grid.item_id, self.grid.epsg
        self.transform = self.grid.transform
        self.height, self.width = self.grid.shape
        self.channels = check_int("channels", channels, 1)
        if blend not in BLENDS:
            raise ValueError(f"blend must be one of {list(BLENDS)}, not {blend!r}")
        self.blend = blend
        self.ramp = None if ramp is None else check_int("ramp", ramp, 0)
        self.crop = check_int("crop", crop, 0)
        self._sink = sink
        self._top = 0          # first row not yet handed on
        self._last_row_off = 0
        # the buffer: rows [top, top + used) of the item, in arrays of `capacity` rows (the
        # second-last axis): the weighted sums, the hit counts and, for the linear window,
        # the sums of the weights (the uniform window's weights are 1: its sums are the hits)
        self._used = 0
        self._sum = np.zeros((self.channels, 0, self.width))
        self._hits = np.zeros((0, self.width), dtype=np.uint16)
        self._weight = np.zeros((0, self.width)) if blend == "linear" else None
        self._full = None if sink is not None else np.full(
            (self.channels, self.height, self.width), np.nan, dtype=np.float32)
        self._full_hits = None if sink is not None else np.zeros((self.height, self.width),
                                                                  dtype=np.uint16)
        self.uncovered = 0
        self.chips = 0
        self.buffer_rows = 0   # the most rows held at once
        self._finished_by: str | None = None  # "finish()", "result()" or "hits()" once the rows are handed on

    def _window(self, row: Any) -> tuple[int, int, int, int]:
        item_id = str(row_field(row, "item_id"))
        if item_id != self.item_id:
            raise ValueError(f"row: chip {row_get(row, 'chip_id')!r} belongs to "
                             f"item {item_id!r}; this Stitcher stitches item {self.item_id!r} only "
                             "(one Stitcher per item: split the index by item_id)")
        r0, c0, h, w = row_window(row)
        if r0 < 0 or c0 < 0 or h < 1 or w < 1 or r0 + h > self.height or c0 + w > self.width:
            raise ValueError(f"row: the window rows [{r0}, {r0 + h}) x cols [{c0}, {c0 + w}) is not "
                             f"inside item {self.item_id!r} ({self.height} x {self.width})")
        return r0, c0, h, w

    def add(self, row: Any, prediction: Any) -> None:
        """Add one chip's prediction.

        Args:
            row: the chip's index row (a dict or a pandas row with ``item_id``, ``row_off``,
                ``col_off``, ``height``, ``width``; ``overlap`` sets the default ramp).
            prediction: NumPy or torch ``(C, height, width)`` (or ``(height, width)`` for
                one channel), any real dtype, e.g. probabilities.
        """
        if self._finished_by is not None:
            raise RuntimeError(f"add: this Stitcher is finished ({self._finished_by} was called and handed its "
                               "rows on); no chip can be added after it: make a new Stitcher")
        r0, c0, h, w = self._window(row)
        p = prediction.detach().cpu().numpy() if hasattr(prediction, "detach") else np.asarray(prediction)
        if p.dtype.kind not in "biuf":
            raise TypeError("prediction must be a real-valued array (NumPy or torch), not "
                            + (repr(prediction) if prediction is None else f"an array of dtype {p.dtype}"))
        if problem := finite_problem("prediction", p):
            raise ValueError(f"{problem} for chip {row_get(row, 'chip_id')!r} of item {self.item_id!r}: predictions "
                             "must be finite (the stitched map keeps NaN for pixels no chip covered)")
        if p.ndim == 2 and self.channels == 1:
            p = p[None]
        if p.shape != (self.channels, h, w):
            raise ValueError(f"prediction: shape {tuple(p.shape)} does not match chip "
                             f"{row_get(row, 'chip_id')!r}: expected "
                             f"({self.channels}, {h}, {w}) (channels, chip height, chip width)"
                             + (" or (height, width)" if self.channels == 1 else ""))
        if r0 < self._last_row_off:
            raise ValueError(f"row: chip at row_off={r0} comes after a chip at row_off="
                             f"{self._last_row_off}; add chips in row order (sort the index by "
                             "row_off, then col_off, as overlap_grid does)")
        # interior sides lose `crop` pixels; sides on the scene's edge keep theirs
        top = 0 if r0 == 0 else self.crop
        left = 0 if c0 == 0 else self.crop
        bottom = 0 if r0 + h == self.height else self.crop
        right = 0 if c0 + w == self.width else self.crop
        if top + bottom >= h or left + right >= w:
            raise ValueError(f"crop={self.crop} leaves nothing of a {h} x {w} chip; allowed: "
                             f"crop < {min(h, w) // 2}")
        ramp = self.ramp
        if ramp is None and self.blend == "linear":
            ramp = row_get(row, "overlap")
            if ramp is None or ramp != ramp:  # absent or NaN
                raise ValueError(f"ramp: Stitcher(blend='linear', ramp=None) takes the ramp from "
                                 f"each row's 'overlap' column, and chip "
                                 f"{row_get(row, 'chip_id')!r} has none; pass "
                                 "ramp= (pixels, e.g. the grid's overlap) or blend='uniform'")
            ramp = int(ramp)
        weights = None if self._weight is None else \
            _cached_weights(h, w, ramp)[top:h - bottom, left:w - right]
        self._last_row_off = r0
        self._flush(r0)  # rows above this chip are finished
        p = p[:, top:h - bottom, left:w - right]
        y0, y1 = r0 + top - self._top, r0 + h - bottom - self._top
        x0, x1 = c0 + left, c0 + w - right
        self._grow(y1)
        if weights is None:  # the uniform window: every weight is 1
            self._sum[:, y0:y1, x0:x1] += p
        else:
            self._sum[:, y0:y1, x0:x1] += weights * p
            self._weight[y0:y1, x0:x1] += weights
        self._hits[y0:y1, x0:x1] += 1
        self.chips += 1

    def _grow(self, rows: int) -> None:
        """Hold at least ``rows`` rows; the arrays are reallocated only when they are full."""
        if rows <= self._used:
            return
        if rows > self._hits.shape[0]:
            capacity = max(rows, 2 * self._hits.shape[0])
            grown = []
            for old in self._buffers():
                new = np.zeros((*old.shape[:-2], capacity, self.width), dtype=old.dtype)
                new[..., :self._used, :] = old[..., :self._used, :]
                grown.append(new)
            self._sum, self._hits, *weight = grown
            self._weight = weight[0] if weight else None
        self._used = rows
        self.buffer_rows = max(self.buffer_rows, rows)

    def _buffers(self) -> list[np.ndarray]:
        return [self._sum, self._hits] + ([] if self._weight is None else [self._weight])

    def _flush(self, until: int) -> None:
        """Hand on the rows [top, until): no later chip (row order) reaches them; in strips
        no taller than the buffer (or 256 rows), so rows no chip covered cost no memory."""
        until = min(until, self.height)
        while self._top < until:
            self._flush_strip(min(until - self._top, max(self._used, 256)))

    def _flush_strip(self, n: int) -> None:
        self._grow(n)
        hits = self._hits[:n].copy()
        values = np.empty((self.channels, n, self.width), dtype=np.float32)
        weight = hits if self._weight is None else self._weight[:n]
        # the float64 quotient rounded to float32 once, as (sum / weight).astype(float32)
        # would; a pixel no chip covered has sum 0 and weight 0 (a blending weight is never
        # 0), and 0 / 0 is NaN
        with np.errstate(invalid="ignore"):
            np.divide(self._sum[:, :n], weight, out=values)
        self.uncovered += hits.size - int(np.count_nonzero(hits))
        if self._sink is not None:
            self._sink(self._top, values, hits)
        else:
            self._full[:, self._top:self._top + n] = values
            self._full_hits[self._top:self._top + n] = hits
        # move the rows still open to the top of the buffer and clear the rest
        left = self._used - n
        for buffer in self._buffers():
            buffer[..., :left, :] = buffer[..., n:self._used, :]
            buffer[..., left:self._used, :] = 0
        self._used = left
        self._top += n

    def finish(self) -> None:
        """Hand on every remaining row (called by :meth:`result` and :func:`write_cog`);
        :meth:`add` refuses chips afterwards."""
        self._finished_by = self._finished_by or "finish()"
        self._flush(self.height)

    def result(self):
        """The stitched item: ``xarray.DataArray`` float32 ``(band, y, x)`` on the item's grid
        (pixel-centre ``x``/``y`` coordinates in metres of ``EPSG:<epsg>``, CRS and transform
        through ``rioxarray``: ``.rio.crs``, ``.rio.transform()``), NaN where no chip
        covered; attrs ``item_id`` and ``uncovered`` (pixels). The hit counts: :meth:`hits`.

        Raises:
            RuntimeError: the Stitcher streams into a sink (no full-size array is kept).
        """
        import xarray as xr

        if self._full is None:
            raise RuntimeError("this Stitcher streams its rows into a sink; result() needs "
                               "Stitcher(..., sink=None)")
        self._finished_by = self._finished_by or "result()"
        self.finish()
        coords = self.grid.coords()
        da = xr.DataArray(self._full, dims=("band", "y", "x"),
                          coords={"band": np.arange(1, self.channels + 1), **coords},
                          name="prediction",
                          attrs={"item_id": self.item_id, "uncovered": self.uncovered})
        return da.rio.write_crs(f"EPSG:{self.epsg}").rio.write_transform(self.transform)

    def hits(self):
        """Per-pixel hit counts (chips that covered each pixel, after cropping): uint16
        ``xarray.DataArray`` ``(y, x)`` on the item's grid. Needs ``sink=None``."""
        import xarray as xr

        if self._full_hits is None:
            raise RuntimeError("this Stitcher streams its rows into a sink; hits() needs sink=None")
        self._finished_by = self._finished_by or "hits()"
        self.finish()
        da = xr.DataArray(self._full_hits, dims=("y", "x"), coords=self.grid.coords(), name="hits")
        return da.rio.write_crs(f"EPSG:{self.epsg}").rio.write_transform(self.transform)


#: Encodings of the COG :func:`write_cog` writes (``output=``).
OUTPUTS = ("float32", "uint8", "mask")
#: ``output="uint8"``: a value v in [0, 1] is stored as ``round(v * 254)``, read back as
#: ``stored * UINT8_SCALE`` (within ``UINT8_SCALE / 2``); 255 is nodata.
UINT8_SCALE = 1 / 254
UINT8_NODATA = 255
#: Finished strips queued for the writer thread before the stitcher waits for it.
_PENDING_STRIPS = 2


def encode(values: np.ndarray, output: str, threshold: float = 0.5) -> np.ndarray:
    """Finished stitched values ``(C, n, width)`` float32 (NaN: no chip) as stored by
    :func:`write_cog`:

    - ``"float32"``: unchanged, NaN nodata (any value; the model's raw output);
    - ``"uint8"``: probabilities in [0, 1] as ``round(v * 254)``, 255 nodata; a quarter of the
      bytes of float32 and within 1/508 of the value (scale :data:`UINT8_SCALE`, offset 0,
      recorded in the GeoTIFF so ``rioxarray.open_rasterio(..., mask_and_scale=True)`` and
      ``rasterio``'s ``scales`` give the probability back);
    - ``"mask"``: the class of each pixel, uint8 ``(1, n, width)``: ``v >= threshold`` (0/1)
      for one channel, the channel with the highest value (0..C-1) for several; 255 nodata.

    Raises:
        ValueError: an unknown ``output``; ``"uint8"`` with a value outside [0, 1] (names the
            range found: such values are not probabilities, write float32); ``"mask"`` with
            more than 255 channels.
    """
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {list(OUTPUTS)}, not {output!r}")
    if output == "float32":
        return values
    nodata = np.isnan(values).any(axis=0)
    if output == "uint8":
        low, high = np.nanmin(values, initial=0.0), np.nanmax(values, initial=1.0)
        if low < 0 or high > 1:
            raise ValueError(f"output='uint8' stores probabilities in [0, 1]; these values range "
                             f"from {low:g} to {high:g}: write output='float32' (or apply a "
                             "sigmoid/softmax first)")
        with np.errstate(invalid="ignore"):
            stored = np.rint(values * 254).astype(np.uint8)
        stored[:, nodata] = UINT8_NODATA
        return stored
    if values.shape[0] > 255:
        raise ValueError(f"output='mask' stores a class index in uint8: at most 255 channels, "
                         f"not {values.shape[0]}")
    with np.errstate(invalid="ignore"):
        classes = (values[0] >= threshold) if values.shape[0] == 1 else \
            np.nan_to_num(values, nan=-np.inf).argmax(axis=0)
    stored = classes.astype(np.uint8)[None]
    stored[:, nodata] = UINT8_NODATA
    return stored


def write_cog(predictions: Iterable[tuple[Any, Any]], item: ItemLike, path: str | os.PathLike, *,
              channels: int = 1, blend: str = "linear", ramp: int | None = None, crop: int = 0,
              reference_asset: str | None = None, output: str = "float32",
              threshold: float = 0.5, blocksize: int = 512,
              hits_path: str | os.PathLike | None = None, gdal_cache_mb: int = 256) -> dict:
    """Stitch ``(row, prediction)`` pairs of one item and write a Cloud-Optimized GeoTIFF.

    Streams, in two overlapped stages and one compression pass: the stitcher (this thread)
    hands each finished strip of rows to a writer thread, which encodes it (``output``) and
    writes it window by window into an uncompressed tiled GeoTIFF in a temporary folder
    beside ``path``, while the predictions keep coming (GDAL releases the GIL while it
    writes). The overviews are then built into that file, and GDAL's COG driver copies it
    and compresses every block once (ZSTD with a predictor, ``blocksize`` blocks, on all
    CPUs) into ``path``: a COG's overviews must come before the full-resolution blocks in
    the file, so it cannot be written in one pass while the rows arrive. The temporary file
    holds the item's pixels uncompressed (float32: 4 bytes a pixel, 482 MB for 10980 x
    10980, and a third more for its overviews) and is deleted at the end.

    Memory is the stitcher's buffer (at most a chip's height x the item's width, float64),
    a few finished strips waiting for the writer, and GDAL's cache (``gdal_cache_mb``),
    whatever the scene's height. The file has the item's CRS, transform and shape.

    Args:
        predictions: ``(row, prediction)`` in row order, as for :meth:`Stitcher.add`
            (e.g. :func:`geolesson.model.predict`, a generator over batches of a model).
        item, channels, blend, ramp, crop, reference_asset: as :class:`Stitcher`.
        path: the COG to write (``.tif``).
        output: how values are stored (:func:`encode`): ``"float32"`` (default; NaN
            nodata), ``"uint8"`` (probabilities in [0, 1] scaled by 254, 255 nodata, scale
            recorded) or ``"mask"`` (uint8 class: ``>= threshold`` for one channel, argmax
            for several; 255 nodata).
            Which to choose: ``"mask"`` for a class map to hand on (the smallest file);
            ``"uint8"`` for a probability map a user reads or thresholds later (a quarter of
            float32's bytes before compression, cheaper to compress, within 1/508); the
            default ``"float32"`` when the exact values matter (comparing maps, calibrating
            a threshold), because it is the only lossless one.
        threshold: the class threshold of ``output="mask"`` with one channel.
        blocksize: COG block side (a multiple of 16).
        hits_path: where given, the uint16 hit counts are written there as a second COG
            (a path other than ``path``).
        gdal_cache_mb: GDAL's block cache (``GDAL_CACHEMAX``, MB) while writing (and while
            the predictions are read, if they are read lazily inside this call).

    Returns:
        ``{"path", "chips", "uncovered", "buffer_rows", "hits_path", "seconds"}``;
        ``seconds`` says where the wall time went: ``wait`` (waiting for the next
        prediction: reading and the model upstream), ``stitch`` (blending into the buffer),
        ``write`` (the writer thread's busy time, overlapped with the rest),
        ``write_wait`` (the stitcher waiting for the writer), ``cog`` (overviews and
        compression), ``total``.

    Raises:
        as :class:`Stitcher` and :func:`encode`; ``ValueError`` for a ``blocksize`` that is
        not a positive multiple of 16, a ``gdal_cache_mb`` < 1, a ``path`` that is a folder,
        or a ``hits_path`` that is the same file as ``path``; ``FileNotFoundError`` for a
        folder of ``path`` or ``hits_path`` that does not exist; ``TypeError`` for
        ``predictions`` that are not iterable or a path that is not one. All are checked
        before anything is written.
    """
    import rasterio
    from rasterio.shutil import copy as copy_dataset
    from rasterio.windows import Window

    started = time.perf_counter()
    blocksize = check_int("blocksize", blocksize, 16)
    if blocksize % 16:
        raise ValueError(f"blocksize must be a multiple of 16 (TIFF tiles), not {blocksize}")
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {list(OUTPUTS)}, not {output!r}")
    gdal_cache_mb = check_int("gdal_cache_mb", gdal_cache_mb, 1)
    if not isinstance(predictions, Iterable):
        raise TypeError(f"predictions must be an iterable of (row, prediction) pairs, e.g. model.predict(...), "
                        f"not {predictions!r}"[:200])
    path = _output_path("path", path)
    if hits_path is not None:
        hits_path = _output_path("hits_path", hits_path)
        if os.path.realpath(hits_path) == os.path.realpath(path):
            raise ValueError(f"hits_path: {hits_path} is the prediction's path too; give the hit counts a file "
                             "of their own (the paths must differ, or the counts overwrite the prediction)")
    seconds = dict.fromkeys(("wait", "stitch", "write", "write_wait", "cog"), 0.0)
    files = {}

    # GDAL's block cache defaults to 5 % of the machine's RAM; writing a whole scene would
    # fill it (1.2 GB on 24 GB), so the COG is written with a bounded cache. Only the writes
    # run in this environment: setting GDAL_CACHEMAX around the reads upstream (the
    # predictions' chips) makes every read there re-apply it, which empties the block cache
    # the chips are read through (a band of 1,150 chips read 5 times slower).
    def bounded_cache():
        return rasterio.Env(GDAL_CACHEMAX=int(gdal_cache_mb))

    def write_strip(row0, values, hits):
        t0 = time.perf_counter()
        stored = encode(values, output, threshold)
        with bounded_cache():
            files["values"].write(stored, window=Window(0, row0, stored.shape[2], stored.shape[1]))
            if "hits" in files:
                files["hits"].write(hits[None], window=Window(0, row0, hits.shape[1], hits.shape[0]))
        seconds["write"] += time.perf_counter() - t0

    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".stitch-") as tmp, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="write_cog") as writer:
        pending: deque = deque()

        def sink(row0, values, hits):
            pending.append(writer.submit(write_strip, row0, values, hits))
            t0 = time.perf_counter()
            while len(pending) > _PENDING_STRIPS:
                pending.popleft().result()
            waited = time.perf_counter() - t0
            seconds["write_wait"] += waited
            seconds["stitch"] -= waited  # spent inside Stitcher.add/finish, not stitching

        stitcher = Stitcher(item, channels=channels, blend=blend, ramp=ramp, crop=crop,
                            reference_asset=reference_asset, sink=sink)
        stored = _stored_profile(output, channels)
        profile = dict(driver="GTiff", width=stitcher.width, height=stitcher.height,
                       crs=f"EPSG:{stitcher.epsg}", transform=stitcher.transform, tiled=True,
                       blockxsize=blocksize, blockysize=blocksize)
        raw, raw_hits = Path(tmp) / "values.tif", Path(tmp) / "hits.tif"
        with bounded_cache():
            dst = rasterio.open(raw, "w", **profile, **stored)
        with dst:
            files["values"] = dst
            if output == "uint8":
                dst.scales, dst.offsets = (UINT8_SCALE,) * channels, (0.0,) * channels
            if hits_path is not None:
                with bounded_cache():
                    files["hits"] = rasterio.open(raw_hits, "w", **profile, count=1, dtype="uint16")
            try:
                predictions = iter(predictions)
                while True:
                    t0 = time.perf_counter()
                    try:
                        row, prediction = next(predictions)
                    except StopIteration:
                        break
                    t1 = time.perf_counter()
                    stitcher.add(row, prediction)
                    seconds["wait"] += t1 - t0
                    seconds["stitch"] += time.perf_counter() - t1
                t0 = time.perf_counter()
                stitcher.finish()
                seconds["stitch"] += time.perf_counter() - t0
                t0 = time.perf_counter()
                while pending:
                    pending.popleft().result()
                seconds["write_wait"] += time.perf_counter() - t0
            finally:
                # an error upstream: drop the queued writes and let a running one end before
                # its file is closed (its own error, if any, is secondary to the one raised)
                wait([future for future in pending if not future.cancel()])
                if "hits" in files:
                    files["hits"].close()
        t0 = time.perf_counter()
        resampling = "NEAREST" if output == "mask" else "AVERAGE"
        with bounded_cache():
            _translate_cog(copy_dataset, raw, path, blocksize, resampling)
            if hits_path is not None:
                _translate_cog(copy_dataset, raw_hits, hits_path, blocksize, "NEAREST")
        seconds["cog"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - started
    return {"path": path, "chips": stitcher.chips, "uncovered": stitcher.uncovered,
            "buffer_rows": stitcher.buffer_rows,
            "hits_path": None if hits_path is None else Path(hits_path), "seconds": seconds}


def _stored_profile(output: str, channels: int) -> dict:
    if output == "float32":
        return {"count": channels, "dtype": "float32", "nodata": float("nan")}
    return {"count": channels if output == "uint8" else 1, "dtype": "uint8",
            "nodata": UINT8_NODATA}


def _translate_cog(copy_dataset, src: Path, dst: str | os.PathLike, blocksize: int,
                   resampling: str) -> None:
    """Overviews, then the COG. The overviews go into the uncompressed temporary file first
    (``build_overviews``, GDAL's GTiff driver, on all CPUs), halving until the shorter side
    of the smallest is no longer than a block (rio-cogeo's ``get_maximum_overview_level``).
    GDAL's COG driver (gdal.org/drivers/raster/cog.html) then copies them
    (``OVERVIEWS=FORCE_USE_EXISTING``) and compresses every block once, losslessly, with
    ZSTD at level 1 and the predictor that suits its type (horizontal for integers, floating
    point for float32), on all CPUs.
    For the float32 prediction of the full-size item (``benchmarks/inference.py``, 2 cores)
    that took 1.3 s against 2.4 s when the COG driver built the overviews itself, with the
    same pixels in the first two overview levels; and ZSTD took 2.4 s against 4.0 s for
    DEFLATE at its default level, for a file 2 % smaller."""
    import rasterio
    from rasterio.enums import Resampling
    from rio_cogeo.utils import get_maximum_overview_level

    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"), rasterio.open(src, "r+") as raw:
        levels = get_maximum_overview_level(raw.width, raw.height, minsize=blocksize)
        if levels:
            raw.build_overviews([2 ** k for k in range(1, levels + 1)], Resampling[resampling.lower()])
    copy_dataset(str(src), os.fspath(dst), driver="COG", COMPRESS="ZSTD", LEVEL=1, PREDICTOR="YES",
                 BLOCKSIZE=blocksize, NUM_THREADS="ALL_CPUS", OVERVIEWS="FORCE_USE_EXISTING")


def _output_path(name: str, value: Any) -> Path:
    """``value`` as the path of a file to write: its folder must exist, and it is no folder."""
    path = check_path(name, value)
    if path.is_dir():
        raise ValueError(f"{name} {path} is a folder; give the path of the .tif file to write")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{name}: the folder {path.parent} of {path} does not exist; make it first")
    return path
