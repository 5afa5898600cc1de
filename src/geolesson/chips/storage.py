"""The chip index as GeoParquet: one file, or one file per item in a hive-style folder."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

_PART = "part.parquet"


def part_path(folder: str | os.PathLike, item_id: str) -> Path:
    """Where a partitioned index keeps the part of ``item_id``:
    ``folder/item_id=<id>/part.parquet`` (``<id>`` URL-quoted if it holds characters unsafe
    in file names)."""
    return Path(folder) / f"item_id={quote(str(item_id), safe='')}" / _PART


def write_index(gdf, path: str | os.PathLike, partition_by_item: bool = False) -> Path:
    """Write a chip index as GeoParquet (geopandas, GeoParquet 1.x metadata, CRS included).

    Args:
        gdf: a chip index (:func:`chip_index`, or a filtered/merged one).
        path: the ``.parquet`` file, or with ``partition_by_item`` the folder.
        partition_by_item: False: one file. True: one file per item in a hive-style folder,
            ``path/item_id=<id>/part.parquet`` (``<id>`` URL-quoted if it holds characters
            unsafe in file names); each part is a complete index of its item (the
            ``item_id`` column is kept in the file too). Parts of items already in the
            folder are replaced; other items' parts are left alone, so a folder grows item
            by item.

    Returns:
        ``Path(path)``.

    Raises:
        ValueError: ``gdf`` has no ``item_id`` column (partitioned write) or no geometry.
    """
    path = Path(path)
    if getattr(gdf, "geometry", None) is None:
        raise ValueError("write_index needs a GeoDataFrame with a geometry column (a chip index)")
    if not partition_by_item:
        path.parent.mkdir(parents=True, exist_ok=True)
        gdf.to_parquet(path, index=False)
        return path
    if "item_id" not in gdf.columns:
        raise ValueError("partition_by_item=True needs an 'item_id' column")
    path.mkdir(parents=True, exist_ok=True)
    for item_id, part in gdf.groupby("item_id", sort=True):
        target = part_path(path, item_id)
        target.parent.mkdir(exist_ok=True)
        part.to_parquet(target, index=False)
    return path


def read_index(path: str | os.PathLike, *, geometry: bool = True):
    """Read a chip index written by :func:`write_index` (one file, or a partitioned folder).

    Args:
        path: the ``.parquet`` file or the partitioned folder.
        geometry: True: a GeoDataFrame with the chips' footprints. False: a plain
            ``pandas.DataFrame`` of every other column, read with pandas and pyarrow only:
            what a :class:`~geolesson.batching.ChipDataset` needs, without importing
            geopandas and shapely (a fresh process holds 134 instead of 155 MiB after
            reading an index, psutil RSS; pandas and pyarrow are most of the rest).

    Returns:
        ``geopandas.GeoDataFrame`` with the CRS and dtypes written (EPSG:4326, int64
        windows, ``datetime64[us, UTC]``), or the ``pandas.DataFrame`` without ``geometry``;
        a folder's parts are concatenated in the order of their folder names, with a fresh
        ``RangeIndex``.

    Raises:
        FileNotFoundError: ``path`` does not exist, or a folder holds no ``item_id=*/part.parquet``.
        ValueError: a file is not Parquet, or is Parquet without GeoParquet geometry (the
            message names the file).
    """
    import pandas as pd

    path = Path(path)
    read = _read_one if geometry else _read_one_plain
    if path.is_dir():
        parts = sorted(path.glob(f"item_id=*/{_PART}"))
        if not parts:
            raise FileNotFoundError(f"{path} holds no item_id=*/{_PART} files (not a partitioned chip index)")
        frames = [read(p) for p in parts]
        out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        if not geometry:
            return out
        import geopandas as gpd

        return gpd.GeoDataFrame(out, geometry="geometry", crs=frames[0].crs)
    if not path.exists():
        raise FileNotFoundError(f"no chip index at {path}")
    return read(path)


def _read_one_plain(path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except pa.ArrowInvalid as exc:
        raise ValueError(f"{path} is not a Parquet file, so not a chip index ({exc})") from exc
    if b"geo" not in (schema.metadata or {}):
        raise ValueError(f"{path} is a Parquet file without a GeoParquet geometry column, so "
                         "not a chip index (write one with write_index)")
    geo_columns = set(json.loads(schema.metadata[b"geo"])["columns"])
    columns = [n for n in schema.names if n not in geo_columns]
    return pq.read_table(path, columns=columns).to_pandas()


def _read_one(path: Path):
    import geopandas as gpd
    import pyarrow as pa

    try:
        return gpd.read_parquet(path)
    except pa.ArrowInvalid as exc:
        raise ValueError(f"{path} is not a Parquet file, so not a chip index ({exc})") from exc
    except ValueError as exc:
        if "geo metadata" not in str(exc) and "geometry" not in str(exc):
            raise
        raise ValueError(f"{path} is a Parquet file without a GeoParquet geometry column, so "
                         "not a chip index (write one with write_index)") from exc
