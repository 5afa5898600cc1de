"""geolesson.indices on small arrays made here; expected values are worked out by hand."""

from __future__ import annotations

import datetime
import math
import warnings

import dask
import dask.array as da
import numpy as np
import pystac
import pytest
import rioxarray  # noqa: F401  (the .rio accessor)
import xarray as xr

from geolesson import indices

KINDS = ["numpy", "xarray", "dask"]


@pytest.fixture(autouse=True)
def _synchronous_dask():
    """One thread: these arrays are tiny, and another job shares the machine."""
    with dask.config.set(scheduler="synchronous"):
        yield


def _refuse_to_compute(*args, **kwargs):
    raise AssertionError("a Dask graph was computed although the result should stay lazy")


def no_compute():
    """Inside this block any Dask computation fails the test."""
    return dask.config.set(scheduler=_refuse_to_compute)


def make(kind, values, crs=None, y0=0.0):
    """``values`` (2-D) as numpy, an xarray DataArray with y/x coords, or the same backed by Dask."""
    values = np.asarray(values)
    if kind == "numpy":
        return values
    data = da.from_array(values, chunks=(1, 2)) if kind == "dask" else values
    ny, nx = values.shape
    arr = xr.DataArray(data, dims=("y", "x"),
                       coords={"y": y0 - 10.0 * np.arange(ny), "x": 500000.0 + 10.0 * np.arange(nx)})
    return arr.rio.write_crs(crs) if crs else arr


def values_of(result):
    """The computed numpy values of any kind of result."""
    if isinstance(result, xr.DataArray):
        return result.compute().values
    if isinstance(result, da.Array):
        return result.compute()
    return np.asarray(result)


def check_kind(kind, result, like):
    """``result`` has the container, dims and coords of ``like`` and, for Dask, is still lazy."""
    if kind == "numpy":
        assert isinstance(result, np.ndarray)
    else:
        assert isinstance(result, xr.DataArray)
        assert result.dims == like.dims
        for name in ("y", "x"):
            np.testing.assert_array_equal(result[name].values, like[name].values)
        assert isinstance(result.data, da.Array) == (kind == "dask")
    assert result.shape == like.shape


S2_BAND = {"nodata": 0, "data_type": "uint16", "spatial_resolution": 10, "scale": 0.0001, "offset": -0.1}


def s2_asset(**band):
    return pystac.Asset("https://example.com/B04.tif", title="Red - 10m", roles=["data", "reflectance"],
                        extra_fields={"raster:bands": [{**S2_BAND, **band}]})


# --- reflectance -----------------------------------------------------------------------


@pytest.mark.parametrize("as_dict", [False, True], ids=["pystac.Asset", "asset dict"])
def test_reflectance_follows_raster_bands_of_a_baseline_04_asset(as_dict):
    asset = s2_asset()
    asset = asset.to_dict() if as_dict else asset
    dn = np.array([[0, 1000, 3000], [10000, 500, 1001]], dtype="uint16")
    out = indices.reflectance(dn, asset)
    # by hand: DN * 0.0001 - 0.1; DN 0 is nodata
    expected = np.array([[np.nan, 0.0, 0.2], [0.9, -0.05, 0.0001]])
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-7, equal_nan=True)
    assert out[0, 1] == 0.0  # exactly, not -7e-09


@pytest.mark.parametrize("band, dn, expected", [
    # older processing baseline: no offset
    ({"scale": 0.0001, "offset": 0}, [0, 1000, 3000], [np.nan, 0.1, 0.3]),
    # an arbitrary product: 2 * 0.5 + 10 = 11, 4 * 0.5 + 10 = 12; nodata 65535
    ({"scale": 0.5, "offset": 10.0, "nodata": 65535}, [2, 4, 65535], [11.0, 12.0, np.nan]),
    # Landsat Collection 2 surface reflectance: DN * 0.0000275 - 0.2, 0 not nodata here
    ({"scale": 2.75e-05, "offset": -0.2, "nodata": None}, [0, 7273, 20000], [-0.2, 0.0000075, 0.35]),
    # no offset given means offset 0
    ({"scale": 0.001, "offset": None}, [5, 0, 1000], [0.005, np.nan, 1.0]),
])
def test_reflectance_takes_scale_offset_and_nodata_from_the_asset(band, dn, expected):
    asset = s2_asset(**band)
    out = indices.reflectance(np.array(dn, dtype="uint16"), asset)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("kind", KINDS)
