"""ChipDataset: a map-style PyTorch dataset over a chip index, each chip read on its own grid."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from geolesson import chips
from geolesson._checks import check_callable, check_columns
from geolesson.chips.rows import asset_keys
from geolesson.grid import ItemGrid
from geolesson.items import ItemsLike, items_by_id

#: Index columns a ChipDataset reads (the window and the georeferencing of each chip).
_COLUMNS = ("chip_id", "item_id", "collection", "datetime", "row_off", "col_off", "height", "width")
#: The ones every index must have.
_WINDOW_COLUMNS = ("chip_id", "item_id", "row_off", "col_off", "height", "width")


@dataclass(frozen=True)
class VectorLabels:
    """Label polygons to rasterize onto each chip's own grid.

    Attributes:
        frame: a ``geopandas.GeoDataFrame`` with a CRS (any; reprojected once per chip CRS,
            the vectors only, never the image).
        column: the integer class column burned into the mask.
        fill: the class of pixels no polygon covers.
        all_touched: rasterio's ``all_touched`` (False: pixels whose centre is inside).

    Where polygons overlap, the later row of ``frame`` wins (rasterio burns in order).
    """

    frame: Any
    column: str = "class"
    fill: int = 0
    all_touched: bool = False


def _float32_buffer(shape: tuple[int, ...]) -> torch.Tensor:
    """An uninitialized float32 tensor for chip pixels, allocated by NumPy, not torch.empty:
    for 16 x (2, 256, 256) the peak RSS of a grid epoch (benchmarks/batching.py,
    GDAL_CACHEMAX=64) was 474 MB against 625 MB, and faster (NumPy asks the kernel for huge
    pages for large arrays)."""
    return torch.from_numpy(np.empty(shape, dtype=np.float32))


class ChipDataset(Dataset):
    """Chips of a chip index as tensors, read on demand, each on its item's own grid.

    A map-style dataset (``len(ds)``, ``ds[i]``) for a ``torch.utils.data.DataLoader``.
    Chip ``i`` is row ``i`` of ``index`` (in order). Its pixels are read with one windowed
    read per asset (:class:`geolesson.chips.ItemReader`, one per item) from the item's COGs, on the
    item's grid and in its CRS: **never reprojected or resampled**, so chips of different
    UTM zones and collections keep their own pixels and can share one batch
    (:func:`geolesson.batching.collate`).

    A ``DataLoader`` asks for a batch at once (``__getitems__``): its chips are read into
    one ``(B, C, H, W)`` tensor that :func:`~geolesson.batching.collate` passes on without
    a copy, and neighbouring chips of one item (a batch of an overlap grid in row order)
    share one read per asset. Each item's grids are parsed once per process
    (:class:`~geolesson.chips.ItemReader`).

    ``__init__`` only reads metadata (it checks every row's item and assets): it opens no
    file. Each process opens the files it reads itself, lazily, and a forked DataLoader
    worker forgets its parent's handles (:mod:`geolesson.chips` clears its cache after a
    fork), so the dataset is safe under the ``fork`` and ``spawn`` start methods; it
    pickles for ``spawn``. Over HTTP too, even when the parent process has read COGs
    before: GDAL keeps keep-alive connections per thread, which a forked worker would share
    with its parent and its siblings (garbled responses), so :mod:`geolesson.sources`
    closes them in the parent before every fork and each worker opens its own.

    Args:
        index: a chip index (:func:`geolesson.chips.chip_index`, filtered, merged or read
            back), a (Geo)DataFrame with at least ``chip_id``, ``item_id``, ``row_off``,
            ``col_off``, ``height``, ``width`` (and ``datetime``, ``collection``,
            ``reference_asset`` where present).
        assets: asset keys, in channel order, e.g. ``("vv", "vh")``; or a mapping
            ``{collection: keys}`` with as many keys for every collection (e.g. Sentinel-2
            ``("red", "nir")`` beside Sentinel-1 ``("vv", "vh")``).
        items: the items of the index: a mapping ``{item_id: item}``, an ``ItemCollection``
            or a list of ``pystac.Item`` / STAC item dicts.
        labels: None; a :class:`VectorLabels` (or a GeoDataFrame with a ``class`` column),
            rasterized onto each chip's grid with ``rasterio.features.rasterize``; or the key
            of a label raster asset of every item, read like a band (its resolution a whole
            multiple ``k`` of the chip grid's, each label pixel repeated ``k x k``; windows
            must then be multiples of ``k``).
        transform: None, or a callable ``sample -> sample`` applied last (e.g.
            :class:`geolesson.batching.Normalize`).

    A sample (``ds[i]``) is a dict:

    - ``"image"``: ``torch.float32`` ``(C, H, W)``, physical units (reflectance for
      Sentinel-2, linear gamma0 for Sentinel-1 RTC), NaN where the file has nodata
      (a transform may replace NaN by a fill and add ``"valid"``, ``(H, W)`` bool);
    - ``"mask"`` (with ``labels``): ``torch.int64`` ``(H, W)`` class per pixel;
    - ``"chip_id"`` (str), ``"item_id"`` (str), ``"crs"`` (int EPSG code of the chip's
      grid), ``"transform"`` (tuple of 6 floats ``(a, b, c, d, e, f)``, the chip's affine
      transform in that CRS, metres), ``"datetime"`` (str, ISO 8601 UTC).

    Raises:
        TypeError: ``index`` is not a DataFrame; ``assets`` is not asset keys; ``items`` is
            not items; ``transform`` is not callable; (on reading) the transform returned
            something other than a sample dict.
        ValueError: ``index`` lacks a window column, or a window has a height or width < 1,
            a negative or fractional offset; ``assets`` empty, or it names an asset an item
            lacks (an unknown asset); a collection missing from an ``assets`` mapping, or
            mappings of different lengths; ``labels`` of an unknown kind or without its class
            column; a label asset whose grid is not a whole multiple of the chip grid, or
            chip windows that are not multiples of it.
        KeyError: an index row's item is missing from ``items`` (names the item ids).
    """

    def __init__(self, index: Any, assets: Sequence[str] | Mapping[str, Sequence[str]], *,
                 items: ItemsLike, labels: Any = None, transform: Callable | None = None):
        check_columns("index", index, _WINDOW_COLUMNS, "a chip index (a DataFrame with chip windows)")
        if transform is not None:
            check_callable("transform", transform, "sample -> sample, e.g. batching.Normalize(stats)")
        self._items = items_by_id(items)
        self._rows = _rows(index)
        absent = sorted({r["item_id"] for r in self._rows} - set(self._items))
        if absent:
            raise KeyError(f"{len(absent)} item(s) of the index are missing from items: "
                           f"{absent[:5]}{' ...' if len(absent) > 5 else ''}; pass every item the "
                           f"index was built from (items holds {len(self._items)})")
        self._assets = _assets_by_collection(assets, {r["collection"] for r in self._rows})
        for item_id in sorted({r["item_id"] for r in self._rows}):
            d = self._items[item_id]
            have = d.get("assets") or {}
            for key in self._assets_of(d.get("collection") or ""):
                if key not in have:
                    raise ValueError(f"assets: item {item_id!r} has no asset {key!r}; its assets are "
                                     f"{sorted(have)}")
        self._labels = _labels(labels, self._rows, self._items)
        self.transform = transform
        self._vectors: dict[int, Any] = {}  # per CRS, filled lazily in each process
        self._readers: dict[tuple, chips.ItemReader] = {}  # per item, filled lazily

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_vectors"], state["_readers"] = {}, {}  # rebuilt in each worker
        return state

    def __len__(self) -> int:
        return len(self._rows)

    def _assets_of(self, collection: str) -> tuple[str, ...]:
        if isinstance(self._assets, tuple):
            return self._assets
        return self._assets[collection]

    def __getitem__(self, i: int) -> dict:
        sample = self.read(i)
        if self.transform is not None:
            sample = self._transformed(sample)
        return sample

    def _transformed(self, sample: dict) -> dict:
        out = self.transform(sample)
        if not isinstance(out, Mapping) or "image" not in out:
            name = getattr(self.transform, "__name__", None) or type(self.transform).__name__
            raise TypeError(f"transform {name} returned {type(out).__name__ if out is not None else 'None'} "
                            f"for chip {sample['chip_id']!r}; a transform must return the sample: a dict "
                            "with an 'image' (return the sample you changed)")
        return out

    def __getitems__(self, indices: Sequence[int]) -> list[dict]:
        """Samples ``indices`` (what a ``DataLoader`` asks for, one batch at a time), with
        the transform. Chips of one size are read into one ``(B, C, H, W)`` buffer and
        each ``"image"`` is a view of it, which :func:`~geolesson.batching.collate` then
        returns without copying. Neighbouring chips of one item are read together, one read
        per asset (:meth:`geolesson.chips.ItemReader.read_many`); the pixels are those of
        ``dataset[i]``, bit for bit."""
        rows = [self._row(i) for i in indices]
        sizes = {(r["height"], r["width"]) for r in rows}
        channels = {len(self._assets_of(r["collection"])) for r in rows}
        if len(sizes) != 1 or len(channels) != 1:  # not stackable: one buffer per chip
            images = [_float32_buffer((len(self._assets_of(r["collection"])), r["height"], r["width"]))
                      for r in rows]
        else:
            (height, width), (c,) = sizes.pop(), channels
            images = list(_float32_buffer((len(rows), c, height, width)))
        by_reader: dict[chips.ItemReader, list[int]] = {}
        for k, r in enumerate(rows):
            by_reader.setdefault(self._reader(r), []).append(k)
        for reader, ks in by_reader.items():  # neighbours of one item share reads
            reader.read_many([_window(rows[k]) for k in ks], [images[k].numpy() for k in ks])
        samples = [self._described(r, image) for r, image in zip(rows, images)]
        if self.transform is not None:
            samples = [self._transformed(s) for s in samples]
        return samples

    def read(self, i: int) -> dict:
        """Sample ``i`` without the transform (what :func:`band_statistics` reads)."""
        return self._sample(self._row(i))

    def _row(self, i: Any) -> dict:
        if not isinstance(i, (int, np.integer)) or isinstance(i, bool):
            raise TypeError(f"a ChipDataset is indexed by an int, not {type(i).__name__}")
        if not -len(self._rows) <= i < len(self._rows):
            raise IndexError(f"chip {i} is out of range for a dataset of {len(self._rows)} chips")
        return self._rows[int(i)]  # negative i counts from the end, as for a list

    def _reader(self, row: dict) -> chips.ItemReader:
        key = (row["item_id"], row["collection"], row.get("reference_asset"))
        reader = self._readers.get(key)
        if reader is None:
            reader = self._readers[key] = chips.ItemReader(
                self._items[row["item_id"]], self._assets_of(row["collection"]),
                reference_asset=row.get("reference_asset"))
        return reader

    def _sample(self, row: dict) -> dict:
        """The sample of ``row``, its pixels read into a new tensor."""
        reader = self._reader(row)
        image = _float32_buffer((len(reader.plans), row["height"], row["width"]))
        reader.read_into(_window(row), image.numpy())
        return self._described(row, image)

    def _described(self, row: dict, image: torch.Tensor) -> dict:
        """The sample of ``row`` around ``image``, its pixels already read: georeferencing,
        and the mask with ``labels``."""
        reader = self._reader(row)
        transform = reader.transform(row["row_off"], row["col_off"])
        sample = {"image": image, "chip_id": row["chip_id"], "item_id": row["item_id"],
                  "crs": reader.epsg, "transform": tuple(float(v) for v in tuple(transform)[:6]),
                  "datetime": row["datetime"]}
        if self._labels is not None:
            sample["mask"] = torch.from_numpy(self._mask(row, transform, reader.epsg))
        return sample

    def _mask(self, row: dict, t: Any, epsg: int) -> np.ndarray:
        shape = (row["height"], row["width"])
        if isinstance(self._labels, str):
            labels = chips.read_chip_array(row, (self._labels,), items=self._items,
                                           reference_asset=row.get("reference_asset")).data[0]
            if np.isnan(labels).any():
                raise ValueError(f"chip {row['chip_id']!r}: the label asset {self._labels!r} has "
                                 "nodata pixels in this chip; a mask needs a class for every pixel")
            return labels.astype(np.int64)
        from rasterio.features import rasterize

        vectors = self._vectors.get(epsg)
        if vectors is None:  # the vectors (never the image) in the chip's CRS, once per process
            import shapely

            frame = self._labels.frame.to_crs(epsg=epsg)
            geoms = np.asarray(frame.geometry.values, dtype=object)
            values = np.asarray(frame[self._labels.column], dtype=np.int64)
            vectors = self._vectors[epsg] = (geoms, values, shapely.STRtree(geoms))
        geoms, values, tree = vectors
        box = (t.c, t.f + shape[0] * t.e, t.c + shape[1] * t.a, t.f)
        # in frame order: where polygons overlap, the later one wins (as in rasterize)
        hits = np.sort(tree.query(_box(box), predicate="intersects"))
        if len(hits) == 0:
            return np.full(shape, self._labels.fill, dtype=np.int64)
        return rasterize(zip(geoms[hits], values[hits].tolist()), out_shape=shape, transform=t,
                         fill=self._labels.fill, all_touched=self._labels.all_touched,
                         dtype="int64")

    def rows(self):
        """The index rows the dataset reads, in order, as dicts (no file is opened)."""
        return [dict(r) for r in self._rows]


def _window(row: dict) -> tuple[int, int, int, int]:
    return row["row_off"], row["col_off"], row["height"], row["width"]


def _box(bounds):
    import shapely

    return shapely.box(*bounds)


def _rows(index: Any) -> list[dict]:
    import pandas as pd

    columns = [c for c in (*_COLUMNS, "reference_asset") if c in index.columns]
    frame = pd.DataFrame(index[columns]).reset_index(drop=True)
    rows = frame.to_dict("records")
    for r in rows:
        for key, low in (("row_off", 0), ("col_off", 0), ("height", 1), ("width", 1)):
            value = r[key]
            if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, np.floating)) \
                    or value != value or int(value) != value or value < low:
                raise ValueError(f"index: chip {r['chip_id']!r} has {key}={value!r}; a chip window's "
                                 f"{key} must be a whole number of pixels >= {low}")
            r[key] = int(value)
        r["chip_id"], r["item_id"] = str(r["chip_id"]), str(r["item_id"])
        r["collection"] = str(r.get("collection") or "")
        ts = r.get("datetime")
        r["datetime"] = "" if ts is None or pd.isna(ts) else pd.Timestamp(ts).isoformat()
        if r.get("reference_asset") is not None and not isinstance(r["reference_asset"], str):
            r.pop("reference_asset")  # NaN from a merge with an older index
    return rows


def _assets_by_collection(assets: Any, collections: set[str]):
    if isinstance(assets, Mapping):
        out = {str(k): asset_keys(v) for k, v in assets.items()}
        lacking = sorted(collections - set(out))
        if lacking:
            raise ValueError(f"assets: no asset keys for collection(s) {lacking}; the mapping has "
                             f"{sorted(out)}")
        sizes = {len(v) for k, v in out.items() if k in collections}
        if len(sizes) > 1:
            raise ValueError(f"assets: every collection needs as many channels, got "
                             f"{ {k: list(v) for k, v in out.items()} }")
        return out
    return asset_keys(assets)


def _labels(labels: Any, rows: list[dict], items: dict[str, dict]):
    if labels is None:
        return None
    if isinstance(labels, str):
        _check_label_grid(labels, rows, items)
        return labels
    if not isinstance(labels, VectorLabels):
        if hasattr(labels, "geometry") and hasattr(labels, "columns"):
            labels = VectorLabels(labels)
        else:
            raise ValueError(f"labels must be None, a label asset key, a VectorLabels or a "
                             f"GeoDataFrame, not {type(labels).__name__}")
    if labels.column not in labels.frame.columns:
        raise ValueError(f"labels: the label frame has no column {labels.column!r} (its columns: "
                         f"{list(labels.frame.columns)}); name the class column with VectorLabels")
    if labels.frame.crs is None:
        raise ValueError("labels: the label frame has no CRS; set one (frame.set_crs(...))")
    return labels


def _check_label_grid(key: str, rows: list[dict], items: dict[str, dict]) -> None:
    """A label asset coarser than the chip grid by k: every window must be a multiple of k."""
    for item_id in sorted({r["item_id"] for r in rows}):
        d = items[item_id]
        if key not in (d.get("assets") or {}):
            raise ValueError(f"labels: item {item_id!r} has no label asset {key!r}; its assets are "
                             f"{sorted(d.get('assets') or {})}")
        ref_key = next((r.get("reference_asset") for r in rows if r["item_id"] == item_id), None)
        ref = ItemGrid.from_item(d, ref_key)
        grid = ItemGrid.from_item(d, key, role="labels")
        k = grid.resolution / ref.resolution
        if not math.isclose(k, round(k), rel_tol=1e-9) or round(k) < 1:
            raise ValueError(f"labels: asset {key!r} of item {item_id!r} has {grid.resolution:g} m pixels, "
                             f"the chips {ref.resolution:g} m; the label grid must be a whole multiple")
        k = round(k)
        for r in rows:
            if r["item_id"] != item_id:
                continue
            bad = {n: r[n] for n in ("row_off", "col_off", "height", "width") if r[n] % k}
            if bad:
                raise ValueError(
                    f"chip size / window {bad} of chip {r['chip_id']!r} is not a multiple of the "
                    f"label grid: asset {key!r} has {grid.resolution:g} m pixels over {ref.resolution:g} m "
                    f"chips, so chip sizes and offsets must be multiples of {k}")
