"""Bad input gets a clear error: one table, one row per mistake a learner or a tester makes.

Each row calls a public function (or the CLI, or sets an environment variable) with one bad
value and names the exception (or warning) expected and the words its message must hold: the
parameter and the value, so the learner sees what to fix. Nothing is silently clipped,
dropped or filled.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from tests.fixtures import random_cog, run_cli, s2_scene


class CliExit(Exception):
    """The CLI ended with a non-zero exit code; the message is what it printed on stderr."""

    def __init__(self, code, stderr):
        super().__init__(f"exit {code}: {stderr}")
        self.code = code


def cli(*argv):
    code, err = run_cli(*argv)
    if code:
        raise CliExit(code, err)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    """Small things the rows use: a COG, its CogInfo, a text file, a Parquet without geometry, items."""
    from geolesson import cog

    tmp = tmp_path_factory.mktemp("bad_inputs")
    random_cog(tmp / "small.tif", shape=(300, 200), blocksize=128, overview_count=1)
    (tmp / "notes.tif").write_text("this is not a GeoTIFF")
    (tmp / "file").write_text("a file, not a folder")
    import pandas as pd

    pd.DataFrame({"item_id": ["a"], "row_off": [0]}).to_parquet(tmp / "no_geometry.parquet")
    asset = {"href": "x/B04.tif", "raster:bands": [{"scale": 0.0001, "offset": -0.1, "nodata": 0}]}
    scene = s2_scene(tmp, shape10=(1536, 1200), bands=("red",), with_swir=False)[0].to_dict()
    return {"tmp": tmp, "info": cog.inspect(tmp / "small.tif"), "asset": asset, "scene": scene,
            "item": {"type": "Feature", "id": "S2X", "assets": {"red": asset}}}


def _read_chip(c, row_off=0, col_off=0, height=256, width=256):
    from geolesson import chips

    row = {"item_id": c["scene"]["id"], "row_off": row_off, "col_off": col_off, "height": height, "width": width}
    return chips.read_chip(row, items=[c["scene"]])


def _ax():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.figure().add_subplot()


def _footprints_by(column):
    import geopandas as gpd
    from shapely.geometry import box

    from geolesson import plot

    gdf = gpd.GeoDataFrame({"tile": ["a"]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:4326")
    plot.footprints(_ax(), gdf, by=column)


def _dask(a):
    import dask.array as da

    return da.from_array(np.asarray(a, dtype="float64"), chunks=2)


def _from_env(what):
    from geolesson import _home, sources
    from geolesson.mirror.server import database, ports

    return {
        "api_port": lambda: ports.default_port("api"),
        "pg_port": lambda: ports.default_port("pg"),
        "root": _home.project_root,
        "home": _home.mirror_home,
        "bindir": database.find_bindir,
        "source": lambda: sources.stac_api_url("earth-search"),
    }[what]()


R = np.full((2, 2), 0.05)
N = np.full((2, 2), 0.3)
SCL = np.array([[4, 5], [8, 9]], dtype="uint8")
IMG = np.ones((3, 4, 4))

# (id, call(ctx), environment, expected exception or warning, words the message must contain)
CASES = [
    # -- sources -------------------------------------------------------------------------------
    ("mode-offline", lambda c: __import__("geolesson.sources").sources.source_mode("offline"), {}, ValueError, ["mode", "'offline'"]),
    ("mode-empty", lambda c: __import__("geolesson.sources").sources.source_mode(""), {}, ValueError, ["mode", "''"]),
    ("mode-uppercase", lambda c: __import__("geolesson.sources").sources.source_mode("MIRROR"), {}, ValueError, ["mode", "'MIRROR'"]),
    ("mode-none-str", lambda c: __import__("geolesson.sources").sources.source_mode("None"), {}, ValueError, ["mode", "'None'"]),
    ("provider-usgs", lambda c: __import__("geolesson.sources").sources.stac_api_url("usgs", mode="live"), {}, ValueError, ["provider", "'usgs'"]),
    ("provider-empty", lambda c: __import__("geolesson.sources").sources.stac_api_url("", mode="live"), {}, ValueError, ["provider", "''"]),
    ("provider-case", lambda c: __import__("geolesson.sources").sources.stac_api_url("Earth-Search", mode="live"), {}, ValueError, ["provider", "'Earth-Search'"]),
    ("provider-modifier", lambda c: __import__("geolesson.sources").sources.item_modifier("aws", mode="live"), {}, ValueError, ["provider", "'aws'"]),
    ("provider-sign", lambda c: __import__("geolesson.sources").sources.sign("http://x/a.tif", "pc", mode="live"), {}, ValueError, ["provider", "'pc'"]),
    ("provider-open-client", lambda c: __import__("geolesson.sources").sources.open_client("stac", mode="live"), {}, ValueError, ["provider", "'stac'"]),
    ("counts-live", lambda c: __import__("geolesson.sources").sources.request_counts(mode="live"), {}, ValueError, ["mode", "'live'"]),
    ("reset-live", lambda c: __import__("geolesson.sources").sources.reset_request_counts(mode="live"), {}, ValueError, ["mode", "'live'"]),
    ("counts-bad-mode", lambda c: __import__("geolesson.sources").sources.request_counts(mode="offline"), {}, ValueError, ["mode", "'offline'"]),
    ("data-path-dotdot", lambda c: __import__("geolesson.sources").sources.data_path("../pyproject.toml"), {}, ValueError, ["name", "'../pyproject.toml'"]),
    ("data-path-empty", lambda c: __import__("geolesson.sources").sources.data_path(""), {}, ValueError, ["name", "''"]),
    ("data-path-missing", lambda c: __import__("geolesson.sources").sources.data_path("rhodes.geojson"), {}, FileNotFoundError, ["name", "'rhodes.geojson'"]),
    # -- environment variables --------------------------------------------------------------------
    ("env-source", lambda c: _from_env("source"), {"GEOLESSON_SOURCE": "offline"}, ValueError, ["GEOLESSON_SOURCE", "'offline'"]),
    ("env-source-empty", lambda c: _from_env("source"), {"GEOLESSON_SOURCE": ""}, ValueError, ["GEOLESSON_SOURCE", "''"]),
    ("env-port-abc", lambda c: _from_env("api_port"), {"GEOLESSON_MIRROR_PORT": "abc"}, ValueError, ["GEOLESSON_MIRROR_PORT", "'abc'", "1024..65535"]),
    ("env-port-99999", lambda c: _from_env("api_port"), {"GEOLESSON_MIRROR_PORT": "99999"}, ValueError, ["GEOLESSON_MIRROR_PORT", "'99999'"]),
    ("env-port-negative", lambda c: _from_env("api_port"), {"GEOLESSON_MIRROR_PORT": "-5"}, ValueError, ["GEOLESSON_MIRROR_PORT", "'-5'"]),
    ("env-port-zero", lambda c: _from_env("api_port"), {"GEOLESSON_MIRROR_PORT": "0"}, ValueError, ["GEOLESSON_MIRROR_PORT", "'0'"]),
    ("env-port-privileged", lambda c: _from_env("api_port"), {"GEOLESSON_MIRROR_PORT": "80"}, ValueError, ["GEOLESSON_MIRROR_PORT", "'80'"]),
    ("env-port-float", lambda c: _from_env("api_port"), {"GEOLESSON_MIRROR_PORT": "8765.5"}, ValueError, ["GEOLESSON_MIRROR_PORT", "'8765.5'"]),
    ("env-port-empty", lambda c: _from_env("api_port"), {"GEOLESSON_MIRROR_PORT": ""}, ValueError, ["GEOLESSON_MIRROR_PORT", "''"]),
    ("env-pg-port-abc", lambda c: _from_env("pg_port"), {"GEOLESSON_MIRROR_PG_PORT": "abc"}, ValueError, ["GEOLESSON_MIRROR_PG_PORT", "'abc'"]),
    ("env-pg-port-70000", lambda c: _from_env("pg_port"), {"GEOLESSON_MIRROR_PG_PORT": "70000"}, ValueError, ["GEOLESSON_MIRROR_PG_PORT", "'70000'"]),
    ("env-root-nonexistent", lambda c: _from_env("root"), {"GEOLESSON_ROOT": "/nonexistent"}, FileNotFoundError, ["GEOLESSON_ROOT", "'/nonexistent'"]),
    ("env-root-not-checkout", lambda c: _from_env("root"), {"GEOLESSON_ROOT": "/tmp"}, FileNotFoundError, ["GEOLESSON_ROOT", "'/tmp'"]),
    ("env-mirror-dir-empty", lambda c: _from_env("home"), {"GEOLESSON_MIRROR_DIR": ""}, ValueError, ["GEOLESSON_MIRROR_DIR", "''"]),
    ("env-mirror-dir-file", lambda c: _from_env("home"), {"GEOLESSON_MIRROR_DIR": "{tmp}/file"}, ValueError, ["GEOLESSON_MIRROR_DIR", "/file'"]),
    ("env-pg-bindir", lambda c: _from_env("bindir"), {"GEOLESSON_PG_BINDIR": "/nonexistent/bin"}, RuntimeError, ["GEOLESSON_PG_BINDIR", "'/nonexistent/bin'"]),
    # -- the CLI ---------------------------------------------------------------------------------
    ("cli-status-force", lambda c: cli("mirror", "status", "--force"), {}, CliExit, ["unrecognized arguments", "--force"]),
    ("cli-stop-force", lambda c: cli("mirror", "stop", "--force"), {}, CliExit, ["unrecognized arguments", "--force"]),
    ("cli-start-workers", lambda c: cli("mirror", "start", "--workers", "2"), {}, CliExit, ["unrecognized arguments", "--workers"]),
    ("cli-workers-negative", lambda c: cli("mirror", "build", "--workers", "-1"), {}, CliExit, ["--workers", "-1", "1.."]),
    ("cli-workers-zero", lambda c: cli("mirror", "build", "--workers", "0"), {}, CliExit, ["--workers", "0 is not allowed", "1.."]),
    ("cli-workers-1000", lambda c: cli("mirror", "build", "--workers", "1000"), {}, CliExit, ["--workers", "1000", "1.."]),
    ("cli-workers-abc", lambda c: cli("mirror", "build", "--workers", "abc"), {}, CliExit, ["--workers", "'abc'"]),
    ("cli-workers-float", lambda c: cli("mirror", "build", "--workers", "2.5"), {}, CliExit, ["--workers", "'2.5'"]),
    ("cli-unknown-action", lambda c: cli("mirror", "restart"), {}, CliExit, ["invalid choice", "'restart'"]),
    ("cli-no-action", lambda c: cli("mirror"), {}, CliExit, ["required", "{build,start,stop,status,verify}"]),
    ("cli-unknown-command", lambda c: cli("serve"), {}, CliExit, ["invalid choice", "'serve'"]),
    ("cli-check-option", lambda c: cli("check", "--verbose"), {}, CliExit, ["unrecognized arguments", "--verbose"]),
    ("cli-start-bad-port", lambda c: cli("mirror", "start"), {"GEOLESSON_MIRROR_PORT": "abc", "GEOLESSON_MIRROR_DIR": "{tmp}/m1"},
     CliExit, ["GEOLESSON_MIRROR_PORT", "'abc'"]),
    ("cli-start-bad-pg-port", lambda c: cli("mirror", "start"), {"GEOLESSON_MIRROR_PG_PORT": "-5", "GEOLESSON_MIRROR_DIR": "{tmp}/m2"},
     CliExit, ["GEOLESSON_MIRROR_PG_PORT", "'-5'"]),
    ("cli-build-bad-root", lambda c: cli("mirror", "build"), {"GEOLESSON_ROOT": "/nonexistent"}, CliExit, ["GEOLESSON_ROOT", "'/nonexistent'"]),
    # -- cog -------------------------------------------------------------------------------------
    ("inspect-int", lambda c: __import__("geolesson.cog").cog.inspect(123), {}, TypeError, ["href", "123"]),
    ("inspect-none", lambda c: __import__("geolesson.cog").cog.inspect(None), {}, TypeError, ["href", "None"]),
    ("inspect-missing", lambda c: __import__("geolesson.cog").cog.inspect(c["tmp"] / "nope.tif"), {}, rasterio.errors.RasterioIOError, ["href", "nope.tif"]),
    ("inspect-not-tiff", lambda c: __import__("geolesson.cog").cog.inspect(c["tmp"] / "notes.tif"), {}, rasterio.errors.RasterioIOError, ["href", "notes.tif"]),
    ("inspect-404", lambda c: __import__("geolesson.cog").cog.inspect(__import__("geolesson.sources").sources.mirror_state()["files_url"] + "no/such.tif"), {},
     rasterio.errors.RasterioIOError, ["href", "no/such.tif"]),
    ("blocks-info-tuple", lambda c: __import__("geolesson.cog").cog.blocks_touched((512, 512), Window(0, 0, 1, 1)), {}, TypeError, ["info", "(512, 512)"]),
    ("blocks-window-tuple", lambda c: __import__("geolesson.cog").cog.blocks_touched(c["info"], (0, 0, 10, 10)), {}, TypeError, ["window", "(0, 0, 10, 10)"]),
    ("blocks-window-none", lambda c: __import__("geolesson.cog").cog.blocks_touched(c["info"], None), {}, TypeError, ["window", "None"]),
    ("blocks-window-str", lambda c: __import__("geolesson.cog").cog.blocks_touched(c["info"], "0 0 10 10"), {}, TypeError, ["window", "'0 0 10 10'"]),
    ("count-reads-path", lambda c: __import__("geolesson.cog").cog.count_reads(Path("/data/B04.tif")).__enter__(), {}, TypeError, ["href", "PosixPath"]),
    ("count-reads-int", lambda c: __import__("geolesson.cog").cog.count_reads(7).__enter__(), {}, TypeError, ["href", "7"]),
    ("count-reads-local", lambda c: __import__("geolesson.cog").cog.count_reads("/data/B04.tif").__enter__(), {}, ValueError, ["href", "'/data/B04.tif'"]),
    # -- indices ---------------------------------------------------------------------------------
    ("ndvi-uint16", lambda c: __import__("geolesson.indices").indices.ndvi(R.astype("uint16"), N), {}, ValueError, ["red", "uint16"]),
    ("ndvi-int-nir", lambda c: __import__("geolesson.indices").indices.ndvi(R, (N * 1e4).astype("int32")), {}, ValueError, ["nir", "int32"]),
    ("ndvi-shapes", lambda c: __import__("geolesson.indices").indices.ndvi(R, np.full((3, 2), 0.3)), {}, ValueError, ["nir", "red", "(3, 2)"]),
    ("ndvi-float-dn", lambda c: __import__("geolesson.indices").indices.ndvi(R * 1e4 + 1000, N * 1e4 + 1000), {}, Warning, ["red", "1500", "reflectance"]),
    ("ndvi-float-dn-dask", lambda c: __import__("geolesson.indices").indices.ndvi(_dask(R * 1e4 + 1000), _dask(N)).compute(), {}, Warning, ["red", "1500", "Dask chunk"]),
    ("nbr-uint16", lambda c: __import__("geolesson.indices").indices.nbr(N, R.astype("uint16")), {}, ValueError, ["swir22", "uint16"]),
    ("nbr-float-dn", lambda c: __import__("geolesson.indices").indices.nbr(N * 1e4, R), {}, Warning, ["nir", "3000"]),
    ("reflectance-no-scale", lambda c: __import__("geolesson.indices").indices.reflectance(np.ones(2, "uint16"), {"href": "a.tif", "raster:bands": [{}]}), {}, ValueError, ["scale", "a.tif"]),
    ("reflectance-asset-str", lambda c: __import__("geolesson.indices").indices.reflectance(np.ones(2, "uint16"), "red"), {}, TypeError, ["asset", "str"]),
    ("reflectance-dn-strings", lambda c: __import__("geolesson.indices").indices.reflectance(np.array(["a"]), c["asset"]), {}, ValueError, ["dn", "<U1"]),
    ("reflectance-band-range", lambda c: __import__("geolesson.indices").indices.reflectance(np.ones(2, "uint16"), c["asset"], band=3), {}, ValueError, ["band=3"]),
    ("scl-float", lambda c: __import__("geolesson.indices").indices.cloud_mask(SCL.astype("float64")), {}, ValueError, ["SCL", "float64"]),
    ("scl-values", lambda c: __import__("geolesson.indices").indices.cloud_mask(np.array([4, 255], dtype="uint8")), {}, ValueError, ["SCL values", "255"]),
    ("scl-classes", lambda c: __import__("geolesson.indices").indices.scl_mask(SCL, [12]), {}, ValueError, ["classes", "[12]"]),
    ("cloud-classes", lambda c: __import__("geolesson.indices").indices.cloud_mask(SCL, classes=[99]), {}, ValueError, ["classes", "[99]"]),
    ("valid-exclude", lambda c: __import__("geolesson.indices").indices.valid_mask(SCL, exclude=[-1]), {}, ValueError, ["exclude", "[-1]"]),
    ("asset-missing-key", lambda c: __import__("geolesson.indices").indices.asset(c["item"], "nir"), {}, ValueError, ["S2X", "'nir'"]),
    ("asset-item-str", lambda c: __import__("geolesson.indices").indices.asset("S2X", "red"), {}, TypeError, ["item", "str"]),
    ("severity-int", lambda c: __import__("geolesson.indices").indices.burn_severity(np.array([270])), {}, ValueError, ["dnbr", "int64"]),
    ("area-negative", lambda c: __import__("geolesson.indices").indices.burned_area_ha(np.ones((2, 2), bool), -10), {}, ValueError, ["resolution_m", "-10"]),
    ("area-three", lambda c: __import__("geolesson.indices").indices.burned_area_ha(np.ones((2, 2), bool), (10, 10, 10)), {}, ValueError, ["resolution_m", "(10, 10, 10)"]),
    ("area-float-mask", lambda c: __import__("geolesson.indices").indices.burned_area_ha(np.ones((2, 2)), 10), {}, ValueError, ["mask", "float64"]),
    # -- plot ------------------------------------------------------------------------------------
    ("stretch-1d", lambda c: __import__("geolesson.plot").plot.stretch(np.arange(5)), {}, ValueError, ["array", "(5,)"]),
    ("stretch-4d", lambda c: __import__("geolesson.plot").plot.stretch(np.ones((2, 2, 2, 2))), {}, ValueError, ["array", "(2, 2, 2, 2)"]),
    ("stretch-empty", lambda c: __import__("geolesson.plot").plot.stretch(np.ones((0, 5))), {}, ValueError, ["array", "(0, 5)"]),
    ("stretch-strings", lambda c: __import__("geolesson.plot").plot.stretch(np.array([["a", "b"]])), {}, TypeError, ["array", "<U1"]),
    ("stretch-lo-above-hi", lambda c: __import__("geolesson.plot").plot.stretch(IMG, lo=50, hi=10), {}, ValueError, ["lo=50", "hi=10"]),
    ("stretch-lo-negative", lambda c: __import__("geolesson.plot").plot.stretch(IMG, lo=-1), {}, ValueError, ["lo=-1"]),
    ("stretch-hi-101", lambda c: __import__("geolesson.plot").plot.stretch(IMG, hi=101), {}, ValueError, ["hi=101"]),
    ("stretch-lo-str", lambda c: __import__("geolesson.plot").plot.stretch(IMG, lo="2"), {}, ValueError, ["lo", "'2'"]),
    ("stretch-hi-nan", lambda c: __import__("geolesson.plot").plot.stretch(IMG, hi=float("nan")), {}, ValueError, ["hi", "nan"]),
    ("rgb-four-bands", lambda c: __import__("geolesson.plot").plot.rgb_image(np.ones((4, 5, 5))), {}, ValueError, ["array", "(4, 5, 5)"]),
    ("rgb-2d", lambda c: __import__("geolesson.plot").plot.rgb_image(np.ones((5, 5))), {}, ValueError, ["array", "(5, 5)"]),
    ("show-rgb-extent", lambda c: __import__("geolesson.plot").plot.show_rgb(_ax(), IMG, extent=(1, 2, 3)), {}, ValueError, ["extent", "(1, 2, 3)"]),
    ("footprints-by", lambda c: _footprints_by("mgrs"), {}, ValueError, ["by", "'mgrs'", "tile"]),
    ("block-grid-level", lambda c: __import__("geolesson.plot").plot.block_grid(_ax(), c["info"], level=5), {}, ValueError, ["level", "5", "0..0"]),
    ("block-grid-level-neg", lambda c: __import__("geolesson.plot").plot.block_grid(_ax(), c["info"], level=-1), {}, ValueError, ["level", "-1"]),
    # -- chips -----------------------------------------------------------------------------------
    ("chip-index-none", lambda c: __import__("geolesson.chips").chips.chip_index(None), {}, TypeError, ["items", "not None"]),
    ("chip-index-int", lambda c: __import__("geolesson.chips").chips.chip_index(42), {}, TypeError, ["items", "not 42"]),
    ("chip-size-zero", lambda c: __import__("geolesson.chips").chips.chip_index([], chip_size=0), {}, ValueError, ["chip_size", "0"]),
    ("chip-size-negative", lambda c: __import__("geolesson.chips").chips.chip_index([], chip_size=-256), {}, ValueError, ["chip_size", "-256"]),
    ("chip-size-float", lambda c: __import__("geolesson.chips").chips.chip_index([], chip_size=25.6), {}, ValueError, ["chip_size", "25.6"]),
    ("chip-partial", lambda c: __import__("geolesson.chips").chips.chip_index([], partial="clip"), {}, ValueError, ["partial", "'clip'"]),
    ("chip-cloud-classes", lambda c: __import__("geolesson.chips").chips.chip_index([], cloud_classes=[42]), {}, ValueError, ["cloud_classes", "42"]),
    ("chip-cloud-nodata", lambda c: __import__("geolesson.chips").chips.chip_index([], cloud_classes=[0, 8]), {}, ValueError, ["cloud_classes", "0"]),
    ("chip-max-cloud", lambda c: __import__("geolesson.chips").chips.chip_index([], max_cloud=1.5), {}, ValueError, ["max_cloud", "1.5"]),
    ("chip-max-nodata", lambda c: __import__("geolesson.chips").chips.chip_index([], max_nodata=-0.1), {}, ValueError, ["max_nodata", "-0.1"]),
    ("read-index-missing", lambda c: __import__("geolesson.chips").chips.read_index(c["tmp"] / "none.parquet"), {}, FileNotFoundError, ["chip index", "none.parquet"]),
    ("chip-index-empty", lambda c: __import__("geolesson.chips").chips.chip_index([]), {}, ValueError, ["items is empty", "search"]),
    ("read-chip-below", lambda c: _read_chip(c, row_off=5000), {}, ValueError, ["row_off=5000", "outside", "rows [0, 1536)"]),
    ("read-chip-left", lambda c: _read_chip(c, col_off=-300), {}, ValueError, ["col_off=-300", "outside"]),
    ("read-chip-zero-height", lambda c: _read_chip(c, height=0), {}, ValueError, ["height=0"]),
    ("read-chip-negative-width", lambda c: _read_chip(c, width=-5), {}, ValueError, ["width=-5"]),
    ("read-chip-no-assets", lambda c: __import__("geolesson.chips").chips.read_chip({"item_id": "x"}, (), items=[]), {}, ValueError, ["assets", "at least one"]),
    ("read-index-not-parquet", lambda c: __import__("geolesson.chips").chips.read_index(c["tmp"] / "notes.tif"), {}, ValueError, ["notes.tif", "not a Parquet"]),
    ("read-index-no-geometry", lambda c: __import__("geolesson.chips").chips.read_index(c["tmp"] / "no_geometry.parquet"), {}, ValueError, ["no_geometry.parquet", "geometry"]),
    ("read-chips-empty", lambda c: __import__("geolesson.chips").chips.read_chips([], items=[]), {}, ValueError, ["rows", "empty"]),
]


def test_the_table_is_large_enough():
    assert len(CASES) >= 80
    assert len({case[0] for case in CASES}) == len(CASES)


#: the rows that ask the running mirror (a 404 of its file server, its request counters)
NEED_MIRROR = ("count-reads-local", "inspect-404")


@pytest.mark.parametrize("call, env, expected, words", [
    pytest.param(*c[1:], id=c[0], marks=[pytest.mark.mirror] if c[0] in NEED_MIRROR else []) for c in CASES])
def test_bad_input_gets_a_clear_error(ctx, monkeypatch, call, env, expected, words, request):
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(tmp=ctx["tmp"]))
    if request.node.callspec.id in NEED_MIRROR:
        request.getfixturevalue("mirror")
    if issubclass(expected, Warning):
        with pytest.warns(expected) as caught:
            call(ctx)
        message = " | ".join(str(w.message) for w in caught)
    else:
        with pytest.raises(expected) as caught:
            call(ctx)
        message = str(caught.value)
    missing = [w for w in words if w not in message]
    assert not missing, f"the message lacks {missing}: {message}"


def test_a_bad_port_starts_nothing(tmp_path, monkeypatch):
    """GEOLESSON_MIRROR_PORT=abc is refused before PostgreSQL starts (nothing left running)."""
    monkeypatch.setenv("GEOLESSON_MIRROR_DIR", str(tmp_path / "m"))
    monkeypatch.setenv("GEOLESSON_MIRROR_PORT", "abc")
    with pytest.raises(CliExit):
        cli("mirror", "start")
    assert not (tmp_path / "m" / "pg").exists()