def test_reflectance_is_the_same_on_numpy_xarray_and_dask(kind):
    dn_np = np.array([[0, 1000, 3000, 4000], [1234, 0, 65535, 1100]], dtype="uint16")
    dn = make(kind, dn_np, crs="EPSG:32635")
    with no_compute():
        out = indices.reflectance(dn, s2_asset())
    check_kind(kind, out, dn)
    np.testing.assert_array_equal(values_of(out), indices.reflectance(dn_np, s2_asset()))
    assert values_of(out).dtype == np.float32
    if kind != "numpy":
        assert out.rio.crs == "EPSG:32635"


def test_reflectance_drops_encoding_attrs_and_keeps_the_others():
    dn = xr.DataArray(np.array([[0, 2000]], dtype="uint16"), dims=("y", "x"),
                      attrs={"_FillValue": 0, "scale_factor": 1.0, "add_offset": 0.0, "long_name": "B04"})
    out = indices.reflectance(dn, s2_asset())
    assert out.attrs == {"long_name": "B04"}


def test_reflectance_of_a_float_dn_read_with_nan_keeps_nan():
    dn = np.array([np.nan, 1500.0], dtype="float32")
    np.testing.assert_allclose(indices.reflectance(dn, s2_asset()), [np.nan, 0.05], rtol=1e-6, equal_nan=True)


def test_reflectance_names_the_asset_without_raster_bands():
    item = pystac.Item("x", None, None, datetime.datetime(2023, 7, 30, tzinfo=datetime.UTC), {})
    item.add_asset("red", pystac.Asset("https://example.com/B04.tif", title="Red - 10m"))
    with pytest.raises(ValueError, match=r"'red'.*raster:bands"):
        indices.reflectance(np.ones(3, "uint16"), item.assets["red"])
    with pytest.raises(ValueError, match=r"Red - 10m.*raster:bands"):
        indices.reflectance(np.ones(3, "uint16"), {"href": "x.tif", "title": "Red - 10m"})


def test_reflectance_names_the_missing_scale():
    asset = {"title": "Red - 10m", "raster:bands": [{"nodata": 0, "offset": -0.1}]}
    with pytest.raises(ValueError, match=r"Red - 10m.*'scale'"):
        indices.reflectance(np.ones(3, "uint16"), asset)


def test_reflectance_needs_a_band_choice_when_there_are_several():
    asset = {"title": "visual", "raster:bands": [{"scale": 1.0, "offset": 0.0}, {"scale": 2.0, "offset": 1.0}]}
    with pytest.raises(ValueError, match=r"visual.*2 'raster:bands'.*band="):
        indices.reflectance(np.ones(3, "uint16"), asset)
    np.testing.assert_allclose(indices.reflectance(np.array([3], "uint16"), asset, band=1), [7.0])
    with pytest.raises(ValueError, match="band=2"):
        indices.reflectance(np.ones(3, "uint16"), asset, band=2)


def test_reflectance_rejects_what_is_not_an_asset():
    with pytest.raises(TypeError):
        indices.reflectance(np.ones(3, "uint16"), "red")


# --- SCL masks -------------------------------------------------------------------------

# Sentinel-2 L2A Scene Classification, from ESA's product specification (written out here
# independently of the module).
SCL_TABLE = {
    0: "no data", 1: "saturated or defective", 2: "dark area pixels", 3: "cloud shadows",
    4: "vegetation", 5: "not vegetated", 6: "water", 7: "unclassified",
    8: "cloud medium probability", 9: "cloud high probability", 10: "thin cirrus", 11: "snow or ice",
}


