"""Chip index and chip reads on the full-size item, geolesson against stacchip and naive rioxarray.

    .venv/bin/python benchmarks/chips.py [--runs 3] [--sample-rows 4]

Needs the mirror running (`.venv/bin/geolesson mirror start`). The peer, stacchip 0.1.38,
pins numpy<2, so it runs in its own git-ignored venv, benchmarks/.venv-stacchip, created
here from benchmarks/requirements-stacchip.txt on the first run. Every case runs in a
fresh process (cold GDAL caches, the same GDAL options for all), the cases are
interleaved, and medians of --runs are printed. Imports happen before the clock starts.

Index build, item S2A_35SNA_20230827_0_L2A (10980 x 10980 at 10 m, SCL 5490 x 5490 at 20 m),
256-pixel chips:
    floor       decode the SCL band alone (rasterio, one read)
    geolesson   geolesson.chips.chip_index
    stacchip    stacchip.indexer.Sentinel2Indexer(item).create_index()
Both indexes must agree: same chips, nodata and cloud fractions within 1e-6, checked on
that item and on every other item of the mirror (clouds, partial-orbit nodata). stacchip
counts SCL classes (1, 3, 8, 9, 10) as cloud, over all pixels of a chip, and drops chips
with more than 50 % nodata; geolesson is asked the same with
cloud_classes=(1, 3, 8, 9, 10), max_nodata=0.5, and its cloud fraction (over valid pixels)
is converted with cloud_fraction * (1 - nodata_fraction).

Chip reads, 256 x 256 x 2 bands (red, nir), chips per second:
    ceiling     sequential decode of the 2 bands whole (rasterio, one read each)
    geolesson   geolesson.chips.read_chips, two rows of chips (one row of 512 blocks) per call
    stacchip    stacchip.chipper.Chipper(indexer, assets=...).chip(x, y) per chip
    rioxarray   per chip and band: rioxarray.open_rasterio(href).isel(...).values
The peers and geolesson read the same sample (--sample-rows rows of chips from row 20);
geolesson also reads a full pass (every chip of the index). HTTP bytes come from the
mirror's counters, divided by the bytes of the COG tiles (full-resolution blocks) of the
2 bands: all of them, and those the chips touch.

Targets (issue 4): index >= 5x faster than stacchip and <= 1.5x the floor; chip reads
>= 2x the best peer and >= 70 % of the ceiling; bytes of a full pass <= 1.05x tile bytes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cases  # benchmarks/cases.py: this folder is on sys.path when a script runs
from peers import PeerVenv

ITEM = "S2A_35SNA_20230827_0_L2A"
# the 10 m bands the mirror's full-size item carries at full size (it has no green or blue)
BANDS = ("red", "nir")
CHIP = 256
CLOUD = (1, 3, 8, 9, 10)  # stacchip's Sentinel2Indexer.scl_filter
FIRST_ROW = 20  # the read sample starts here: row_off 5120, a 512-block boundary
HERE = Path(__file__).resolve().parent
PEERS = PeerVenv(".venv-stacchip", "requirements-stacchip.txt")


# ---------------------------------------------------------------------------------------
# cases: each runs in a fresh process, in the geolesson venv or the peer venv
# ---------------------------------------------------------------------------------------


def _item(d: dict):
    import pystac

    # migrate=False: pystac >= 1.15 would turn proj:epsg into proj:code, which stacchip cannot read
    return pystac.Item.from_dict(d, migrate=False)


def _load_item(path: str):
    return _item(json.loads(Path(path).read_text()))


def _load_items(path: str) -> list:
    return [_item(d) for d in json.loads(Path(path).read_text())]


def _sample(n_rows: int, x_size: int) -> list[tuple[int, int]]:
    """(row, col) of the chips in the read sample: n_rows full rows of chips from FIRST_ROW."""
    return [(r, c) for r in range(FIRST_ROW, FIRST_ROW + n_rows) for c in range(x_size)]


def case_index_floor(item_path: str, out: str, **_) -> dict:
    import rasterio

    href = _load_item(item_path).assets["scl"].href
    t0 = time.perf_counter()
    with rasterio.open(href) as ds:
        scl = ds.read(1)
    return {"seconds": time.perf_counter() - t0, "pixels": int(scl.size)}


def _geolesson_index(item):
    import numpy as np

    from geolesson import chips

    idx = chips.chip_index(item, CHIP, cloud_classes=CLOUD, max_nodata=0.5)
    # stacchip's cloud fraction is over all pixels of a chip, geolesson's over the valid ones
    return np.stack([idx.row, idx.col, idx.nodata_fraction, idx.cloud_fraction * (1 - idx.nodata_fraction)])


def _stacchip_index(item):
    import contextlib

    import numpy as np
    from stacchip.indexer import Sentinel2Indexer

    with contextlib.redirect_stdout(sys.stderr):  # it prints progress
        t = Sentinel2Indexer(item, chip_size=CHIP).create_index()
    return np.stack([t["chip_index_y"].to_numpy(), t["chip_index_x"].to_numpy(),
                     t["nodata_percentage"].to_numpy(), t["cloud_cover_percentage"].to_numpy()]).astype(np.float64)


def _timed_index(item_path: str, out: str, build) -> dict:
    """Time build(item) on one item; save its (row, col, nodata, cloud) table for the comparison."""
    import numpy as np

    item = _load_item(item_path)
    t0 = time.perf_counter()
    table = build(item)
    seconds = time.perf_counter() - t0
    np.savez(out, **{item.id: table})
    return {"seconds": seconds, "chips": table.shape[1]}


def case_index_geolesson(item_path: str, out: str, **_) -> dict:
    # chip_index imports these on first use: imported before the clock starts, as stacchip's are
    import affine  # noqa: F401
    import geopandas  # noqa: F401
    import pyproj  # noqa: F401
    import rasterio  # noqa: F401
    import shapely  # noqa: F401

    from geolesson import chips  # noqa: F401

    return _timed_index(item_path, out, _geolesson_index)


def case_index_stacchip(item_path: str, out: str, **_) -> dict:
    import stacchip.indexer  # noqa: F401

    return _timed_index(item_path, out, _stacchip_index)


def case_agree_geolesson(items_path: str, out: str, **_) -> dict:
    import numpy as np

    np.savez(out, **{item.id: _geolesson_index(item) for item in _load_items(items_path)})
    return {}


def case_agree_stacchip(items_path: str, out: str, **_) -> dict:
    import numpy as np

    np.savez(out, **{item.id: _stacchip_index(item) for item in _load_items(items_path)})
    return {}


def case_read_ceiling(item_path: str, out: str, **_) -> dict:
    import rasterio

    item = _load_item(item_path)
    t0 = time.perf_counter()
    for band in BANDS:
        with rasterio.open(item.assets[band].href) as ds:
            ds.read(1)
    return {"seconds": time.perf_counter() - t0}


def case_read_geolesson(item_path: str, out: str, sample_rows: int, full: bool = False, **_) -> dict:
    import numpy as np

    from geolesson import chips

    item = _load_item(item_path)
    idx = chips.chip_index(item, CHIP)
    if not full:
        idx = idx[(idx.row >= FIRST_ROW) & (idx.row < FIRST_ROW + sample_rows)]
    groups = [g for _, g in idx.groupby(idx.row // 2)]  # 2 rows of 256 chips = 1 row of 512 blocks
    chips.read_chip(idx.iloc[0], BANDS[:1], items=item)  # warm the imports (rioxarray), not the data
    chips.close_datasets()
    t0 = time.perf_counter()
    n, first = 0, None
    for group in groups:
        batch = chips.read_chips(group, BANDS, items=item, stack=True)
        n += batch.shape[0]
        first = batch.values[0].copy() if first is None else first
    seconds = time.perf_counter() - t0
    if not full:
        np.save(out, first)
    return {"seconds": seconds, "chips": n}


def case_read_chip_loop(item_path: str, out: str, sample_rows: int, **_) -> dict:
    """Informative: geolesson.chips.read_chip, one chip at a time (no batching)."""
    from geolesson import chips

    item = _load_item(item_path)
    idx = chips.chip_index(item, CHIP)
    idx = idx[(idx.row >= FIRST_ROW) & (idx.row < FIRST_ROW + sample_rows)]
    rows = idx.to_dict("records")
    chips.read_chip(rows[0], BANDS[:1], items=item)
    chips.close_datasets()
    t0 = time.perf_counter()
    for row in rows:
        chips.read_chip(row, BANDS, items=item)
    return {"seconds": time.perf_counter() - t0, "chips": len(rows)}


def case_read_stacchip(item_path: str, out: str, sample_rows: int, **_) -> dict:
    import contextlib

    import numpy as np
    from stacchip.chipper import Chipper
    from stacchip.indexer import NoStatsChipIndexer

    item = _load_item(item_path)
    # NoStatsChipIndexer: the grid without reading SCL (the index is timed separately)
    chipper = Chipper(NoStatsChipIndexer(item, chip_size=CHIP), assets=list(BANDS))
    sample = _sample(sample_rows, chipper.indexer.x_size)
    t0 = time.perf_counter()
    first = None
    with contextlib.redirect_stdout(sys.stderr):
        for row, col in sample:
            data = chipper.chip(col, row)
            first = np.concatenate([data[b] for b in BANDS]) if first is None else first
    seconds = time.perf_counter() - t0
    np.save(out, first)
    return {"seconds": seconds, "chips": len(sample)}


def case_read_rioxarray(item_path: str, out: str, sample_rows: int, **_) -> dict:
    import numpy as np
    import rioxarray

    item = _load_item(item_path)
    hrefs = [item.assets[b].href for b in BANDS]
    x_size = item.assets["red"].extra_fields["proj:shape"][1] // CHIP
    sample = _sample(sample_rows, x_size)
    t0 = time.perf_counter()
    first = None
    for row, col in sample:
        arrays = []
        for href in hrefs:
            with rioxarray.open_rasterio(href) as da:
                arrays.append(da.isel(band=0, y=slice(row * CHIP, (row + 1) * CHIP),
                                      x=slice(col * CHIP, (col + 1) * CHIP)).values)
        first = np.stack(arrays) if first is None else first
    seconds = time.perf_counter() - t0
    np.save(out, first)
    return {"seconds": seconds, "chips": len(sample)}


CASES = cases.collect(globals())


@dataclass(frozen=True)
class ChipsCase:
    """One timed configuration of the experiment."""

    #: a case function's name (``index_geolesson``, ``read_stacchip``, ...)
    name: str
    #: whether it runs in the peer's venv (stacchip)
    peer: bool = False
    #: read every chip of the index instead of the sample (``read_geolesson`` only)
    full: bool = False

    @property
    def key(self) -> str:
        """The name its results are reported under."""
        return self.name + ("_full" if self.full else "")


#: the cases of a round, in order (interleaved over the runs)
INDEX_CASES = (ChipsCase("index_floor"), ChipsCase("index_geolesson"), ChipsCase("index_stacchip", peer=True))
READ_CASES = (ChipsCase("read_ceiling"), ChipsCase("read_geolesson", full=True), ChipsCase("read_geolesson"),
              ChipsCase("read_chip_loop"), ChipsCase("read_stacchip", peer=True), ChipsCase("read_rioxarray"))


# ---------------------------------------------------------------------------------------
# the driver (geolesson venv)
# ---------------------------------------------------------------------------------------


def run(case: str, python: Path, **kwargs) -> dict:
    return cases.run(__file__, case, python, **kwargs)


def tile_bytes(item):
    """The compressed sizes of the full-resolution COG tiles (blocks) of BANDS, from the
    TIFF tile byte counts, read once: returns ``bytes_in(row0, row1, cols)``, the bytes of
    the tiles that intersect pixel rows [row0, row1) and columns [0, cols)."""
    import numpy as np
    import rasterio

    sizes = 0
    for band in BANDS:
        with rasterio.open(item.assets[band].href) as ds:
            (bh, bw), rows, cols = ds.block_shapes[0], ds.height, ds.width
            sizes = sizes + np.array([[int(ds.get_tag_item(f"BLOCK_SIZE_{j}_{i}", "TIFF", bidx=1))
                                       for j in range(-(-cols // bw))] for i in range(-(-rows // bh))])

    def bytes_in(row0: int, row1: int, cols: int) -> int:
        return int(sizes[row0 // bh:-(-row1 // bh), :-(-cols // bw)].sum())

    return bytes_in


def served_bytes(fn, hrefs, *args, **kwargs) -> tuple[dict, int]:
    """fn's result, and the bytes the mirror served from the files at hrefs while it ran."""
    from geolesson import sources

    sources.reset_request_counts()
    result = fn(*args, **kwargs)
    files = sources.request_counts()["files"]
    return result, sum(v["bytes"] for path, v in files.items() if any(h.endswith("/" + path) for h in hrefs))


