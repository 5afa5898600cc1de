"""Index an archive: one chip-index part per item, computed on a Dask cluster, resumable.

:func:`~geolesson.chips.chip_index` indexes a list of items in one process. An archive
(every clear tile of a region and season, every radar pass) is thousands of items:
:func:`~geolesson.chips.index_archive` submits one task per item to a ``dask.distributed``
cluster (a :class:`~distributed.LocalCluster` by default; any scheduler address works the
same), and each task writes its item's part of a
hive-style GeoParquet folder, ``out_dir/item_id=<id>/part.parquet``, the layout that
:func:`~geolesson.chips.write_index` writes with ``partition_by_item=True`` and
:func:`~geolesson.chips.read_index` reads.

A part is written under a temporary name and renamed into place, so a run that is killed
leaves whole parts or none. Each part records in its Parquet metadata which item (id and
``updated``) and which settings (chip size, statistics, filters) made it; a rerun skips the
items whose part matches and indexes the rest, so an interrupted run resumes where it
stopped. A failing item (say, an asset that answers 404) is reported with its error, which
names the href, and does not stop the others.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
import uuid
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geolesson._checks import check_path
from geolesson.chips.index import IndexSettings, index_plans, plan_index
from geolesson.chips.storage import part_path
from geolesson.indices import DEFAULT_CLOUD_CLASSES
from geolesson.items import ItemLike, ItemsLike, item_dict, item_id, item_list

__all__ = ["ArchiveReport", "index_archive", "part_record"]

#: Key of the part's record in the Parquet schema metadata.
RECORD_KEY = b"geolesson:chip_index"
#: Version of the record's layout; a part with another version is re-indexed.
RECORD_VERSION = 1


@dataclass
class ArchiveReport:
    """What an :func:`index_archive` run did.

    Attributes:
        out_dir: the hive-style folder of parts.
        indexed: ids of the items indexed (a part written) by this run.
        skipped: ids of the items whose existing part matched (not read again).
        failed: item id -> the error (its type and message; read errors name the href).
        chips: rows in the parts of this run's items (indexed and skipped).
        seconds: wall time of the run.
        workers: Dask workers the run used (0: serial, in this process).
    """

    out_dir: Path
    indexed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    chips: int = 0
    seconds: float = 0.0
    workers: int = 0

    @property
    def items(self) -> int:
        """How many items the run saw (indexed, skipped and failed)."""
        return len(self.indexed) + len(self.skipped) + len(self.failed)

    def __str__(self) -> str:
        lines = [f"{self.items} items: {len(self.indexed)} indexed, {len(self.skipped)} skipped "
                 f"(part up to date), {len(self.failed)} failed; {self.chips} chips in "
                 f"{self.seconds:.1f} s with {self.workers or 'no'} Dask workers -> {self.out_dir}"]
        lines += [f"  failed {iid}: {error}" for iid, error in sorted(self.failed.items())]
        return "\n".join(lines)


def _item_version(d: dict) -> str:
    """The item's ``updated`` timestamp, or (items without one, e.g. Planetary Computer's) a
    hash of its properties: what changes when the provider reprocesses the item."""
    props = d.get("properties") or {}
    if props.get("updated"):
        return str(props["updated"])
    blob = json.dumps(props, sort_keys=True, default=str).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()[:16]


def part_record(item: ItemLike, st: IndexSettings) -> dict:
    """The record a part carries: the item's id and version and the index settings (a JSON
    object: ``{"version", "item_id", "updated", "settings"}``).

    Raises:
        ValueError: the item has no id.
    """
    d = item_dict(item)
    record = {"version": RECORD_VERSION, "item_id": item_id(d), "updated": _item_version(d),
              "settings": dataclasses.asdict(st)}
    return json.loads(json.dumps(record))  # as it reads back from the file (tuples -> lists)


def _read_record(path: Path) -> tuple[dict | None, int]:
    """The record of an existing part and its rows, from its footer alone; ``(None, 0)``
    where there is no part, or it is not Parquet, or carries no record."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        footer = pq.read_metadata(path)
    except (OSError, pa.ArrowInvalid):
        return None, 0
    try:
        return json.loads((footer.metadata or {})[RECORD_KEY]), footer.num_rows
    except (KeyError, ValueError):
        return None, 0


