"""The mirror's TCP ports on 127.0.0.1: the preferred ones (environment or defaults), and a free one when taken."""

from __future__ import annotations

import os
import socket

HOST = "127.0.0.1"
PORT_VARIABLES = {"api": ("GEOLESSON_MIRROR_PORT", 8765), "pg": ("GEOLESSON_MIRROR_PG_PORT", 54329)}
PORT_RANGE = (1024, 65535)


def default_port(which: str) -> int:
    """The preferred port of the ``"api"`` or ``"pg"`` server: its environment variable, else the default.

    Raises:
        ValueError: the variable is set but is not an integer in 1024..65535 (names it and its value).
    """
    name, default = PORT_VARIABLES[which]
    raw = os.environ.get(name)
    if raw is None:
        return default
    lo, hi = PORT_RANGE
    try:
        port = int(raw.strip())
    except ValueError:
        port = None
    if port is None or not lo <= port <= hi:
        raise ValueError(f"{name}={raw!r} is not allowed: set it to a TCP port number {lo}..{hi} (or unset it "
                         f"for the default {default})")
    return port


def port_free(port: int) -> bool:
    """Whether ``port`` on 127.0.0.1 can be bound now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # as the servers do: a port whose old connections linger in TIME_WAIT is free
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def listen_on(preferred: int, what: str, log) -> socket.socket:
    """A socket listening on 127.0.0.1: on ``preferred`` if it is free, else on a free port
    the system picks (logged, naming ``what`` it is for).

    The web app inherits this socket (``--fd``, served through
    :func:`~geolesson.mirror.server.app.inherited_socket`) instead of a port number, so the
    port stays this mirror's from the moment it is chosen: choosing a free port and binding
    it later (after loading the items, seconds on) let another mirror starting at the same
    time take it in between. The caller closes its copy once the app has inherited it.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is free
    try:
        try:
            listener.bind((HOST, preferred))
        except OSError:
            listener.bind((HOST, 0))
            log(f"port {preferred} for the {what} is busy (another program uses it); using free port "
                f"{listener.getsockname()[1]} instead")
        listener.listen(2048)  # uvicorn's backlog
    except BaseException:
        listener.close()
        raise
    return listener


def choose_port(preferred: int, what: str, log) -> int:
    """``preferred`` if free, else a free port the system picks (logged, naming ``what`` it is
    for). For a server that cannot be handed a socket (PostgreSQL): it binds the port itself
    later, so another program may take the port in between (:func:`listen_on` has no such gap)."""
    if port_free(preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    log(f"port {preferred} for the {what} is busy (another program uses it); using free port {port} instead")
    return port
