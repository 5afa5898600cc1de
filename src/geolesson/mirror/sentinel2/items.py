"""STAC collection and items for the simulated scenes, in the Earth Search v1 ``sentinel-2-l2a`` schema."""

from __future__ import annotations

import datetime as dt

import numpy as np
import shapely
from astral import Observer
from astral.sun import azimuth, elevation
from pyproj import Transformer

from geolesson.mirror.sentinel2 import naming
from geolesson.mirror.sentinel2.assets import ASSETS, PLACEHOLDER_NOTE, PLACEHOLDERS, SIMULATED, SPECTRAL, eo_band
from geolesson.mirror.sentinel2.scenario import Acquisition, Scenario, Tile
from geolesson.mirror.stac import LICENSE_ID, LICENSE_LINK, iso

STAC_EXTENSIONS = [
    "https://stac-extensions.github.io/processing/v1.1.0/schema.json",
    "https://stac-extensions.github.io/grid/v1.0.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/view/v1.0.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
]


def asset_grid(tile: Tile, resolution: float) -> tuple[list[int], list[float]]:
    """``proj:shape`` and ``proj:transform`` of the tile's grid at ``resolution`` metres."""
    f = resolution / 10
    return [round(tile.height / f), round(tile.width / f)], list(tile.transform(resolution))[:6]


def collection_dict(scenario: Scenario) -> dict:
    """The ``sentinel-2-l2a`` collection as a STAC dict in Earth Search v1's schema: its spatial
    extent the WGS84 bounds of the scenario's whole MGRS tiles, its temporal extent the calendar's
    first to last overpass, ``item_assets`` from the 35 asset keys (:data:`ASSETS`)."""
    to_ll = Transformer.from_crs(scenario.epsg, 4326, always_xy=True)
    bbox = list(to_ll.transform_bounds(*scenario.region))
    first, last = scenario.acquisitions[0].datetime, scenario.acquisitions[-1].datetime
    item_assets = {key: {"type": a.media_type, **a.fields} for key, a in ASSETS.items()}
    return {
        "type": "Collection",
        "id": scenario.collection,
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/item-assets/v1.0.0/schema.json",
            "https://stac-extensions.github.io/view/v1.0.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/eo/v1.0.0/schema.json",
        ],
        "title": "Sentinel-2 Level-2A (SIMULATED, geolesson offline mirror)",
        "description": (
            "SIMULATED data. Sentinel-2 L2A scenes over south-east Rhodes, Greece, June-September 2023, "
            "around the July 2023 wildfire, generated deterministically by the geolesson offline mirror "
            f"(seed {scenario.seed}) in the schema of Earth Search v1's sentinel-2-l2a collection, on Earth "
            "Search's real calendar over Rhodes (dates, platforms, item IDs, relative orbit "
            f"{scenario.relative_orbit}, processing baseline {scenario.processing_baseline}). "
            "Most items are crops of about 19 x 10-15 km of their MGRS tile; the items listed under full_size "
            "in the scenario cover the whole 109.8 km tile, as real ones do (there only Rhodes is land). "
            f"Every item carries Earth Search's {len(ASSETS)} asset keys. Simulated: {', '.join(SIMULATED)}. "
            f"Placeholders (valid files of the declared type and grid, holding nodata or a metadata stub): "
            f"{', '.join(PLACEHOLDERS)}. Not real Copernicus data."
        ),
        "keywords": ["sentinel", "earth observation", "esa", "simulated"],
        "license": LICENSE_ID,
        "providers": [
            {"name": "geolesson offline mirror", "roles": ["producer", "processor", "host"],
             "description": "Simulated scenes for teaching; no real sensor data."},
        ],
        "extent": {
            "spatial": {"bbox": [bbox]},
            "temporal": {"interval": [[iso(first), iso(last)]]},
        },
        "summaries": {
            "platform": ["sentinel-2a", "sentinel-2b"],
            "constellation": ["sentinel-2"],
            "instruments": ["msi"],
            "gsd": [10, 20, 60],
            "view:off_nadir": [0],
            "eo:bands": [eo_band(k) for k in SPECTRAL],
        },
        "item_assets": item_assets,
        "links": [LICENSE_LINK],
    }


def sun_earth_factor(when: dt.datetime) -> float:
    """Sun-Earth distance correction 1/d^2 (d in astronomical units), as in the L2A metadata's U factor."""
    d = 1 - 0.01673 * np.cos(0.0172 * (when.timetuple().tm_yday - 4))
    return round(float(1 / d**2), 9)


def sun_angles(scenario: Scenario, tile: Tile, when: dt.datetime) -> tuple[float, float]:
    """(azimuth, elevation) of the sun in degrees at the tile's centre at ``when`` (NOAA's
    algorithm via astral, without refraction: 144.36 and 59.07 for S2A_35SNA_20230827_0_L2A,
    whose metadata says 144.364 and 59.067)."""
    x0, y0, x1, y1 = tile.full().bounds()
    lon, lat = Transformer.from_crs(scenario.epsg, 4326, always_xy=True).transform((x0 + x1) / 2, (y0 + y1) / 2)
    observer = Observer(latitude=lat, longitude=lon)
    return azimuth(observer, when), elevation(observer, when, with_refraction=False)