def _write_part(gdf, path: Path, record: dict) -> None:
    """Write one item's index as GeoParquet with ``record`` in its metadata, atomically."""
    import io

    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    gdf.to_parquet(buffer, index=False)  # geopandas writes the GeoParquet "geo" metadata
    table = pq.read_table(io.BytesIO(buffer.getvalue()))
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           RECORD_KEY: json.dumps(record).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    # hidden name: readers of hive folders (pyarrow, read_index) ignore it until the rename
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _index_part(item: dict, st: IndexSettings, path: str, record: dict) -> dict:
    """The task: index one item and write its part. Errors are returned, not raised, so
    that one bad item does not stop the run."""
    t0 = time.perf_counter()
    try:
        gdf = index_plans([plan_index(item, st)], st)
        _write_part(gdf, Path(path), record)
    except Exception as exc:  # collected per item and reported at the end of the run
        return {"item_id": record["item_id"], "status": "failed",
                "error": f"{type(exc).__name__}: {exc}"}
    return {"item_id": record["item_id"], "status": "indexed", "chips": len(gdf),
            "seconds": time.perf_counter() - t0}


def _search_items(items_or_search: ItemsLike) -> list[dict]:
    if hasattr(items_or_search, "items") and hasattr(items_or_search, "url_with_parameters"):
        found = list(items_or_search.items())  # a pystac_client ItemSearch
        if not found:
            raise ValueError(f"the search {items_or_search.url_with_parameters()} matched no item: "
                             "there is nothing to index (check its collections, bbox, datetime)")
        return [item_dict(i) for i in found]
    try:
        found = item_list(items_or_search)
    except TypeError as exc:
        raise TypeError(f"items_or_search: {exc} (or a pystac_client ItemSearch)") from None
    if not found:
        raise ValueError("items_or_search is empty: there is nothing to index. The usual cause "
                         "is a search that matched no item (check its collections, bbox, datetime)")
    return [item_dict(i) for i in found]


def _writable(out_dir: Path) -> Path:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".write-test-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"out_dir={str(out_dir)!r} is not a writable folder ({exc}); "
                         "give a folder this process may create files in") from exc
    return out_dir


def _check_workers(workers: Any, client: Any) -> None:
    if workers is not None and client is not None:
        raise ValueError(f"workers={workers!r} and client are both given: the client's "
                         "cluster decides its workers; pass one or the other")
    if client is not None and not hasattr(client, "submit"):
        raise TypeError(f"client must be a distributed.Client (connect with distributed.Client(address) first), "
                        f"not {client!r}"[:200])
    if workers is None:
        return
    if isinstance(workers, bool) or not isinstance(workers, int) or not 0 <= workers <= 64:
        raise ValueError(f"workers must be an integer from 0 (serial, in this process) to 64, "
                         f"not {workers!r}")


