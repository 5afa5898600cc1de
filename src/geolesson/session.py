"""Where this notebook session runs: a learner's own machine, or a JupyterHub / Binder server.

On a laptop the browser and the kernel share one machine, so a server the kernel starts
on ``127.0.0.1`` (Dask's dashboard) opens at ``http://127.0.0.1:<port>/``. On a
JupyterHub, and so on mybinder.org, the kernel runs in a container the browser cannot
reach directly: everything goes through the single-user Jupyter server, whose URLs start
with the prefix that JupyterHub puts into the environment as ``JUPYTERHUB_SERVICE_PREFIX``
(e.g. ``/user/ada/``; JupyterHub documentation, "Environment variables set by
JupyterHub"). jupyter-server-proxy, installed with the book's JupyterLab, forwards
``<prefix>proxy/<port>/...`` to ``127.0.0.1:<port>/...`` (jupyter-server-proxy
documentation, "Accessing arbitrary ports or hosts").
"""

from __future__ import annotations

import os
from typing import Mapping

LOCAL_DASHBOARD_LINK = "http://127.0.0.1:{port}/status"


def dashboard_link(environ: Mapping[str, str] | None = None) -> str:
    """The link template of a Dask dashboard served on ``127.0.0.1``, for this session.

    Set it as Dask's ``distributed.dashboard.link`` before starting a cluster whose
    dashboard listens on ``127.0.0.1`` (``LocalCluster(dashboard_address="127.0.0.1:0")``):
    ``Client.dashboard_link`` then fills in ``{port}`` with the port the dashboard got.

    Args:
        environ: the environment to read (default: ``os.environ``).

    Returns:
        ``"<JUPYTERHUB_SERVICE_PREFIX>proxy/{port}/status"`` (a path on the Jupyter
        server, through jupyter-server-proxy) when ``JUPYTERHUB_SERVICE_PREFIX`` is set and
        not empty, else ``"http://127.0.0.1:{port}/status"``. The template keeps the
        ``{port}`` placeholder, as Dask's default (``"{scheme}://{host}:{port}/status"``) does.

    Raises:
        ValueError: ``JUPYTERHUB_SERVICE_PREFIX`` does not start and end with ``/``
            (JupyterHub always sets e.g. ``/user/ada/``), naming the value.
    """
    env = os.environ if environ is None else environ
    prefix = env.get("JUPYTERHUB_SERVICE_PREFIX", "")
    if not prefix:
        return LOCAL_DASHBOARD_LINK
    if not (prefix.startswith("/") and prefix.endswith("/")):
        raise ValueError(f"JUPYTERHUB_SERVICE_PREFIX={prefix!r} must start and end with '/' "
                         "(JupyterHub sets e.g. '/user/ada/')")
    # braces in the prefix would be read as template fields by Dask's str.format
    prefix = prefix.replace("{", "{{").replace("}", "}}")
    return f"{prefix}proxy/{{port}}/status"