def scl_sample(seed=1):
    """Every class at least once, then random classes: 6 x 8 uint8."""
    rng = np.random.default_rng(seed)
    flat = np.concatenate([np.arange(12), rng.integers(0, 12, 36)]).astype("uint8")
    return rng.permutation(flat).reshape(6, 8)


def brute_force(scl, predicate):
    out = np.zeros(scl.shape, dtype=bool)
    for i in range(scl.shape[0]):
        for j in range(scl.shape[1]):
            out[i, j] = predicate(int(scl[i, j]))
    return out


def test_the_scl_table_is_esas():
    assert dict(indices.SCL_CLASSES) == SCL_TABLE
    assert tuple(indices.DEFAULT_CLOUD_CLASSES) == (3, 8, 9, 10)


@pytest.mark.parametrize("kind", KINDS)
def test_masks_match_a_pixel_by_pixel_check(kind):
    scl_np = scl_sample()
    scl = make(kind, scl_np)
    cloud_labels = {"cloud shadows", "cloud medium probability", "cloud high probability", "thin cirrus"}
    expected = {
        "cloud": brute_force(scl_np, lambda v: SCL_TABLE[v] in cloud_labels),
        "nodata": brute_force(scl_np, lambda v: SCL_TABLE[v] == "no data"),
        "valid": brute_force(scl_np, lambda v: v not in (0, 1, 3, 8, 9, 10)),
        "water_or_snow": brute_force(scl_np, lambda v: SCL_TABLE[v] in ("water", "snow or ice")),
        "valid_without_water": brute_force(scl_np, lambda v: v not in (0, 6)),
        "vegetation": brute_force(scl_np, lambda v: v == 4),
    }
    with no_compute():
        got = {
            "cloud": indices.cloud_mask(scl),
            "nodata": indices.nodata_mask(scl),
            "valid": indices.valid_mask(scl),
            "water_or_snow": indices.scl_mask(scl, [6, 11]),
            "valid_without_water": indices.valid_mask(scl, exclude=[6]),  # 0 stays excluded
            "vegetation": indices.scl_mask(scl, 4),
        }
    for name, mask in got.items():
        check_kind(kind, mask, scl)
        values = values_of(mask)
        assert values.dtype == bool, name
        np.testing.assert_array_equal(values, expected[name], err_msg=name)


def test_cloud_mask_takes_other_classes():
    scl = scl_sample()
    np.testing.assert_array_equal(indices.cloud_mask(scl, classes=(9,)), scl == 9)


@pytest.mark.parametrize("bad", [12, 255])
def test_scl_outside_the_classes_is_named(bad):
    scl = scl_sample()
    scl[2, 3] = bad
    for fn in (indices.cloud_mask, indices.nodata_mask, indices.valid_mask):
        with pytest.raises(ValueError, match=rf"\b{bad}\b"):
            fn(scl)
    with pytest.raises(ValueError, match=rf"\b{bad}\b"):
        indices.scl_mask(make("xarray", scl), [4])


@pytest.mark.parametrize("bad", [12, 255])
def test_dask_scl_outside_the_classes_fails_at_compute_and_not_before(bad):
    scl_np = scl_sample()
    scl_np[5, 7] = bad
    scl = make("dask", scl_np)
    with no_compute():
        mask = indices.cloud_mask(scl)  # the graph is built, nothing is read
    with pytest.raises(ValueError, match=rf"\b{bad}\b"):
        mask.compute()
    with pytest.raises(ValueError, match=rf"\b{bad}\b"):
        indices.valid_mask(scl.data).compute()  # a bare dask array too


def test_negative_scl_is_named():
    scl = scl_sample().astype("int16")
    scl[0, 0] = -1
    with pytest.raises(ValueError, match="-1"):
        indices.cloud_mask(scl)


def test_float_scl_is_refused_at_once():
    scl = make("dask", scl_sample().astype("float32"))
    with no_compute(), pytest.raises(ValueError, match=r"integer dtype.*float32"):
        indices.cloud_mask(scl)


