"""GDAL's settings for HTTP reads, and the fork hook that drops its connections."""

from __future__ import annotations

import sys
import types

import pytest

from geolesson import gdal, sources


def test_configure_gdal_keeps_user_settings(monkeypatch):
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "7")
    monkeypatch.delenv("GDAL_DISABLE_READDIR_ON_OPEN", raising=False)
    opts = gdal.configure_gdal()
    assert opts["GDAL_HTTP_MAX_RETRY"] == "7"
    assert opts["GDAL_DISABLE_READDIR_ON_OPEN"] == "EMPTY_DIR"


def test_configure_gdal_caps_the_block_cache_unless_set(monkeypatch):
    monkeypatch.delenv("GDAL_CACHEMAX", raising=False)
    assert gdal.configure_gdal()["GDAL_CACHEMAX"] == "128"
    monkeypatch.setenv("GDAL_CACHEMAX", "512")
    assert sources.configure_gdal()["GDAL_CACHEMAX"] == "512"  # the name the chapters call


def test_gdal_http_connections_are_dropped_only_where_gdal_is_loaded(monkeypatch):
    import rasterio  # noqa: F401  (loads GDAL)

    assert gdal._drop_gdal_http_connections() is True
    monkeypatch.delitem(sys.modules, "rasterio._env")
    assert gdal._drop_gdal_http_connections() is False


def test_fork_hook_warns_when_it_cannot_drop_the_connections(monkeypatch):
    # a loaded "GDAL" without VSICurlClearCache (the C library): reported, the fork goes on
    monkeypatch.setitem(sys.modules, "rasterio._env", types.SimpleNamespace(__file__="libc.so.6"))
    with pytest.warns(RuntimeWarning, match="multiprocessing_context='spawn'"):
        gdal._before_fork()
