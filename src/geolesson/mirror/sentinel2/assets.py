"""Earth Search v1's ``sentinel-2-l2a`` assets: the 35 keys every item carries, as Earth Search writes them.

Titles, roles, media types, ``eo:bands``, ``raster:bands`` and ``gsd`` are those of Earth
Search's real items (compare ``S2A_13TDE_20231008_0_L2A`` and the collection's
``item_assets``). Each asset is either **simulated** (its pixels come from the scene) or a
**placeholder**: a valid file of the declared type and grid that holds no measurement (a
COG or JPEG 2000 of nodata, a metadata stub), so that no href of a mirror item is a 404.

Order of the keys: Earth Search's (the 19 COG, JPEG and metadata assets alphabetically, then
the JPEG 2000 twins of the rasters).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from geolesson.mirror.stac import COG

JP2 = "image/jp2"
JPEG = "image/jpeg"

# Processing baseline 04.00 (January 2022) onwards adds BOA_ADD_OFFSET = -1000 DN:
# reflectance = DN * 0.0001 - 0.1 (Sentinel-2 L2A Product Specification, PSD 14.9, and
# Earth Search's raster:bands). The scale and offset are read from the item, never assumed.
SCALE, OFFSET = 0.0001, -0.1
# Sen2Cor's aerosol optical thickness (at 550 nm) and water vapour maps: DN * 0.001
# (unitless, and cm), offset 0, as Earth Search's raster:bands give them.
ATMOSPHERE_SCALE = 0.001

# key -> (file, title, common name, centre wavelength um, FWHM um, GSD m): Earth Search's eo:bands
SPECTRAL = {
    "coastal": ("B01", "Coastal aerosol (band 1) - 60m", "coastal", 0.443, 0.027, 60),
    "blue": ("B02", "Blue (band 2) - 10m", "blue", 0.49, 0.098, 10),
    "green": ("B03", "Green (band 3) - 10m", "green", 0.56, 0.045, 10),
    "red": ("B04", "Red (band 4) - 10m", "red", 0.665, 0.038, 10),
    "rededge1": ("B05", "Red edge 1 (band 5) - 20m", "rededge", 0.704, 0.019, 20),
    "rededge2": ("B06", "Red edge 2 (band 6) - 20m", "rededge", 0.74, 0.018, 20),
    "rededge3": ("B07", "Red edge 3 (band 7) - 20m", "rededge", 0.783, 0.028, 20),
    "nir": ("B08", "NIR 1 (band 8) - 10m", "nir", 0.842, 0.145, 10),
    "nir08": ("B8A", "NIR 2 (band 8A) - 20m", "nir08", 0.865, 0.033, 20),
    "nir09": ("B09", "NIR 3 (band 9) - 60m", "nir09", 0.945, 0.026, 60),
    "swir16": ("B11", "SWIR 1 (band 11) - 20m", "swir16", 1.61, 0.143, 20),
    "swir22": ("B12", "SWIR 2 (band 12) - 20m", "swir22", 2.19, 0.242, 20),
}

#: the assets whose pixels are simulated (what the book and the common lessons read)
SIMULATED = ("aot", "blue", "green", "nir", "nir08", "red", "scl", "swir16", "swir22", "thumbnail",
             "visual", "wvp")


@dataclass(frozen=True)
class Asset:
    """One asset of an item.

    Attributes:
        key: the asset key (``red``, ``red-jp2``, ``granule_metadata``, ...).
        file: the file name in the item's folder (COGs, thumbnail, metadata) or in its
            JPEG 2000 tile folder (``-jp2`` assets).
        resolution: the grid's pixel size in metres (``proj:shape``/``proj:transform``), or
            None for the thumbnail and metadata.
        count, dtype: bands and data type of a raster.
        fields: the asset's STAC fields other than href and the ``proj:*`` grid, in Earth
            Search's order.
    """

    key: str
    file: str
    media_type: str
    resolution: int | None = None
    count: int = 1
    dtype: str | None = None
    fields: dict = field(default_factory=dict)

    @property
    def simulated(self) -> bool:
        """Whether the mirror simulates this asset's values (``SIMULATED``); if not, it is a placeholder."""
        return self.key in SIMULATED

    @property
    def is_jp2(self) -> bool:
        """Whether this is a JPEG 2000 twin (``<key>-jp2``, media type ``image/jp2``)."""
        return self.media_type == JP2


