"""The placeholder assets: valid files of the declared type and grid that hold no measurement."""

from __future__ import annotations

import datetime as dt
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import rasterio
import shapely

from geolesson.mirror.sentinel2 import naming
from geolesson.mirror.sentinel2.assets import ASSETS, PLACEHOLDERS
from geolesson.mirror.sentinel2.items import item_dict
from geolesson.mirror.sentinel2.placeholders import write_placeholders
from geolesson.mirror.sentinel2.scenario import Tile


def test_placeholders_are_valid_files_of_the_declared_grid_and_type(scenario, tmp_path):
    (acq,) = [a for a in scenario.acquisitions if a.datetime.date() == dt.date(2023, 7, 13)]
    crop = scenario.tiles[0]
    tile = Tile(crop.mgrs, crop.x_min, crop.y_max, 240, 180, crop.origin_x, crop.origin_y)
    item = item_dict(scenario, acq, tile, shapely.box(*tile.bounds()), [0, 0, 0, 0, 1] + [0] * 7,
                     base_url=str(tmp_path))
    write_placeholders(tmp_path / naming.item_path(acq, tile), tmp_path / naming.jp2_path(acq, tile),
                       scenario, acq, tile)
    assert "coastal" in PLACEHOLDERS and "red-jp2" in PLACEHOLDERS and "red" not in PLACEHOLDERS
    for key in PLACEHOLDERS:
        asset = item["assets"][key]
        assert "PLACEHOLDER" in asset["description"]
        if asset["type"] == "application/xml":
            root = ET.parse(asset["href"]).getroot()
            assert naming.identifiers(scenario, acq, tile)["s2:granule_id"] in ET.tostring(root, encoding="unicode")
            continue
        if asset["type"] == "application/json":
            assert json.loads(Path(asset["href"]).read_text())["gridSquare"] == "NA"
            continue
        with rasterio.open(asset["href"]) as ds:
            assert ds.driver == ("JP2OpenJPEG" if asset["type"] == "image/jp2" else "GTiff"), key
            assert [ds.height, ds.width] == asset["proj:shape"], key
            assert list(ds.transform)[:6] == asset["proj:transform"], key
            assert ds.crs.to_epsg() == scenario.epsg
            # COGs declare nodata 0; JPEG 2000 files, like ESA's, leave it to raster:bands
            assert ds.nodata == (0 if ds.driver == "GTiff" else None)
            assert ds.count == ASSETS[key].count and ds.dtypes[0] == ASSETS[key].dtype
            assert not ds.read().any()  # nodata everywhere: no pretend measurement
            if ds.driver == "GTiff":
                assert "PLACEHOLDER" in ds.tags() and ds.overviews(1)
    assert not set(os.listdir(tmp_path / naming.item_path(acq, tile))) & {"B02.tif", "SCL.tif", "TCI.tif"}
