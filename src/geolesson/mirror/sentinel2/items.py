"""STAC collection and items for the simulated scenes, in the Earth Search v1 ``sentinel-2-l2a`` schema."""

from __future__ import annotations

import datetime as dt

import numpy as np
import shapely
from pyproj import Transformer

from geolesson.mirror.sentinel2.scenario import GSD, MGRS_TILE_PX, Acquisition, Scenario, Tile
from geolesson.mirror.stac import COG, LICENSE_ID, LICENSE_LINK, iso

STAC_EXTENSIONS = [
    "https://stac-extensions.github.io/processing/v1.1.0/schema.json",
    "https://stac-extensions.github.io/grid/v1.0.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/view/v1.0.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
]

# Processing baseline 04.00 (January 2022) onwards adds BOA_ADD_OFFSET = -1000 DN:
# reflectance = DN * 0.0001 - 0.1 (Sentinel-2 L2A Product Specification, PSD 14.9, and
# Earth Search's raster:bands). The scale and offset are read from the item, never assumed.
SCALE, OFFSET = 0.0001, -0.1
PROCESSING_BASELINE = "05.09"

# asset key -> (file, title, common name, centre wavelength um, FWHM um, GSD m)
SPECTRAL = {
    "blue": ("B02", "Blue (band 2) - 10m", "blue", 0.49, 0.098, 10),
    "green": ("B03", "Green (band 3) - 10m", "green", 0.56, 0.045, 10),
    "red": ("B04", "Red (band 4) - 10m", "red", 0.665, 0.038, 10),
    "nir": ("B08", "NIR 1 (band 8) - 10m", "nir", 0.842, 0.145, 10),
    "swir16": ("B11", "SWIR 1 (band 11) - 20m", "swir16", 1.61, 0.143, 20),
    "swir22": ("B12", "SWIR 2 (band 12) - 20m", "swir22", 2.19, 0.242, 20),
}


# Items covering a whole MGRS tile carry only the assets the book reads at full size
# (chapter 3: red + nir; chapters 4-5 read swir22 and scl through the AOI or the whole
# tile), which keeps the mirror within Binder's data budget; crops carry every asset.
ALL_ASSETS = (*SPECTRAL, "scl", "visual", "thumbnail")
FULL_SIZE_ASSETS = ("red", "nir", "swir22", "scl", "thumbnail")


def asset_keys(tile: Tile) -> tuple[str, ...]:
    """The asset keys an item of ``tile`` carries: all of them for a crop, FULL_SIZE_ASSETS for a whole tile."""
    return FULL_SIZE_ASSETS if (tile.width, tile.height) == (MGRS_TILE_PX, MGRS_TILE_PX) else ALL_ASSETS


def eo_band(key: str) -> dict:
    _, title, common, wl, fwhm, _ = SPECTRAL[key]
    return {"name": key, "common_name": common, "description": title.split(" - ")[0],
            "center_wavelength": wl, "full_width_half_max": fwhm}


def item_id(acq: Acquisition, tile: Tile) -> str:
    sat = "S2A" if acq.platform == "sentinel-2a" else "S2B"
    return f"{sat}_{tile.mgrs}_{acq.datetime:%Y%m%d}_0_L2A"


def item_path(acq: Acquisition, tile: Tile) -> str:
    """The item's folder below the file server root, as in Earth Search's ``sentinel-cogs`` bucket."""
    d = acq.datetime
    return (f"sentinel-cogs/sentinel-s2-l2a-cogs/{tile.utm_zone}/{tile.latitude_band}/"
            f"{tile.grid_square}/{d.year}/{d.month}/{item_id(acq, tile)}")


def collection_dict(scenario: Scenario) -> dict:
    to_ll = Transformer.from_crs(scenario.epsg, 4326, always_xy=True)
    bbox = list(to_ll.transform_bounds(*scenario.bounds))
    first, last = scenario.acquisitions[0].datetime, scenario.acquisitions[-1].datetime
    item_assets = {}
    for key, (_, title, _, _, _, gsd) in SPECTRAL.items():
        item_assets[key] = {"type": COG, "title": title, "eo:bands": [eo_band(key)], "gsd": gsd,
                            "raster:bands": [raster_band("uint16", gsd, reflectance=True)], "roles": ["data", "reflectance"]}
    item_assets["scl"] = {"type": COG, "title": "Scene classification map (SCL)",
                          "raster:bands": [raster_band("uint8", 20, reflectance=False)], "roles": ["data", "reflectance"]}
    item_assets["visual"] = {"type": COG, "title": "True color image",
                             "eo:bands": [eo_band(k) for k in ("red", "green", "blue")], "roles": ["visual"]}
    item_assets["thumbnail"] = {"type": "image/jpeg", "title": "Thumbnail image", "roles": ["thumbnail"]}
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
            f"(seed {scenario.seed}) in the schema of Earth Search v1's sentinel-2-l2a collection. "
            "Most items are crops of about 20 x 13-15 km of their MGRS tile and carry a subset of the real assets "
            "(blue, green, red, nir, swir16, swir22, scl, visual, thumbnail); the visual asset is JPEG-compressed. "
            "Items listed under full_size in the scenario cover the whole 109.8 km tile, as real ones do "
            "(there only Rhodes is land), and carry only the assets read at full size: "
            f"{', '.join(FULL_SIZE_ASSETS)}. Not real Copernicus data."
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
            "gsd": [10, 20],
            "view:off_nadir": [0],
            "eo:bands": [eo_band(k) for k in SPECTRAL],
        },
        "item_assets": item_assets,
        "links": [LICENSE_LINK],
    }