def indexes_agree(ours_npz: str, theirs_npz: str) -> tuple[int, float]:
    """(chips compared, max |difference| of the fractions); SystemExit if the chips differ."""
    import numpy as np

    ours, theirs = np.load(ours_npz), np.load(theirs_npz)
    worst, n = 0.0, 0
    for key in ours.files:
        a, b = ours[key], theirs[key]
        a, b = a[:, np.lexsort(a[1::-1])], b[:, np.lexsort(b[1::-1])]  # by (row, col)
        if a.shape != b.shape or not np.array_equal(a[:2], b[:2]):
            raise SystemExit(f"{key}: geolesson has {a.shape[1]} chips, stacchip {b.shape[1]}, or other ones")
        worst = max(worst, float(np.abs(a[2:] - b[2:]).max(initial=0.0)))
        n += a.shape[1]
    return n, worst


def report_index(med: dict, runs: int, shape: tuple, agree_item: tuple, agree_all: tuple, n_items: int) -> None:
    print(f"\nIndex build: {ITEM} ({shape[0]} x {shape[1]} at 10 m, SCL at 20 m), {CHIP}-pixel chips, "
          f"median of {runs} fresh processes")
    print(f"  {'case':<34}{'seconds':>9}{'x floor':>9}")
    for name, label in (("index_floor", "SCL decode alone (floor)"), ("index_geolesson", "geolesson chip_index"),
                        ("index_stacchip", "stacchip Sentinel2Indexer")):
        print(f"  {label:<34}{med[name]:>9.3f}{med[name] / med['index_floor']:>9.2f}")
    print(f"  geolesson is {med['index_stacchip'] / med['index_geolesson']:.1f}x faster than stacchip (target >= 5) "
          f"and {med['index_geolesson'] / med['index_floor']:.2f}x the floor (target <= 1.5)")
    print(f"  same chips, fractions within {agree_item[1]:.1e} on this item ({agree_item[0]} chips) and within "
          f"{agree_all[1]:.1e} on all {n_items} mirror items ({agree_all[0]} chips) (target <= 1e-6)")


