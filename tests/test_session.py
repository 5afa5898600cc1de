"""geolesson.session: the Dask dashboard link for a laptop and for a JupyterHub / Binder server.

The link through a real Jupyter server's proxy is followed in tests/book/test_jupyterlab.py."""

from __future__ import annotations

import pytest

from geolesson import session


def test_on_a_laptop_the_dashboard_link_is_local():
    assert session.dashboard_link({}) == "http://127.0.0.1:{port}/status"
    assert session.dashboard_link({"JUPYTERHUB_SERVICE_PREFIX": ""}) == "http://127.0.0.1:{port}/status"


def test_on_a_hub_the_dashboard_link_goes_through_the_servers_proxy():
    link = session.dashboard_link({"JUPYTERHUB_SERVICE_PREFIX": "/user/ada/"})
    assert link == "/user/ada/proxy/{port}/status"
    # Dask fills the template with str.format (distributed.utils.format_dashboard_link)
    assert link.format(port=8787) == "/user/ada/proxy/8787/status"


def test_braces_in_the_prefix_survive_dasks_format():
    link = session.dashboard_link({"JUPYTERHUB_SERVICE_PREFIX": "/user/{odd}/"})
    assert link.format(port=1) == "/user/{odd}/proxy/1/status"


@pytest.mark.parametrize("prefix", ["user/ada/", "/user/ada", "http://hub/user/ada/"])
def test_a_prefix_that_is_not_a_path_is_refused_by_name(prefix):
    with pytest.raises(ValueError, match="JUPYTERHUB_SERVICE_PREFIX.*start and end with '/'"):
        session.dashboard_link({"JUPYTERHUB_SERVICE_PREFIX": prefix})


def test_the_environment_is_read_by_default(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/bo/")
    assert session.dashboard_link() == "/user/bo/proxy/{port}/status"
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX")
    assert session.dashboard_link() == "http://127.0.0.1:{port}/status"