def eo_band(key: str) -> dict:
    """Earth Search's ``eo:bands`` entry of a spectral band."""
    _, title, common, wl, fwhm, _ = SPECTRAL[key]
    return {"name": key, "common_name": common, "description": title.split(" - ")[0],
            "center_wavelength": wl, "full_width_half_max": fwhm}


def _reflectance_band(gsd: int) -> dict:
    return {"nodata": 0, "data_type": "uint16", "bits_per_sample": 15, "spatial_resolution": gsd,
            "scale": SCALE, "offset": OFFSET}


def _rasters() -> list[Asset]:
    """The 16 raster assets as COGs (a JPEG 2000 twin of each follows), alphabetically by key."""
    out = []
    for key, (file, title, _, _, _, gsd) in SPECTRAL.items():
        out.append(Asset(key, f"{file}.tif", COG, gsd, 1, "uint16", {
            "title": title, "eo:bands": [eo_band(key)], "gsd": gsd,
            "raster:bands": [_reflectance_band(gsd)], "roles": ["data", "reflectance"]}))
    out.append(Asset("aot", "AOT.tif", COG, 20, 1, "uint16", {
        "title": "Aerosol optical thickness (AOT)",
        "raster:bands": [{"nodata": 0, "data_type": "uint16", "bits_per_sample": 15, "spatial_resolution": 20,
                          "scale": ATMOSPHERE_SCALE, "offset": 0}],
        "roles": ["data", "reflectance"]}))
    out.append(Asset("scl", "SCL.tif", COG, 20, 1, "uint8", {
        "title": "Scene classification map (SCL)",
        "raster:bands": [{"nodata": 0, "data_type": "uint8", "spatial_resolution": 20}],
        "roles": ["data", "reflectance"]}))
    out.append(Asset("visual", "TCI.tif", COG, 10, 3, "uint8", {
        "title": "True color image", "eo:bands": [eo_band(k) for k in ("red", "green", "blue")],
        "roles": ["visual"]}))
    out.append(Asset("wvp", "WVP.tif", COG, 20, 1, "uint16", {
        "title": "Water vapour (WVP)",
        "raster:bands": [{"nodata": 0, "data_type": "uint16", "bits_per_sample": 15, "spatial_resolution": 20,
                          "unit": "cm", "scale": ATMOSPHERE_SCALE, "offset": 0}],
        "roles": ["data", "reflectance"]}))
    return sorted(out, key=lambda a: a.key)


def _catalogue() -> dict[str, Asset]:
    rasters = _rasters()
    others = [
        Asset("granule_metadata", "granule_metadata.xml", "application/xml", fields={"roles": ["metadata"]}),
        Asset("thumbnail", "thumbnail.jpg", JPEG, fields={"title": "Thumbnail image", "roles": ["thumbnail"]}),
        Asset("tileinfo_metadata", "tileinfo_metadata.json", "application/json", fields={"roles": ["metadata"]}),
    ]
    first = sorted(rasters + others, key=lambda a: a.key)
    twins = [Asset(f"{a.key}-jp2", a.file.replace(".tif", ".jp2"), JP2, a.resolution, a.count, a.dtype, a.fields)
             for a in rasters]
    return {a.key: a for a in first + twins}


#: every asset of an Earth Search v1 sentinel-2-l2a item, by key, in Earth Search's order
ASSETS: dict[str, Asset] = _catalogue()
#: the placeholders: declared like the real assets, holding no measurement
PLACEHOLDERS = tuple(k for k, a in ASSETS.items() if not a.simulated)
PLACEHOLDER_NOTE = ("PLACEHOLDER in the geolesson offline mirror: a valid file of the declared type and grid "
                    "that holds no measurement (nodata everywhere, or a metadata stub). Not simulated.")
