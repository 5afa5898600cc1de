"""STAC collection and items for the simulated Sentinel-1 passes, in Planetary Computer's
``sentinel-1-rtc`` schema.

Field by field as Planetary Computer serves them (its items and planetary-computer-tasks'
``datasets/sentinel-1-rtc``): ``proj:epsg`` an integer (no ``proj:code``), ``proj:shape``
[rows, cols] with ``s1:shape`` its reverse [cols, rows], a 9-number ``proj:transform``,
string-typed ``s1:datatake_id`` / ``s1:slice_number`` / ``s1:total_slices``,
``start_datetime`` / ``end_datetime`` written with a space instead of ``T``, ``raster:bands``
with nodata -32768 and no scale/offset, no ``eo:*`` and no ``gsd``, and a ``derived_from``
link to the GRD item the RTC product was made from.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import shapely
from pyproj import Transformer

from geolesson.mirror.sentinel1.scenario import PIXEL_SPACING, Pass, S1Scenario
from geolesson.mirror.sentinel1.simulation import LOOKS, NODATA
from geolesson.mirror.stac import COG, LICENSE_ID, LICENSE_LINK, iso  # simulated data: the book's licence

GRD_COLLECTION = "sentinel-1-grd"
STAC_EXTENSIONS = [
    "https://stac-extensions.github.io/sar/v1.0.0/schema.json",
    "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/file/v2.0.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
]
PLATFORM = "SENTINEL-1A"
INTERNATIONAL_DESIGNATOR = "2014-016A"  # Sentinel-1A's COSPAR id
# Datatake ids: the real one of absolute orbit 53498 (0x067DF2) and about two datatakes per orbit
REFERENCE_DATATAKE, DATATAKES_PER_ORBIT = 0x067DF2, 2

POL_INFO = {
    "vv": ("VV: vertical transmit, vertical receive", "vertical", "vertical"),
    "vh": ("VH: vertical transmit, horizontal receive", "vertical", "horizontal"),
    "hh": ("HH: horizontal transmit, horizontal receive", "horizontal", "horizontal"),
    "hv": ("HV: horizontal transmit, vertical receive", "horizontal", "vertical"),
}
# Planetary Computer's default rendering of RTC items (its rendered_preview and tilejson
# hrefs): three band expressions of linear vv and vh, rescaled to 0-0.8, 0-1 and 0-1
PREVIEW_EXPRESSION = (
    "0.03 + log (10e-4 - log (0.05 / (0.02 + 2 * vv)));"
    "0.05 + exp (0.25 * (log (0.01 + 2 * vv) + log (0.02 + 5 * vh)));"
    "1 - log (0.05 / (0.045 - 0.9 * vv))"
)
PREVIEW_RESCALE = ((0.0, 0.8), (0.0, 1.0), (0.0, 1.0))


def raster_band() -> dict:
    """The ``raster:bands`` entry of a gamma0 asset: float32, nodata :data:`NODATA`, 10 m, no scale or offset."""
    return {"nodata": NODATA, "data_type": "float32", "spatial_resolution": PIXEL_SPACING}


def data_asset(pol: str) -> dict:
    """The STAC asset (without href) of polarization ``pol`` (``"vv"`` or ``"vh"``) as Planetary
    Computer writes it, labelled SIMULATED; KeyError for another polarization."""
    title, tx, rx = POL_INFO[pol]
    return {
        "type": COG, "roles": ["data"], "title": title,
        "description": (f"Terrain-corrected gamma naught values of signal transmitted with {tx} polarization "
                        f"and received with {rx} polarization with radiometric terrain correction applied. "
                        "SIMULATED (geolesson offline mirror)."),
        "raster:bands": [raster_band()],
    }


def pc_time(t: dt.datetime) -> str:
    """Planetary Computer's ``start_datetime`` form: ``2024-04-19 04:59:04.220006+00:00`` (a space, not ``T``)."""
    return t.astimezone(dt.timezone.utc).isoformat(sep=" ", timespec="microseconds")


def datatake(p: Pass) -> int:
    """The datatake id of a pass (an integer; ``grd_id`` writes it in hex): numbered on from a real
    one, two per orbit, one per area."""
    return REFERENCE_DATATAKE + DATATAKES_PER_ORBIT * (p.absolute_orbit - 53498) + p.area.index