def assets_dict(acq: Acquisition, tile: Tile, base_url: str) -> dict:
    """Every Earth Search asset of the item, with hrefs under ``base_url`` and the tile's grids."""
    folder = f"{base_url.rstrip('/')}/{naming.item_path(acq, tile)}"
    jp2 = f"{base_url.rstrip('/')}/{naming.jp2_path(acq, tile)}"
    out = {}
    for key, a in ASSETS.items():
        asset = {"href": f"{jp2 if a.is_jp2 else folder}/{a.file}", "type": a.media_type}
        # Earth Search's order: the grid before raster:bands (or before roles, without them)
        grid_before = "raster:bands" if "raster:bands" in a.fields else "roles"
        for name, value in a.fields.items():
            if name == grid_before and a.resolution is not None:
                asset["proj:shape"], asset["proj:transform"] = asset_grid(tile, a.resolution)
            asset[name] = value
        if not a.simulated:
            asset["description"] = PLACEHOLDER_NOTE
        out[key] = asset
    return out


def item_dict(scenario: Scenario, acq: Acquisition, tile: Tile, footprint_utm: shapely.Polygon,
              scl_counts: np.ndarray, base_url: str) -> dict:
    """One STAC item; ``scl_counts`` is the SCL histogram (length 12) used for the ``s2:*`` percentages."""
    to_ll = Transformer.from_crs(scenario.epsg, 4326, always_xy=True)
    geom = shapely.transform(shapely.segmentize(footprint_utm, 2000.0),
                             lambda xy: np.column_stack(to_ll.transform(xy[:, 0], xy[:, 1])))
    geom = shapely.set_precision(shapely.normalize(geom), 1e-7)

    counts = np.asarray(scl_counts, dtype="float64")
    total = counts.sum()
    valid = total - counts[0]

    def pct(*classes: int) -> float:
        return round(100.0 * counts[list(classes)].sum() / valid, 6) if valid else 0.0

    sensed = acq.sensed(tile)
    created = sensed + naming.INGESTED_AFTER
    sun_azimuth, sun_elevation = sun_angles(scenario, tile, sensed)
    ids = naming.identifiers(scenario, acq, tile)
    properties = {
        "created": iso(created),
        "platform": acq.platform,
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "eo:cloud_cover": pct(8, 9, 10),
        "proj:epsg": scenario.epsg,
        "mgrs:utm_zone": tile.utm_zone,
        "mgrs:latitude_band": tile.latitude_band,
        "mgrs:grid_square": tile.grid_square,
        "grid:code": f"MGRS-{tile.mgrs}",
        "view:sun_azimuth": round(sun_azimuth, 6),
        "view:sun_elevation": round(sun_elevation, 6),
        "s2:degraded_msi_data_percentage": 0,
        "s2:nodata_pixel_percentage": round(100.0 * counts[0] / total, 6),
        "s2:saturated_defective_pixel_percentage": pct(1),
        "s2:dark_features_percentage": pct(2),
        "s2:cloud_shadow_percentage": pct(3),
        "s2:vegetation_percentage": pct(4),
        "s2:not_vegetated_percentage": pct(5),
        "s2:water_percentage": pct(6),
        "s2:unclassified_percentage": pct(7),
        "s2:medium_proba_clouds_percentage": pct(8),
        "s2:high_proba_clouds_percentage": pct(9),
        "s2:thin_cirrus_percentage": pct(10),
        "s2:snow_ice_percentage": pct(11),
        "s2:product_type": "S2MSI2A",
        "s2:processing_baseline": scenario.processing_baseline,
        "s2:product_uri": ids["s2:product_uri"],
        "s2:generation_time": iso(naming.generation_time(scenario, acq)),
        "s2:datatake_id": ids["s2:datatake_id"],
        "s2:datatake_type": "INS-NOBS",
        "s2:datastrip_id": ids["s2:datastrip_id"],
        "s2:granule_id": ids["s2:granule_id"],
        "s2:reflectance_conversion_factor": sun_earth_factor(sensed),
        "datetime": iso(sensed),
        "s2:sequence": "0",
        "earthsearch:boa_offset_applied": True,
        "processing:software": {"geolesson-mirror": "0.1.0"},
        "updated": iso(created),
    }
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": STAC_EXTENSIONS,
        "id": naming.item_id(acq, tile),
        "collection": scenario.collection,
        "geometry": shapely.geometry.mapping(geom),
        "bbox": [round(v, 7) for v in geom.bounds],
        "properties": properties,
        "assets": assets_dict(acq, tile, base_url),
        "links": [dict(LICENSE_LINK)],
    }
