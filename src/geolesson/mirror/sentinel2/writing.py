"""Write a simulated scene as Cloud-Optimized GeoTIFFs laid out like Earth Search's ``sentinel-cogs``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from PIL import Image
from rasterio.crs import CRS
from rasterio.windows import Window

from geolesson.mirror.sentinel2.assets import ASSETS, ATMOSPHERE_SCALE, OFFSET, SCALE
from geolesson.mirror.sentinel2.scenario import Tile
from geolesson.mirror.sentinel2.simulation import BANDS, Scene

# DEFLATE with the horizontal predictor and internal overviews, as Earth Search's COGs.
# 512 x 512 blocks: with 1024 blocks the 1024-pixel overview of a 2048-pixel crop would be a
# single strip-like block, which rio-cogeo's validator (rightly) rejects.
BLOCKSIZE = 512
OVERVIEW_COUNT = 3
# Level 3: GDAL's libdeflate at level 3 encodes the mirror's bands twice as fast as at level 6
# for 1 % more bytes (a 4096 x 4096 block of the whole-tile B02: 3.1 s and 17.6 MB against
# 6.0 s and 17.4 MB); encoding is most of the build's time.
LOSSLESS = dict(compress="DEFLATE", predictor=2, level=3)
# The true-colour image is JPEG-compressed (YCbCr, quality 85): it is only ever looked at,
# ESA's own TCI is lossy JPEG 2000, and DEFLATE would make it the largest file of a crop.
VISUAL = dict(compress="JPEG", quality=85)


# GDAL's block cache defaults to 5 % of the machine's RAM (1.2 GB on 24 GB); staging and
# converting a whole MGRS tile would fill it, so the writer bounds it.
GDAL_CACHE_MB = 128


def piece_path(path: Path, start: int) -> Path:
    """The staging file of the rows from ``start`` of the COG ``path`` (a block of a whole tile)."""
    return path.with_name(f".{path.stem}.rows-{start:05d}.staging.tif")


def cog_profile(resampling: str, compression: dict = LOSSLESS) -> dict:
    """GDAL COG driver creation options of the mirror's COGs (``compression``: codec options)."""
    return dict(blocksize=BLOCKSIZE, **compression, overview_resampling=resampling,
                overview_count=OVERVIEW_COUNT, bigtiff="NO", num_threads="ALL_CPUS")


class StagedCog:
    """A COG written strip by strip: rows go into an uncompressed GeoTIFF beside ``path``
    (``.<name>.staging.tif``), which :meth:`finish` converts with GDAL's COG driver (the same
    encoder, options and so bytes as writing the whole array at once) and deletes.

    Memory is a strip plus GDAL's cache, whatever the raster's size.
    """

    def __init__(self, path: Path, shape: tuple[int, int, int], dtype: str, tile: Tile, resolution: float,
                 epsg: int, resampling: str, compression: dict = LOSSLESS, rows: tuple[int, int] | None = None):
        self.path, self.options = path, cog_profile(resampling, compression)
        path.parent.mkdir(parents=True, exist_ok=True)
        count, height, width = shape
        # a block of rows only (``rows``, in this raster's pixels): staged as a piece for assemble()
        self.row0 = rows[0] if rows else 0
        self.staging = piece_path(path, self.row0) if rows else path.with_name(f".{path.stem}.staging.tif")
        self._dst = rasterio.open(self.staging, "w", driver="GTiff", width=width,
                                  height=rows[1] - rows[0] if rows else height, count=count, dtype=dtype,
                                  crs=CRS.from_epsg(epsg), nodata=0,
                                  transform=tile.transform(resolution) @ Affine.translation(0, self.row0))

    def write(self, row: int, data: np.ndarray) -> None:
        """Write (bands, rows, W) ``data`` from row ``row`` (of the whole raster) down."""
        self._dst.write(data, window=Window(0, row - self.row0, data.shape[2], data.shape[1]))

    def close(self) -> None:
        """Close the staging GeoTIFF (a piece: kept for :meth:`assemble`)."""
        self._dst.close()

    def assemble(self, starts: list[int]) -> None:
        """Write the pieces staged from rows ``starts`` (this raster's pixels) into this whole raster,
        deleting each, then :meth:`finish`: the same staging file, so the same COG, as one writer's."""
        for start in starts:
            piece = piece_path(self.path, start)
            with rasterio.open(piece) as src:
                self.write(start, src.read())
            piece.unlink()
        self.finish()

    def finish(self) -> None:
        """Close the staging GeoTIFF, convert it with GDAL's COG driver into ``path`` (written
        beside it and renamed into place) and delete the staging file."""
        self._dst.close()
        tmp = self.path.with_suffix(".tmp.tif")
        rasterio.shutil.copy(self.staging, tmp, driver="COG", **self.options)
        tmp.replace(self.path)
        self.staging.unlink()

    def abandon(self) -> None:
        """Close and delete the staging file without writing the COG (after an error)."""
        self._dst.close()
        self.staging.unlink(missing_ok=True)