def grd_id(p: Pass) -> str:
    """The GRD product's name (ESA's naming: mission, mode, product type + resolution, level +
    class + polarisation, start, stop, absolute orbit, datatake id in hex)."""
    return (f"S1A_IW_GRDH_1SDV_{p.start:%Y%m%dT%H%M%S}_{p.end:%Y%m%dT%H%M%S}_"
            f"{p.absolute_orbit:06d}_{datatake(p):06X}")


def item_id(p: Pass) -> str:
    """Planetary Computer's item id: the GRD product's name with ``_rtc``."""
    return f"{grd_id(p)}_rtc"


def product_folder(p: Pass) -> str:
    """The item's folder below the file server root, as in Planetary Computer's ``sentinel1-grd-rtc`` container.

    The last 4 hex digits are the product's unique id (its CRC in ESA's SAFE name).
    """
    crc = hashlib.sha256(grd_id(p).encode()).hexdigest()[:4].upper()
    d = p.start
    return f"sentinel1-grd-rtc/GRD/{d.year}/{d.month}/{d.day}/IW/DV/{grd_id(p)}_{crc}"


def asset_paths(p: Pass) -> dict[str, str]:
    """Asset key -> path below the file server root."""
    folder = product_folder(p)
    return {"vv": f"{folder}/measurement/iw-vv.rtc.tiff", "vh": f"{folder}/measurement/iw-vh.rtc.tiff",
            "rendered_preview": f"{folder}/preview/rendered-preview.png"}


def _to_lonlat(epsg: int, geom: shapely.Geometry) -> shapely.Geometry:
    to_ll = Transformer.from_crs(epsg, 4326, always_xy=True)
    geom = shapely.transform(shapely.segmentize(geom, 2000.0),
                             lambda xy: np.column_stack(to_ll.transform(xy[:, 0], xy[:, 1])))
    return shapely.set_precision(shapely.normalize(geom), 1e-7)


def item_dict(scenario: S1Scenario, p: Pass, footprint_utm: shapely.Polygon, files: dict[str, dict]) -> dict:
    """One STAC item; ``files`` maps asset key -> ``{"file:size": bytes, "file:checksum": md5 hex}``.

    Asset hrefs are relative to the file server root (the loader makes them absolute); the
    ``derived_from`` link is relative to the API root, as the STAC API resolves it.
    """
    a = p.area
    geom = _to_lonlat(a.epsg, footprint_utm)
    paths = asset_paths(p)
    assets = {}
    for pol in ("vh", "vv"):
        assets[pol] = {"href": paths[pol], **files[pol], **data_asset(pol)}
    assets["rendered_preview"] = {
        "title": "Rendered preview", "rel": "preview", "href": paths["rendered_preview"],
        "roles": ["overview"], "type": "image/png",
        "description": ("Planetary Computer's default rendering of VV and VH, prerendered as a PNG "
                        "(the mirror has no tiler)."),
    }
    x0, y0, x1, y1 = a.bounds()
    properties = {
        "datetime": iso(p.datetime),
        "platform": PLATFORM,
        "s1:shape": [a.width, a.height],
        "proj:bbox": [x0, y0, x1, y1],
        "proj:epsg": a.epsg,
        "proj:shape": [a.height, a.width],
        "end_datetime": pc_time(p.end),
        "constellation": "Sentinel-1",
        "s1:resolution": "high",
        "proj:transform": [*list(a.transform())[:6], 0.0, 0.0, 1.0],
        "s1:datatake_id": str(datatake(p)),
        "start_datetime": pc_time(p.start),
        "s1:orbit_source": "PREORB",
        "s1:slice_number": str(p.slice_number),
        "s1:total_slices": str(p.total_slices),
        "sar:looks_range": 5,
        "sat:orbit_state": p.orbit_state,
        "sar:product_type": "GRD",
        "sar:looks_azimuth": 1,
        "sar:polarizations": ["VV", "VH"],
        "sar:frequency_band": "C",
        "sat:absolute_orbit": p.absolute_orbit,
        "sat:relative_orbit": p.relative_orbit,
        "s1:processing_level": "1",
        "sar:instrument_mode": "IW",
        "sar:center_frequency": 5.405,
        "sar:resolution_range": 20,
        "s1:product_timeliness": "Fast-24h",
        "sar:resolution_azimuth": 22,
        "sar:pixel_spacing_range": 10,
        "sar:observation_direction": "right",
        "sar:pixel_spacing_azimuth": 10,
        "sar:looks_equivalent_number": LOOKS,
        "s1:instrument_configuration_ID": "7",
        "sat:platform_international_designator": INTERNATIONAL_DESIGNATOR,
    }
    return {
        "id": item_id(p),
        "bbox": [round(v, 7) for v in geom.bounds],
        "type": "Feature",
        "links": [
            dict(LICENSE_LINK),
            {"rel": "derived_from", "href": f"collections/{GRD_COLLECTION}/items/{grd_id(p)}",
             "type": "application/json", "title": "Sentinel 1 GRD Item"},
        ],
        "assets": assets,
        "geometry": shapely.geometry.mapping(geom),
        "collection": scenario.collection,
        "properties": properties,
        "stac_extensions": STAC_EXTENSIONS,
        "stac_version": "1.0.0",
    }


