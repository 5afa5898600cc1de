"""The peers of benchmarks/inference.py, run in their own venvs on the same scene and model.

Each peer reads the item's red, nir and swir22 COGs from the mirror over HTTP through one
VRT (written by inference.py: the three bands on the 10 m grid, swir22 repeated 2 x 2 by
nearest neighbour, as :class:`geolesson.batching.ChipDataset` reads it) and applies the
same network with the same weights, wrapped to take the raw digital numbers: scale and
offset from the item's ``raster:bands``, the same normalization, nodata pixels set to 0
(what ``Normalize(fill=0.0)`` does). Chips of the same size and stride; the stitched
probabilities go to a GeoTIFF that inference.py compares with ours pixel by pixel.

    raster-vision  SemanticSegmentationSlidingWindowGeoDataset over a RasterioSource,
                   a DataLoader, SemanticSegmentationSmoothLabels (sums of scores and
                   per-pixel hit counts) and SemanticSegmentationLabelStore (scores.tif)
    geoai          geoai.inference.predict_geotiff (windowed reads, weighted sums over the
                   whole scene in memory, one GeoTIFF written at the end)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cases
from cases import PeakRSS

BATCH = 16


def wrapped_model(weights: str, scale: list, offset: list, mean: list, std: list, nodata: float):
    """The benchmark's network behind the reading arithmetic of geolesson: DN -> reflectance
    -> normalized, nodata -> 0, then the network."""
    import torch
    from inference import burnnet

    net = burnnet()
    net.load_state_dict(torch.load(weights, weights_only=True))
    view = (1, -1, 1, 1)
    scale_, offset_ = torch.tensor(scale).view(view), torch.tensor(offset).view(view)
    mean_, std_ = torch.tensor(mean).view(view), torch.tensor(std).view(view)

    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            valid = x != nodata
            x = ((x * scale_ + offset_) - mean_) / std_
            x = torch.where(valid, x, torch.zeros((), dtype=x.dtype))
            return self.net(x)

    return Wrapped().eval()


def case_raster_vision(vrt: str, out: str, chip: int, overlap: int, workers: int, model: dict) -> dict:
    """Raster Vision 0.31: sliding windows, smooth labels with hit counts, its label store."""
    import numpy as np
    import torch
    from batching_peers import _torchvision_shim

    _torchvision_shim()
    from rastervision.core.data import (
        ClassConfig,
        RasterioSource,
        Scene,
        SemanticSegmentationLabelStore,
        SemanticSegmentationSmoothLabels,
    )
    from rastervision.pytorch_learner import SemanticSegmentationSlidingWindowGeoDataset
    from torch.utils.data import DataLoader

    torch.set_num_threads(2)
    net = wrapped_model(**model)
    with PeakRSS() as peak:
        t0 = time.perf_counter()
        source = RasterioSource(vrt, allow_streaming=True)
        scene = Scene(id="scene", raster_source=source)
        dataset = SemanticSegmentationSlidingWindowGeoDataset(
            scene, size=chip, stride=chip - overlap, padding=0, normalize=False, to_pytorch=True)
        labels = SemanticSegmentationSmoothLabels(extent=source.extent, num_classes=2,
                                                  dtype="float32", dtype_hits="uint16")
        windows = dataset.windows
        i = 0
        with torch.no_grad():
            for x, _ in DataLoader(dataset, batch_size=BATCH, num_workers=workers):
                p = torch.sigmoid(net(x.float())).numpy()  # (B, 1, H, W)
                scores = [np.concatenate([1 - q, q]) for q in p]
                labels.add_predictions(windows[i:i + len(p)], scores)
                i += len(p)
        store = SemanticSegmentationLabelStore(out, crs_transformer=source.crs_transformer,
                                               class_config=ClassConfig(names=["other", "burned"]),
                                               discrete_output=False, smooth_output=True)
        store.save(labels)
        seconds = time.perf_counter() - t0
    return {"chips": len(windows), "seconds": seconds, "chips_per_s": len(windows) / seconds,
            "peak_rss_mib": peak.peak / 2**20, "scores": str(Path(out) / "scores.tif"),
            "band": 2}


def tile_starts(size: int, chip: int, overlap: int) -> set[int]:
    """The tile offsets along one axis of ``predict_geotiff``'s grid (duplicates dropped)."""
    return {max(0, min(start + chip, size) - chip) for start in range(0, size, chip - overlap)}


def case_geoai(vrt: str, out: str, chip: int, overlap: int, workers: int, model: dict) -> dict:
    """geoai-py: ``predict_geotiff`` with the uniform window (``blend_mode="none"``)."""
    import rasterio
    import torch
    from batching_peers import _torchvision_shim

    _torchvision_shim()
    from geoai.inference import predict_geotiff

    # predict_geotiff writes with its input's profile; the input here is a VRT (the three
    # remote COGs on one grid), which GDAL cannot write pixels into: write a GeoTIFF instead
    open_ = rasterio.open

    def open_gtiff(path, mode="r", **profile):
        if mode == "w" and profile.get("driver") == "VRT":
            profile.update(driver="GTiff", tiled=True, blockxsize=512, blockysize=512)
        return open_(path, mode, **profile)

    rasterio.open = open_gtiff
    torch.set_num_threads(2)
    net = torch.nn.Sequential(wrapped_model(**model), torch.nn.Sigmoid()).eval()
    with PeakRSS() as peak:
        t0 = time.perf_counter()
        path = str(Path(out) / "scores.tif")
        Path(out).mkdir(parents=True, exist_ok=True)
        predict_geotiff(net, vrt, path, tile_size=chip, overlap=overlap, batch_size=BATCH,
                        blend_mode="none", preprocess_fn=lambda tile: tile, device="cpu",
                        output_nodata=float("nan"), verbose=False)
        seconds = time.perf_counter() - t0
    with rasterio.open(path) as src:  # its tiles: every stride, the last pulled back to the edge
        chips = len(tile_starts(src.height, chip, overlap)) * len(tile_starts(src.width, chip, overlap))
    return {"chips": chips, "seconds": seconds, "chips_per_s": chips / seconds,
            "peak_rss_mib": peak.peak / 2**20, "scores": path, "band": 1}


CASES = cases.collect(globals())

if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    cases.add_arguments(parser)
    if not cases.dispatch(parser.parse_args(), CASES):
        sys.exit("run through benchmarks/inference.py --peers")