def report_reads(med: dict, fetched: dict, chips_read: dict, runs: int, sample_rows: int, tiles: dict,
                 same_pixels: bool) -> None:
    rate = {k: chips_read[k] / med[k] for k in chips_read}
    print(f"\nChip reads: {CHIP} x {CHIP} x {len(BANDS)} bands ({', '.join(BANDS)}) over HTTP from the mirror; "
          f"sample = rows {FIRST_ROW}-{FIRST_ROW + sample_rows - 1} of chips; median of {runs} fresh processes")
    print(f"  {'case':<44}{'chips':>6}{'seconds':>9}{'chips/s':>9}{'MB fetched':>12}")
    for name, label in (("read_ceiling", f"sequential decode of the {len(BANDS)} bands (ceiling)"),
                        ("read_geolesson_full", "geolesson read_chips, full pass"),
                        ("read_geolesson", "geolesson read_chips, sample"),
                        ("read_chip_loop", "geolesson read_chip one at a time, sample"),
                        ("read_stacchip", "stacchip Chipper, sample"),
                        ("read_rioxarray", "rioxarray open + isel per chip, sample")):
        print(f"  {label:<44}{chips_read[name]:>6}{med[name]:>9.2f}{rate[name]:>9.1f}{fetched[name] / 1e6:>12.1f}")
    best_peer = max(rate["read_stacchip"], rate["read_rioxarray"])
    print(f"  geolesson read_chips is {rate['read_geolesson'] / best_peer:.1f}x the best peer (target >= 2); "
          f"its full pass runs at {rate['read_geolesson_full'] / rate['read_ceiling']:.0%} of the ceiling "
          "(target >= 70 %)")
    full = fetched["read_geolesson_full"]
    print(f"  full pass fetched {full / tiles['all']:.3f}x the {tiles['all'] / 1e6:.1f} MB of full-resolution "
          f"tiles, {full / tiles['touched']:.3f}x the {tiles['touched'] / 1e6:.1f} MB of tiles its chips touch "
          "(target <= 1.05)")
    labels = {"read_geolesson": "geolesson read_chips", "read_chip_loop": "read_chip",
              "read_stacchip": "stacchip", "read_rioxarray": "rioxarray"}
    print(f"  sample fetched / its {tiles['sample'] / 1e6:.1f} MB of tiles: "
          + ", ".join(f"{label} {fetched[c] / tiles['sample']:.2f}x" for c, label in labels.items()))
    print(f"  the first chip's pixels are identical in all three readers (DN scaled): {same_pixels}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--sample-rows", type=int, default=4, help="rows of chips in the read sample (42 chips each)")
    p.add_argument("--only", choices=("index", "reads"), help="run one half of the benchmark")
    cases.add_arguments(p)
    args = p.parse_args()
    if cases.dispatch(args, CASES):
        return

    import httpx
    import numpy as np

    from geolesson import indices, sources

    peer, here = PEERS.ensure(), Path(sys.executable)
    items_url = sources.stac_api_url().rstrip("/") + "/collections/sentinel-2-l2a/items"
    # raw JSON, not migrated by pystac (proj:epsg stays, as stacchip needs); the mirror holds 48 items
    page = httpx.get(items_url, params={"limit": 1000}, timeout=30).raise_for_status().json()
    raw = {feature["id"]: feature for feature in page["features"]}
    ids = list(raw)
    item = _item(raw[ITEM])
    band_hrefs = [item.assets[b].href for b in BANDS]
    height, width = item.assets["red"].extra_fields["proj:shape"]
    results: dict[str, list[dict]] = {}
    do_index, do_reads = args.only != "reads", args.only != "index"

    with tempfile.TemporaryDirectory() as tmp:
        item_path, items_path = Path(tmp, "item.json"), Path(tmp, "items.json")
        item_path.write_text(json.dumps(raw[ITEM]))
        items_path.write_text(json.dumps(list(raw.values())))
        out = {name: str(Path(tmp, name + (".npz" if "index" in name or "agree" in name else ".npy")))
               for name in CASES}

        def record(case: ChipsCase) -> None:
            kwargs = {"item_path": str(item_path), "sample_rows": args.sample_rows, "out": out[case.name],
                      "full": case.full}
            result, nbytes = served_bytes(run, band_hrefs, case.name, peer if case.peer else here, **kwargs)
            results.setdefault(case.key, []).append({**result, "bytes": nbytes})

        for _ in range(args.runs):  # interleaved, so a slow spell of the machine hits every case
            for case in (INDEX_CASES if do_index else ()) + (READ_CASES if do_reads else ()):
                record(case)

        med = {k: statistics.median(r["seconds"] for r in v) for k, v in results.items()}
        if do_index:
            # the two indexes agree on every item of the mirror (not timed)
            run("agree_geolesson", here, items_path=str(items_path), out=out["agree_geolesson"])
            run("agree_stacchip", peer, items_path=str(items_path), out=out["agree_stacchip"])
            report_index(med, args.runs, (height, width), indexes_agree(out["index_geolesson"], out["index_stacchip"]),
                         indexes_agree(out["agree_geolesson"], out["agree_stacchip"]), len(ids))
        if do_reads:
            first = {c: np.load(out[c]) for c in ("read_geolesson", "read_stacchip", "read_rioxarray")}
            same_pixels = all(np.array_equal(first["read_geolesson"][j],
                                             indices.reflectance(first[c][j], item.assets[b]), equal_nan=True)
                              for c in ("read_stacchip", "read_rioxarray") for j, b in enumerate(BANDS))
            fetched = {k: statistics.median(r["bytes"] for r in v) for k, v in results.items()}
            full_px = (height // CHIP) * CHIP
            bytes_in = tile_bytes(item)
            tiles = {"all": bytes_in(0, height, width), "touched": bytes_in(0, full_px, full_px),
                     "sample": bytes_in(FIRST_ROW * CHIP, (FIRST_ROW + args.sample_rows) * CHIP, full_px)}
            chips_read = {k: v[0]["chips"] for k, v in results.items() if k.startswith("read_") and k != "read_ceiling"}
            chips_read["read_ceiling"] = (height // CHIP) * (width // CHIP)
            report_reads(med, fetched, chips_read, args.runs, args.sample_rows, tiles, same_pixels)


if __name__ == "__main__":
    main()
