"""The peers of benchmarks/batching.py: torchgeo and xbatcher cases, run in their own venv
(benchmarks/.venv-batching, see benchmarks/peers.py) as fresh processes by batching.py.

PyPI's torchvision build does not import beside the CPU torch ("operator torchvision::nms
does not exist"): the torchgeo cases define its nms/qnms op schemas with torch.library first
(torchgeo's RasterDataset path never calls them). The fidelity case (not timed) measures
what torchgeo's reprojection to one CRS does to the second zone.
"""

from __future__ import annotations

import argparse

import cases  # benchmarks/cases.py: this folder is on sys.path when a script runs
from batching import BANDS, BATCH, CHIP, NODATA, SEED, epoch, full_chips, load_items
from cases import PeakRSS


def _torchvision_shim() -> None:
    """Define torchvision's nms/qnms op schemas before torchvision is imported: PyPI's
    torchvision 0.28 build is linked to CUDA and its compiled ops do not load beside the CPU
    torch, after which its fake-kernel registration fails ("operator torchvision::nms does
    not exist"). torchgeo's RasterDataset path never calls these ops."""
    import torch

    global _TORCHVISION_LIB
    _TORCHVISION_LIB = torch.library.Library("torchvision", "DEF")
    _TORCHVISION_LIB.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _TORCHVISION_LIB.define("qnms(Tensor qdets, Tensor qscores, float iou_threshold) -> Tensor")


def _torchgeo_dataset(items: list[dict]):
    """A RasterDataset over the items' vv/vh COGs (one file per band, found from the vv href by
    torchgeo's band substitution), indexed by each item's acquisition day as a filename date
    would be. Reprojects everything to the CRS of the first file (torchgeo's default)."""
    import pandas as pd
    from torchgeo.datasets import RasterDataset
    from torchgeo.datasets.utils import disambiguate_timestamp

    class Sentinel1RTC(RasterDataset):
        filename_glob = "*vv*"
        filename_regex = r".*(?P<band>vv)"
        separate_files = True
        all_bands = BANDS

    dataset = Sentinel1RTC(paths=[i["assets"]["vv"]["href"] for i in items])
    by_href = {i["assets"]["vv"]["href"]: i for i in items}
    for href in dataset.index.filepath:
        vh = dataset._update_filepath("vh", href)
        if vh != by_href[href]["assets"]["vh"]["href"]:
            raise SystemExit(f"torchgeo's band substitution gives {vh}, not the item's vh href")
    days = [pd.Timestamp(by_href[h]["properties"]["datetime"]).strftime("%Y%m%d") for h in dataset.index.filepath]
    dataset.index.index = pd.IntervalIndex.from_tuples([disambiguate_timestamp(d, "%Y%m%d") for d in days],
                                                       closed="both", name="datetime")
    return dataset


def _torchgeo_sampler(dataset, sampler: str, length: int):
    import torch
    from torchgeo.samplers import GridGeoSampler, RandomGeoSampler

    if sampler == "random":
        return RandomGeoSampler(dataset, size=CHIP, length=length, generator=torch.Generator().manual_seed(SEED))
    return GridGeoSampler(dataset, size=CHIP, stride=CHIP)


def case_torchgeo(items_path: str, sampler: str, workers: int, **_) -> dict:
    _torchvision_shim()
    import torch
    from torchgeo.datasets import stack_samples

    items = load_items(items_path)
    with PeakRSS() as rss:
        dataset = _torchgeo_dataset(items)
        order = _torchgeo_sampler(dataset, sampler, sum(full_chips(i) for i in items))
        loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, sampler=order, num_workers=workers,
                                             collate_fn=stack_samples)
        return epoch(loader, "image", rss)


def _xbatcher_tensor(patch):
    """(vv, vh) of one xbatcher patch as a (2, H, W) tensor: xbatcher's own to_tensor squeezes
    a Dataset's variables and fails on two of them."""
    import torch

    return torch.from_numpy(patch[list(BANDS)].to_array("band").values)


def _xbatcher_dataset(items: list[dict]):
    import rioxarray
    import torch
    import xarray as xr
    import xbatcher
    from xbatcher.loaders.torch import MapDataset

    parts = []
    for item in items:
        bands = {b: rioxarray.open_rasterio(item["assets"][b]["href"]).squeeze("band", drop=True) for b in BANDS}
        generator = xbatcher.BatchGenerator(xr.Dataset(bands), input_dims={"y": CHIP, "x": CHIP})
        parts.append(MapDataset(generator, transform=_xbatcher_tensor))
    return torch.utils.data.ConcatDataset(parts)