def index_archive(items_or_search: ItemsLike, out_dir: str | os.PathLike, *, chip_size: int = 256,
                  client: Any = None, workers: int | None = None, progress: bool = True,
                  partial: str = "drop", cloud_classes: Iterable[int] = DEFAULT_CLOUD_CLASSES,
                  max_nodata: float | None = None, max_cloud: float | None = None,
                  statistics: str = "auto", scl_asset: str = "scl",
                  nodata_asset: str | None = None,
                  reference_asset: str | None = None) -> ArchiveReport:
    """Chip-index many items, one Dask task per item, into a resumable hive-style folder.

    Each task computes :func:`~geolesson.chips.chip_index` of one item and writes it to
    ``out_dir/item_id=<id>/part.parquet`` (temporary name, then rename). A part records the
    item id, the item's ``updated`` (or a hash of its properties where it has none) and the
    index settings in its Parquet metadata (``part_record``); items whose part matches
    are skipped, so a rerun after an interruption indexes only what is missing or changed.
    Parts of items not in this run are left alone. Read the result with
    :func:`~geolesson.chips.read_index` ``(out_dir)``.

    Args:
        items_or_search: a ``pystac_client.ItemSearch`` (its items are fetched here, in the
            client process), or items as :func:`~geolesson.chips.chip_index` takes them.
        out_dir: the folder of parts (created if missing). For a remote cluster it must be a
            path every worker can write and the client can read (object storage or a shared
            file system, not a laptop folder).
        chip_size: and the other index settings (``partial``, ``cloud_classes``,
            ``max_nodata``, ``max_cloud``, ``statistics``, ``scl_asset``, ``nodata_asset``,
            ``reference_asset``): as :func:`~geolesson.chips.chip_index`.
        client: a ``distributed.Client`` to submit to (its cluster, local or remote, runs the
            tasks). None: a ``LocalCluster`` of ``workers`` processes (one thread each) is
            started for this call and closed after it.
        workers: with no ``client``: worker processes of the local cluster (default: the
            usable cores, at most 4), or 0 to index serially in this process (no Dask).
        progress: show the distributed text progress bar (``tqdm`` when serial).

    Returns:
        :class:`ArchiveReport`: items indexed, skipped and failed (with errors), chips, seconds.

    Warns:
        UserWarning: some items failed (listed in the report); their parts are not written,
            the other items' parts are kept, and a rerun retries the failed ones.

    Raises:
        ValueError: before any task is submitted: no item to index (an empty search or
            list); the same item id twice; ``out_dir`` empty or cannot be created or written;
            ``workers`` out of range or given with ``client``; an index setting that
            :func:`~geolesson.chips.chip_index` rejects, or a chip size an item cannot take
            (larger than its scene, not whole in its statistics band), naming the item.
        TypeError: ``items_or_search`` is not a search, an item or items; ``out_dir`` not a
            path; ``client`` not a ``distributed.Client``; ``progress`` not a bool; an asset
            key that is not a str, ``cloud_classes`` not class numbers.
    """
    st = IndexSettings.check(chip_size, partial, cloud_classes, max_nodata, max_cloud, statistics,
                             scl_asset, nodata_asset, reference_asset)
    _check_workers(workers, client)
    if not isinstance(progress, (bool, np.bool_)):
        raise TypeError(f"progress must be True or False, not {progress!r}")
    out_dir = check_path("out_dir", out_dir)
    items = _search_items(items_or_search)
    ids = [item_id(d) for d in items]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"items_or_search holds these item ids more than once: {duplicates[:5]}; "
                         "each item gets one part, so pass each item once")
    for d in items:
        plan_index(d, st)  # metadata checks of every item before any work is submitted
    out = _writable(out_dir)
    for stale in out.glob("item_id=*/.part.parquet.*.tmp"):  # left by a killed run
        stale.unlink(missing_ok=True)

    t0 = time.perf_counter()
    report = ArchiveReport(out_dir=out)
    todo = []
    for d, iid in zip(items, ids):
        path, record = part_path(out, iid), part_record(d, st)
        found, rows = _read_record(path)
        if found == record:
            report.skipped.append(iid)
            report.chips += rows
        else:
            todo.append((d, str(path), record))

    if workers == 0:
        results = _run_serial(todo, st, progress)
    else:
        results, report.workers = _run_distributed(todo, st, client, workers, progress)
    for r in results:
        if r["status"] == "failed":
            report.failed[r["item_id"]] = r["error"]
        else:
            report.indexed.append(r["item_id"])
            report.chips += r["chips"]
    report.indexed.sort()
    report.seconds = time.perf_counter() - t0
    if report.failed:
        warnings.warn(f"{len(report.failed)} of {report.items} items failed and have no part "
                      f"(rerun to retry them):\n{report}", stacklevel=2)
    return report


def _run_serial(todo: list, st: IndexSettings, progress: bool) -> list[dict]:
    from tqdm.auto import tqdm

    return [_index_part(d, st, path, record)
            for d, path, record in tqdm(todo, desc="items", unit="item", disable=not progress)]


def _result(future: Any, record: dict) -> dict:
    try:
        return future.result()
    except Exception as exc:  # the task itself died (e.g. KilledWorker after retries)
        return {"item_id": record["item_id"], "status": "failed",
                "error": f"{type(exc).__name__}: {exc}"}


def _default_workers() -> int:
    return max(1, min(len(os.sched_getaffinity(0)), 4))


def _run_distributed(todo: list, st: IndexSettings, client: Any, workers: int | None,
                     progress: bool) -> tuple[list[dict], int]:
    import distributed

    own = client is None
    if own:
        cluster = distributed.LocalCluster(n_workers=workers or _default_workers(),
                                           threads_per_worker=1, processes=True,
                                           dashboard_address=None)
        client = distributed.Client(cluster)
    try:
        n_workers = len(client.scheduler_info()["workers"])
        if not todo:
            return [], n_workers
        futures = [client.submit(_index_part, d, st, path, record, pure=False,
                                 key=f"index-part-{record['item_id']}-{uuid.uuid4().hex[:8]}")
                   for d, path, record in todo]
        if progress:
            distributed.progress(futures, notebook=False)
        return [_result(future, record) for future, (_, _, record) in zip(futures, todo)], n_workers
    finally:
        if own:
            client.close()
            cluster.close()
