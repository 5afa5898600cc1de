"""geolesson.sources: the mirror/live switch."""

from __future__ import annotations

import pytest

from geolesson import sources


def test_default_mode_is_mirror(monkeypatch):
    monkeypatch.delenv("GEOLESSON_SOURCE", raising=False)
    assert sources.source_mode() == "mirror"


@pytest.mark.parametrize("provider, url", [
    ("earth-search", "https://earth-search.aws.element84.com/v1"),
    ("planetary-computer", "https://planetarycomputer.microsoft.com/api/stac/v1"),
])
def test_live_mode_gives_the_real_root_urls(monkeypatch, provider, url):
    monkeypatch.setenv("GEOLESSON_SOURCE", "live")
    assert sources.stac_api_url(provider) == url


def test_mirror_mode_gives_the_mirror_url_for_both_providers(mirror, monkeypatch):
    monkeypatch.setenv("GEOLESSON_SOURCE", "mirror")
    assert sources.stac_api_url("earth-search") == mirror["api_url"]
    assert sources.stac_api_url("planetary-computer") == mirror["api_url"]
    assert mirror["api_url"].startswith("http://127.0.0.1:")


def test_unknown_mode_names_the_allowed_values(monkeypatch):
    monkeypatch.setenv("GEOLESSON_SOURCE", "offline")
    with pytest.raises(ValueError, match=r"'offline'.*mirror, live"):
        sources.stac_api_url("earth-search")


def test_unknown_provider_names_the_allowed_values():
    with pytest.raises(ValueError, match=r"'usgs'.*earth-search, planetary-computer"):
        sources.stac_api_url("usgs", mode="live")


def test_signing_only_for_planetary_computer_in_live_mode():

    modifier = sources.item_modifier("planetary-computer", mode="live")
    assert callable(modifier)
    assert sources.item_modifier("earth-search", mode="live") is None
    assert sources.item_modifier("planetary-computer", mode="mirror") is None
    href = "http://127.0.0.1:8765/files/x/B04.tif"
    assert sources.sign(href, "planetary-computer", mode="mirror") == href


def test_counters_are_mirror_only():
    with pytest.raises(ValueError, match="only on the offline mirror"):
        sources.request_counts(mode="live")


def test_open_client_on_the_mirror_searches(mirror):
    client = sources.open_client("earth-search", mode="mirror")
    assert next(client.search(collections=["sentinel-2-l2a"], max_items=1).items()).collection_id == "sentinel-2-l2a"


def test_data_path_finds_the_committed_inputs():
    path = sources.data_path("rhodes_aoi.geojson")
    assert path.is_absolute() and path.is_file() and path.parent.name == "data"
    assert '"FeatureCollection"' in path.read_text()


def test_data_path_names_the_missing_file_and_lists_what_exists():
    with pytest.raises(FileNotFoundError, match=r"data/rhodes_aoi\.json does not exist.*rhodes_aoi\.geojson"):
        sources.data_path("rhodes_aoi.json")


@pytest.mark.parametrize("name", ["../pyproject.toml", "mirror/stac", "..", ""])
def test_data_path_refuses_paths(name):
    with pytest.raises(ValueError, match="plain file name"):
        sources.data_path(name)