def collection_dict(scenario: S1Scenario) -> dict:
    """The ``sentinel-1-rtc`` collection: Planetary Computer's template, labelled SIMULATED."""
    boxes = []
    for a in scenario.areas:
        to_ll = Transformer.from_crs(a.epsg, 4326, always_xy=True)
        boxes.append([round(v, 6) for v in to_ll.transform_bounds(*a.bounds())])
    union = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]
    first = min(p.start for p in scenario.passes)
    last = max(p.end for p in scenario.passes)
    names = " and ".join(a.name.title() for a in scenario.areas)
    return {
        "type": "Collection",
        "id": scenario.collection,
        "stac_version": "1.0.0",
        "title": "Sentinel 1 Radiometrically Terrain Corrected (RTC) (SIMULATED, geolesson offline mirror)",
        "description": (
            f"SIMULATED data. Sentinel-1A IW dual-polarisation (VV, VH) gamma0 backscatter over {names}, "
            f"April-May 2023, from one ascending and one descending track per area, generated deterministically "
            f"by the geolesson offline mirror (seed {scenario.seed}) in the schema of Planetary Computer's "
            "sentinel-1-rtc collection. Items are 15 km crops of a slice, in the area's UTM zone; pixels are "
            "float32 linear gamma0 power with nodata -32768, with gamma speckle of 4.4 equivalent looks. "
            "The land cover the backscatter follows is committed as vectors (data/<area>_landcover_true.geojson, "
            "property class: water, urban, vegetation). The derived_from GRD items are not mirrored. "
            "Not real Copernicus data."
        ),
        "links": [dict(LICENSE_LINK)],
        "stac_extensions": [
            "https://stac-extensions.github.io/sar/v1.0.0/schema.json",
            "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
            "https://stac-extensions.github.io/item-assets/v1.0.0/schema.json",
        ],
        "item_assets": {pol: data_asset(pol) for pol in ("hh", "hv", "vh", "vv")},
        "extent": {"spatial": {"bbox": [union, *boxes]},
                   "temporal": {"interval": [[iso(first), iso(last)]]}},
        "license": LICENSE_ID,
        "keywords": ["ESA", "Copernicus", "Sentinel", "C-Band", "SAR", "RTC", "simulated"],
        "providers": [
            {"name": "geolesson offline mirror", "roles": ["producer", "processor", "host"],
             "description": "Simulated scenes for teaching; no real sensor data."},
        ],
        "summaries": {
            "platform": [PLATFORM],
            "constellation": ["Sentinel-1"],
            "s1:resolution": ["high"],
            "sar:looks_range": [5],
            "sat:orbit_state": ["ascending", "descending"],
            "sar:product_type": ["GRD"],
            "sar:looks_azimuth": [1],
            "sar:polarizations": [["VV", "VH"]],
            "sar:frequency_band": ["C"],
            "sar:instrument_mode": ["IW"],
            "sar:center_frequency": [5.405],
            "sar:resolution_range": [20],
            "sar:resolution_azimuth": [22],
            "sar:pixel_spacing_range": [10],
            "sar:observation_direction": ["right"],
            "sar:pixel_spacing_azimuth": [10],
            "sar:looks_equivalent_number": [LOOKS],
            "sat:platform_international_designator": [INTERNATIONAL_DESIGNATOR],
        },
    }