def raster_band(dtype: str, gsd: int, reflectance: bool) -> dict:
    band = {"nodata": 0, "data_type": dtype, "spatial_resolution": gsd}
    if reflectance:
        band.update({"bits_per_sample": 15, "scale": SCALE, "offset": OFFSET})
    return band


def sun_earth_factor(when: dt.datetime) -> float:
    """Sun-Earth distance correction 1/d^2 (d in astronomical units), as in the L2A metadata's U factor."""
    d = 1 - 0.01673 * np.cos(0.0172 * (when.timetuple().tm_yday - 4))
    return round(float(1 / d**2), 9)


def item_dict(scenario: Scenario, acq: Acquisition, tile: Tile, footprint_utm: shapely.Polygon,
              scl_counts: np.ndarray, base_url: str) -> dict:
    """One STAC item; ``scl_counts`` is the SCL histogram (length 12) used for the ``s2:*`` percentages."""
    to_ll = Transformer.from_crs(scenario.epsg, 4326, always_xy=True)
    geom = shapely.transform(shapely.segmentize(footprint_utm, 2000.0),
                             lambda xy: np.column_stack(to_ll.transform(xy[:, 0], xy[:, 1])))
    geom = shapely.set_precision(shapely.normalize(geom), 1e-7)
    folder = f"{base_url.rstrip('/')}/{item_path(acq, tile)}"
    iid = item_id(acq, tile)

    counts = np.asarray(scl_counts, dtype="float64")
    total = counts.sum()
    valid = total - counts[0]

    def pct(*classes: int) -> float:
        return round(100.0 * counts[list(classes)].sum() / valid, 6) if valid else 0.0

    created = acq.datetime + dt.timedelta(hours=16, minutes=19)
    t10, t20 = tile.transform(GSD), tile.transform(2 * GSD)
    shape10, shape20 = [tile.height, tile.width], [tile.height // 2, tile.width // 2]

    assets = {}
    for key, (fname, title, _, _, _, gsd) in SPECTRAL.items():
        t, shape = (t10, shape10) if gsd == 10 else (t20, shape20)
        assets[key] = {
            "href": f"{folder}/{fname}.tif", "type": COG, "title": title,
            "eo:bands": [eo_band(key)], "gsd": gsd, "proj:shape": shape, "proj:transform": list(t)[:6],
            "raster:bands": [raster_band("uint16", gsd, reflectance=True)], "roles": ["data", "reflectance"],
        }
    assets["scl"] = {
        "href": f"{folder}/SCL.tif", "type": COG, "title": "Scene classification map (SCL)",
        "proj:shape": shape20, "proj:transform": list(t20)[:6],
        "raster:bands": [raster_band("uint8", 20, reflectance=False)], "roles": ["data", "reflectance"],
    }
    assets["visual"] = {
        "href": f"{folder}/TCI.tif", "type": COG, "title": "True color image",
        "eo:bands": [eo_band(k) for k in ("red", "green", "blue")],
        "proj:shape": shape10, "proj:transform": list(t10)[:6], "roles": ["visual"],
    }
    assets["thumbnail"] = {"href": f"{folder}/thumbnail.jpg", "type": "image/jpeg",
                           "title": "Thumbnail image", "roles": ["thumbnail"]}
    assets = {k: v for k, v in assets.items() if k in asset_keys(tile)}

    sat = "2A" if acq.platform == "sentinel-2a" else "2B"
    stamp = f"{acq.datetime:%Y%m%dT%H%M%S}"
    gen = f"{created:%Y%m%dT%H%M%S}"
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
        "view:sun_azimuth": round(140.0 - 0.25 * (acq.datetime.timetuple().tm_yday - 172), 6),
        "view:sun_elevation": round(74.0 - 0.0025 * (acq.datetime.timetuple().tm_yday - 172) ** 2, 6),
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
        "s2:processing_baseline": PROCESSING_BASELINE,
        "s2:product_uri": f"S{sat}_MSIL2A_{stamp}_N0509_R{scenario.relative_orbit:03d}_T{tile.mgrs}_{gen}.SAFE",
        "s2:generation_time": iso(created),
        "s2:datatake_id": f"GS{sat}_{stamp}_0{acq.index:05d}_N05.09",
        "s2:datatake_type": "INS-NOBS",
        "s2:reflectance_conversion_factor": sun_earth_factor(acq.datetime),
        "datetime": iso(acq.datetime),
        "s2:sequence": "0",
        "earthsearch:boa_offset_applied": True,
        "processing:software": {"geolesson-mirror": "0.1.0"},
        "updated": iso(created),
    }
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": STAC_EXTENSIONS,
        "id": iid,
        "collection": scenario.collection,
        "geometry": shapely.geometry.mapping(geom),
        "bbox": [round(v, 7) for v in geom.bounds],
        "properties": properties,
        "assets": assets,
        "links": [dict(LICENSE_LINK)],
    }