def to_dn(reflectance: np.ndarray) -> np.ndarray:
    """Reflectance (NaN = nodata) -> uint16 digital numbers, DN = (reflectance - offset) / scale, 0 = nodata."""
    dn = np.rint((reflectance - OFFSET) / SCALE)
    return np.where(np.isnan(reflectance), 0, np.clip(dn, 1, 65535)).astype("uint16")


def to_20m(band: np.ndarray) -> np.ndarray:
    """Average 2 x 2 blocks of 10 m pixels (NaN if any is nodata)."""
    h, w = band.shape
    return band.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))


def to_atmosphere_dn(value: np.ndarray) -> np.ndarray:
    """AOT (unitless) or water vapour (cm), NaN = nodata -> uint16 DN = value / 0.001, 0 = nodata."""
    dn = np.rint(value / ATMOSPHERE_SCALE)
    return np.where(np.isnan(value), 0, np.clip(dn, 1, 65535)).astype("uint16")


def true_colour(reflectance: np.ndarray) -> np.ndarray:
    """(3, H, W) uint8 TCI: red, green, blue reflectance 0-0.2 stretched to 1-255, 0 = nodata (as Sen2Cor's TCI)."""
    rgb = reflectance[[BANDS.index("red"), BANDS.index("green"), BANDS.index("blue")]]
    tci = np.clip(np.rint(rgb / 0.2 * 254) + 1, 1, 255)
    return np.where(np.isnan(rgb), 0, tci).astype("uint8")


# the simulated COGs of an item: asset key -> (data type, overview resampling, compression)
SIMULATED = {**{key: ("uint16", "average", LOSSLESS) for key in (*BANDS, "aot", "wvp")},
             "scl": ("uint8", "nearest", LOSSLESS), "visual": ("uint8", "average", VISUAL)}