def test_unknown_classes_are_refused():
    with pytest.raises(ValueError, match="12"):
        indices.scl_mask(scl_sample(), [4, 12])
    with pytest.raises(ValueError, match="99"):
        indices.valid_mask(scl_sample(), exclude=[99])


# --- NDVI, NBR, dNBR -------------------------------------------------------------------

RED = np.array([[0.1, 0.05, 0.2], [0.0, -0.05, 0.03]], dtype="float32")
NIR = np.array([[0.5, 0.05, 0.1], [0.0, 0.05, np.nan]], dtype="float32")
# by hand: (nir - red) / (nir + red); 0/0 and x/0 and NaN -> NaN
NDVI = np.array([[0.4 / 0.6, 0.0, -0.1 / 0.3], [np.nan, np.nan, np.nan]])

SWIR22 = np.array([[0.1, 0.3, 0.2], [0.25, 0.0, 0.1]], dtype="float32")
NBR_NIR = np.array([[0.4, 0.1, 0.2], [0.05, 0.0, 0.3]], dtype="float32")
# by hand: (nir - swir22) / (nir + swir22)
NBR = np.array([[0.3 / 0.5, -0.2 / 0.4, 0.0], [-0.2 / 0.3, np.nan, 0.2 / 0.4]])


def _call_quietly(fn, *args):
    """Call and compute with every warning turned into an error (no division warnings may leak)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = fn(*args)
        return result, values_of(result)


@pytest.mark.parametrize("kind", KINDS)
def test_ndvi_by_hand_on_every_kind(kind):
    red, nir = make(kind, RED, crs="EPSG:32635"), make(kind, NIR, crs="EPSG:32635")
    with no_compute():
        out = indices.ndvi(red, nir)
    check_kind(kind, out, red)
    _, values = _call_quietly(indices.ndvi, red, nir)
    assert values.dtype == np.float32
    np.testing.assert_allclose(values, NDVI, rtol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(values, indices.ndvi(RED, NIR))  # identical, not just close
    if kind != "numpy":
        assert out.name == "ndvi" and out.rio.crs == "EPSG:32635"


@pytest.mark.parametrize("kind", KINDS)
def test_nbr_and_dnbr_by_hand_on_every_kind(kind):
    nir, swir = make(kind, NBR_NIR), make(kind, SWIR22)
    with no_compute():
        pre = indices.nbr(nir, swir)
        post = indices.nbr(swir, nir)  # swapped bands: NBR changes sign
        diff = indices.dnbr(pre, post)
    for result in (pre, post, diff):
        check_kind(kind, result, nir)
    _, pre_values = _call_quietly(indices.nbr, nir, swir)
    np.testing.assert_allclose(pre_values, NBR, rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(values_of(diff), 2 * NBR, rtol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(values_of(diff), indices.dnbr(indices.nbr(NBR_NIR, SWIR22),
                                                                 indices.nbr(SWIR22, NBR_NIR)))


def test_dnbr_by_hand():
    pre = np.array([0.6, 0.5, 0.1, np.nan])
    post = np.array([-0.5, 0.5, 0.3, 0.2])
    np.testing.assert_allclose(indices.dnbr(pre, post), [1.1, 0.0, -0.2, np.nan], equal_nan=True)


def test_ndvi_of_a_bare_dask_array_stays_lazy():
    red, nir = da.from_array(RED, chunks=1), da.from_array(NIR, chunks=1)
    with no_compute():
        out = indices.ndvi(red, nir)
    assert isinstance(out, da.Array)
    _, values = _call_quietly(lambda: out)
    np.testing.assert_allclose(values, NDVI, rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fn", [indices.ndvi, indices.nbr, indices.dnbr])
def test_digital_numbers_are_refused_with_a_pointer_to_reflectance(kind, fn):
    dn = make(kind, np.array([[1200, 3400]], dtype="uint16"))
    ok = make(kind, np.array([[0.1, 0.3]], dtype="float32"))
    with pytest.raises(ValueError, match=r"uint16.*reflectance\("):
        fn(dn, ok)
    with pytest.raises(ValueError, match=r"uint16.*reflectance\("):
        fn(ok, dn)


def test_numpy_shapes_must_match():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)|\(3, 2\).*\(2, 3\)"):
        indices.ndvi(np.zeros((2, 3), "f4"), np.zeros((3, 2), "f4"))
    with pytest.raises(ValueError, match="shape"):
        indices.nbr(np.zeros((2, 3), "f4"), np.zeros((1, 3), "f4"))  # no silent broadcasting


def test_xarray_dims_and_shapes_must_match():
    red = make("xarray", RED)
    with pytest.raises(ValueError, match=r"red.*nir|nir.*red"):
        indices.ndvi(red, red.rename(y="row"))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 2\)|\(2, 2\).*\(2, 3\)"):
        indices.ndvi(red, make("xarray", NIR[:, :2]))


def test_xarray_grids_must_match():
    red = make("dask", RED, y0=0.0)
    nir = make("dask", NIR, y0=20.0)  # shifted two rows north: xarray would silently keep no overlap
    with no_compute(), pytest.raises(ValueError, match=r"'y'"):
        indices.ndvi(red, nir)


def test_crs_must_match():
    red = make("xarray", RED, crs="EPSG:32635")
    nir = make("xarray", NIR, crs="EPSG:32634")
    with pytest.raises(ValueError, match=r"CRS.*EPSG:3263[45].*EPSG:3263[45]") as err:
        indices.ndvi(red, nir)
    assert "red" in str(err.value) and "nir" in str(err.value)
    indices.ndvi(red, make("xarray", NIR))  # one CRS missing: nothing to compare


# --- burn severity ---------------------------------------------------------------------

# (lower bound, class below it, class from it on): Key & Benson 2006 / UN-SPIDER
BOUNDARIES = [(-0.25, 1, 2), (-0.1, 2, 3), (0.1, 3, 4), (0.27, 4, 5), (0.44, 5, 6), (0.66, 6, 7)]


def test_burn_severity_table():
    table = [(c.code, c.lower, c.upper) for c in indices.BURN_SEVERITY_CLASSES]
    assert table == [(1, -math.inf, -0.25), (2, -0.25, -0.1), (3, -0.1, 0.1), (4, 0.1, 0.27),
                     (5, 0.27, 0.44), (6, 0.44, 0.66), (7, 0.66, math.inf)]
    labels = [c.label for c in indices.BURN_SEVERITY_CLASSES]
    assert "unburned" in labels[2] and "high" in labels[6] and "regrowth" in labels[0]
    assert indices.BURN_SEVERITY_NODATA == 0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bound, below, above", BOUNDARIES)
def test_burn_severity_at_and_around_each_boundary(dtype, bound, below, above):
    t = np.array(bound, dtype=dtype)
    values = np.array([np.nextafter(t, -np.inf), t, np.nextafter(t, np.inf), t - 0.01, t + 0.01], dtype=dtype)
    got = indices.burn_severity(values)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, [below, above, above, below, above])


@pytest.mark.parametrize("kind", KINDS)
def test_burn_severity_on_every_kind(kind):
    d_np = np.array([[-0.6, -0.2, 0.0, 0.2], [0.3, 0.5, 0.9, np.nan]], dtype="float32")
    d = make(kind, d_np)
    with no_compute():
        out = indices.burn_severity(d)
    check_kind(kind, out, d)
    np.testing.assert_array_equal(values_of(out), [[1, 2, 3, 4], [5, 6, 7, 0]])
    assert values_of(out).dtype == np.uint8


def test_burn_severity_refuses_scaled_integers():
    with pytest.raises(ValueError, match="1000"):
        indices.burn_severity(np.array([250, 660], dtype="int16"))


# --- burned area -----------------------------------------------------------------------


def test_burned_area_in_hectares():
    mask = np.zeros((20, 20), dtype=bool)
    mask[:10, :10] = True  # 100 pixels of 10 m x 10 m = 10 000 m2 = 1 ha
    assert indices.burned_area_ha(mask, 10) == pytest.approx(1.0)
    assert indices.burned_area_ha(mask, 20.0) == pytest.approx(4.0)  # 100 x 400 m2
    assert indices.burned_area_ha(mask, (10, 20)) == pytest.approx(2.0)
    assert indices.burned_area_ha(np.zeros((3, 3), bool), 10) == 0.0


@pytest.mark.parametrize("kind", ["xarray", "dask"])
def test_burned_area_of_lazy_masks(kind):
    mask_np = np.zeros((4, 6), dtype=bool)
    mask_np[1:3, :] = True  # 12 pixels of 30 m: 12 * 900 m2 = 1.08 ha
    with no_compute():
        area = indices.burned_area_ha(make(kind, mask_np), 30)
    assert float(area) == pytest.approx(1.08)


@pytest.mark.parametrize("resolution", [0, -10, (10, -10), math.nan, (10, 10, 10)])
def test_burned_area_refuses_non_positive_resolution(resolution):
    with pytest.raises(ValueError, match="resolution_m"):
        indices.burned_area_ha(np.ones((2, 2), bool), resolution)


def test_burned_area_needs_a_boolean_mask():
    with pytest.raises(ValueError, match="boolean"):
        indices.burned_area_ha(np.array([[4, 5]], dtype="uint8"), 10)


def test_asset_returns_the_asset_or_names_what_is_missing():
    item_dict = {"id": "S2A_TEST", "assets": {"red": {"href": "r.tif"}, "nir": {"href": "n.tif"}}}
    assert indices.asset(item_dict, "red") == {"href": "r.tif"}
    with pytest.raises(ValueError, match=r"item S2A_TEST has no asset 'swir22'; its assets are: nir, red"):
        indices.asset(item_dict, "swir22")
    item = pystac.Item("S2B_X", None, None, datetime.datetime(2023, 8, 1), {})
    item.add_asset("scl", pystac.Asset("scl.tif"))
    assert indices.asset(item, "scl").href == "scl.tif"
    with pytest.raises(ValueError, match="item S2B_X has no asset 'B04'; its assets are: scl"):
        indices.asset(item, "B04")
    with pytest.raises(TypeError, match="pystac.Item or an item dict"):
        indices.asset(["red"], "red")


# ---------------------------------------------------------------------------------------
# to_db
# ---------------------------------------------------------------------------------------


def test_to_db_numpy_xarray_dask_and_non_positive_power():
    from geolesson.indices import to_db

    power = np.array([[1.0, 0.1, 0.01], [0.0, -1e-4, np.nan]], dtype="float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no log10 warnings for zero, negative or NaN
        db = to_db(power)
        floored = to_db(power, floor_db=-25)
    assert db.dtype == np.float32
    np.testing.assert_allclose(db[0], [0.0, -10.0, -20.0], atol=1e-5)
    assert np.isnan(db[1]).all()  # zero, negative power and NaN -> NaN
    np.testing.assert_allclose(floored[0], [0.0, -10.0, -20.0], atol=1e-5)
    assert floored[1, 0] == -25 and floored[1, 1] == -25 and np.isnan(floored[1, 2])
    assert to_db(np.float32([1e-4]), floor_db=-30)[0] == -30  # a low but positive value is floored too
    arr = xr.DataArray(power, dims=("y", "x"), coords={"x": [1, 2, 3]})
    out = to_db(arr)
    assert out.name == "db" and out.attrs == {"units": "dB"} and out.dims == ("y", "x")
    np.testing.assert_array_equal(out.values, db)
    lazy = to_db(da.from_array(power, chunks=(1, 3)))
    assert hasattr(lazy, "dask")
    np.testing.assert_array_equal(lazy.compute(), db)


def test_to_db_bad_input():
    from geolesson.indices import to_db

    with pytest.raises(ValueError, match="power must be a float array.*not dtype int16"):
        to_db(np.array([-32768, 5], dtype="int16"))
    with pytest.raises(ValueError, match="floor_db must be None or a finite level"):
        to_db(np.ones(3, dtype="float32"), floor_db=float("-inf"))