def case_xbatcher(items_path: str, workers: int, context: str | None = None, **_) -> dict:
    """xbatcher's dataset opens the files (rioxarray) in the main process: under fork its
    workers inherit those GDAL handles (the ``xbatcher_fork`` check); timed under spawn."""
    import torch

    items = load_items(items_path)
    context = context or ("spawn" if workers else None)
    with PeakRSS() as rss:
        loader = torch.utils.data.DataLoader(_xbatcher_dataset(items), batch_size=BATCH, num_workers=workers,
                                             multiprocessing_context=context)
        return epoch(loader, "image", rss)


def case_xbatcher_fork(items_path: str, **_) -> dict:
    """Whether xbatcher's epoch survives 2 workers under fork (the DataLoader's default on Linux)."""
    try:
        result = case_xbatcher(items_path, workers=2, context="fork")
        return {"ok": True, "error": "", "batches": result["batches"]}
    except Exception as e:  # reported, not hidden: the message goes into the table's notes
        return {"ok": False, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"}


def case_torchgeo_fidelity(items_path: str, **_) -> dict:
    """What torchgeo's one-CRS grid epoch holds, against the same files read natively."""
    _torchvision_shim()
    import numpy as np
    import pandas as pd
    import rasterio
    import shapely
    import torch
    from torchgeo.datasets import stack_samples

    items = load_items(items_path)
    dataset = _torchgeo_dataset(items)
    target = dataset.crs.to_epsg()
    # each grid query overlaps the footprints (in the target CRS) of its item's day
    footprints = dataset.index.geometry.to_numpy()
    day_of = dataset.index.index
    epsg_of = {i["assets"]["vv"]["href"]: i["properties"]["proj:epsg"] for i in items}
    zone_of_file = [epsg_of[h] for h in dataset.index.filepath]

    def zone(query) -> int:
        x, y, t = query
        box = shapely.box(x.start, y.start, x.stop, y.stop)
        hits = {zone_of_file[k] for k in range(len(footprints))
                if footprints[k].intersects(box) and day_of[k].overlaps(pd.Interval(t.start, t.stop, closed="both"))}
        if len(hits) != 1:
            raise SystemExit(f"torchgeo query {query} hits files of {len(hits)} zones")
        return hits.pop()

    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, collate_fn=stack_samples,
                                         sampler=_torchgeo_sampler(dataset, "grid", 0))
    sums: dict[int, list] = {}
    chips = nodata_chips = raw_nodata_pixels = 0
    min_value = np.inf
    for batch in loader:
        image = batch["image"].numpy()[:, 0]  # vv
        for k, query in enumerate(batch["bounds"]):
            chip = image[k]
            bad = chip == NODATA
            chips += 1
            nodata_chips += int(bad.any())
            raw_nodata_pixels += int(bad.sum())
            min_value = min(min_value, float(chip.min()))
            v = chip[~bad & np.isfinite(chip)].astype(np.float64)
            s = sums.setdefault(zone(query), [0, 0.0, 0.0])
            s[0] += v.size
            s[1] += v.sum()
            s[2] += (v * v).sum()

    native: dict[int, list] = {}
    native_chips = native_nodata_chips = 0
    for item in items:
        with rasterio.open(item["assets"]["vv"]["href"]) as ds:
            a = ds.read(1)
        h, w = (a.shape[0] // CHIP) * CHIP, (a.shape[1] // CHIP) * CHIP
        blocks = (a[:h, :w] == NODATA).reshape(h // CHIP, CHIP, w // CHIP, CHIP).any(axis=(1, 3))
        native_chips += blocks.size
        native_nodata_chips += int(blocks.sum())
        v = a[a != NODATA].astype(np.float64)
        s = native.setdefault(item["properties"]["proj:epsg"], [0, 0.0, 0.0])
        s[0] += v.size
        s[1] += v.sum()
        s[2] += (v * v).sum()

    def mean_std(s):
        mean = s[1] / s[0]
        return mean, float(np.sqrt(s[2] / s[0] - mean * mean))

    zones = {}
    for epsg in sorted(native):
        (m0, s0), (m1, s1) = mean_std(native[epsg]), mean_std(sums[epsg])
        zones[str(epsg)] = {"reprojected": epsg != target, "std_change": s1 / s0 - 1, "mean_change": m1 / m0 - 1,
                            "pixels_native": native[epsg][0], "pixels_torchgeo": sums[epsg][0]}
    # the seed: the same generator seed twice gives the same chips?
    a = list(_torchgeo_sampler(dataset, "random", 64))
    b = list(_torchgeo_sampler(dataset, "random", 64))
    return {"target_epsg": target, "zones": zones, "chips": chips, "nodata_chips": nodata_chips,
            "native_chips": native_chips, "native_nodata_chips": native_nodata_chips,
            "raw_nodata_pixels": raw_nodata_pixels, "min_value": min_value,
            "same_seed_same_chips": [str(q) for q in a] == [str(q) for q in b]}


CASES = cases.collect(globals())


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    cases.add_arguments(p)
    if not cases.dispatch(p.parse_args(), CASES):
        p.error("run benchmarks/batching.py; this module holds its peers' cases (--case)")