def staged_cog(folder: Path, tile: Tile, epsg: int, key: str, rows: tuple[int, int] | None = None) -> StagedCog:
    """The COG of simulated asset ``key`` (:data:`SIMULATED`: the spectral bands B02, B03, B04, B08
    at 10 m and B8A, B11, B12 at 20 m; SCL, AOT and WVP at 20 m; the true-colour TCI at 10 m),
    staged whole, or only the 10 m rows ``rows`` (an even start and stop) as a piece."""
    dtype, resampling, compression = SIMULATED[key]
    asset = ASSETS[key]
    f = asset.resolution // 10
    return StagedCog(folder / asset.file, (3 if key == "visual" else 1, tile.height // f, tile.width // f), dtype,
                     tile, asset.resolution, epsg, resampling, compression,
                     rows=(rows[0] // f, -(-rows[1] // f)) if rows else None)


def assemble_cog(folder: Path, tile: Tile, epsg: int, key: str, starts: list[int]) -> None:
    """Write asset ``key``'s COG from the pieces :class:`SceneWriter` staged from the 10 m rows
    ``starts``, and delete them: the bytes one writer of the whole scene writes."""
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        staged_cog(folder, tile, epsg, key).assemble([start // (ASSETS[key].resolution // 10) for start in starts])


def save_thumbnail(folder: Path, parts: list[np.ndarray]) -> None:
    """``folder/thumbnail.jpg`` from the (3, rows, cols) uint8 parts :class:`SceneWriter` kept, top to bottom."""
    thumbnail = np.concatenate(parts, axis=1)
    Image.fromarray(thumbnail.transpose(1, 2, 0)).save(folder / "thumbnail.jpg", quality=85)


class SceneWriter:
    """The simulated assets of one item (:data:`SIMULATED`, and thumbnail.jpg), written from
    strips of its scene into ``folder``; the placeholders: :mod:`.placeholders`.

    Use as a context manager; call :meth:`write` with consecutive strips from row 0 (each an
    even number of rows, as :meth:`World.strips` gives them). The files appear when the block
    ends without an error; on an error the staged files are deleted.

    With ``rows=(start, stop)`` it writes one block of the scene's rows (a whole tile is built
    by several processes): the strips run from ``start`` to ``stop``, each COG's rows are staged
    as a piece for :func:`assemble_cog`, and the thumbnail's rows are kept in :attr:`thumbnail`
    for :func:`save_thumbnail`.
    """

    def __init__(self, folder: Path, tile: Tile, epsg: int, rows: tuple[int, int] | None = None):
        start, self.stop = rows or (0, tile.height)
        if rows is not None and not (0 <= start < self.stop <= tile.height and start % 2 == 0
                                     and (self.stop % 2 == 0 or self.stop == tile.height)):
            raise ValueError(f"rows={rows!r} must be an even start and stop within the tile's 0..{tile.height}")
        self.folder, self.tile, self.next_row, self.piece = folder, tile, start, rows is not None
        self._cogs = {key: staged_cog(folder, tile, epsg, key, rows) for key in SIMULATED}
        self._bands = {key: (BANDS.index(key), ASSETS[key].resolution // 10) for key in BANDS}
        # the thumbnail from every step-th pixel, decimated before the per-pixel colour mapping (the
        # same pixels as decimating the TCI): a whole tile's full-size TCI would cost GBs of memory
        self._step = max(1, tile.height // 256)
        self.thumbnail: list[np.ndarray] = []

    def write(self, row: int, scene: Scene) -> None:
        """Write the strip ``scene`` of the tile's rows ``row`` .. ``row + its height``.

        Raises:
            ValueError: the strip does not start where the previous one ended, or has an odd height.
        """
        rows = scene.scl.shape[0]
        if row != self.next_row or rows % 2:
            raise ValueError(f"strip at row={row} with {rows} rows: expected an even number of rows "
                             f"from row {self.next_row}")
        self.next_row += rows
        for key, (b, f) in self._bands.items():
            band = scene.reflectance[b]
            if f == 2:
                band = to_20m(band)
            self._cogs[key].write(row // f, to_dn(band)[None])
        self._cogs["scl"].write(row // 2, scene.scl[None, ::2, ::2])
        self._cogs["aot"].write(row // 2, to_atmosphere_dn(scene.aot)[None])
        self._cogs["wvp"].write(row // 2, to_atmosphere_dn(scene.wvp)[None])
        self._cogs["visual"].write(row, true_colour(scene.reflectance))
        first = -row % self._step
        self.thumbnail.append(true_colour(scene.reflectance[:, first::self._step, ::self._step]))

    def __enter__(self) -> "SceneWriter":
        self._env = rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB)
        self._env.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is not None or self.next_row != self.stop:
                for cog in self._cogs.values():
                    cog.abandon()
                if exc_type is None:
                    raise ValueError(f"strips ended at row {self.next_row} of {self.stop}")
                return
            for cog in self._cogs.values():
                cog.close() if self.piece else cog.finish()
        finally:
            self._env.__exit__(None, None, None)
        if not self.piece:
            save_thumbnail(self.folder, self.thumbnail)


def write_scene(folder: Path, scene: Scene, tile: Tile, epsg: int) -> None:
    """The assets of one item from its whole scene (see :class:`SceneWriter`)."""
    with SceneWriter(folder, tile, epsg) as writer:
        writer.write(0, scene)
