"""The HTTP policy of every client here: timeouts, and retries of transient failures.

Network waits are bounded: every HTTP client of the helpers connects within
``CONNECT_TIMEOUT`` and reads within ``READ_TIMEOUT`` seconds, and transient failures (429,
500, 502, 503, 504, connection resets) are retried with backoff by the clients' own retry
support (urllib3 ``Retry`` here, ``GDAL_HTTP_MAX_RETRY`` for GDAL: :mod:`geolesson.gdal`),
so a dead or black-holed service fails within about 30 s with an error naming the URL
instead of hanging. Host names are resolved within ``RESOLVE_TIMEOUT`` s (the system
resolver has no timeout of its own), and a COG that GDAL could not open is probed once to
name the cause that GDAL's message hides (:func:`http_failure_cause`).
"""

from __future__ import annotations

import ipaddress
import math
import socket
import threading
import time
from urllib.parse import urlsplit

# Timeouts (s) for every HTTP request to a STAC API, a token service or a COG: a connection
# must open within CONNECT_TIMEOUT and each read must deliver data within READ_TIMEOUT.
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 10
# HTTP answers worth retrying: rate limiting and the gateway/overload errors of busy services
RETRY_STATUS = (429, 500, 502, 503, 504)
# A host name must resolve within RESOLVE_TIMEOUT s. getaddrinfo has no timeout and the
# clients' timeouts start after it: a DNS server that never answers held each attempt for
# glibc's 2 x 5 s, 31-38 s in all with the connect retries (tests/test_http.py stands one in)
RESOLVE_TIMEOUT = 10


class SourceError(ConnectionError):
    """A live service (STAC API, token service, file server) failed or did not answer in
    time; the message names the URL and the cause."""


def resolve_within(url: str, timeout: float | None = None) -> None:
    """Resolve ``url``'s host name, waiting at most ``timeout`` s (None: ``RESOLVE_TIMEOUT``;
    IP addresses: nothing to do).

    The lookup runs in a daemon thread, so a resolver that never answers costs ``timeout``
    s, not the resolver's own retries times the clients' connect retries. A lookup that
    fails (no such host) is left to the client, whose error names the host.

    Raises:
        SourceError: no answer within ``timeout`` s; the message names the URL and the host.
    """
    host = urlsplit(url).hostname
    if not host:
        return
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    if time.monotonic() - _resolved.get(host, -math.inf) < RESOLVED_FOR:
        return  # answered a moment ago: no second lookup (and thread) for each request of a search
    timeout = RESOLVE_TIMEOUT if timeout is None else timeout
    lookup = threading.Thread(target=_lookup, args=(host,), daemon=True, name=f"resolve {host}")
    lookup.start()
    lookup.join(timeout)
    if lookup.is_alive():
        raise SourceError(f"{url}: the host name {host} did not resolve within {timeout:g} s (the DNS server "
                          "does not answer: is the network down? GEOLESSON_SOURCE=mirror works offline)")


def _lookup(host: str) -> None:
    try:
        socket.getaddrinfo(host, None)
    except OSError:
        return  # the client's own lookup raises it, naming the host
    _resolved[host] = time.monotonic()


# hosts that resolved, and when (time.monotonic()); trusted for RESOLVED_FOR s
_resolved: dict[str, float] = {}
RESOLVED_FOR = 60


def http_retry():
    """The retry policy of the Python HTTP clients here (a ``urllib3.util.Retry``).

    Up to 3 retries: 2 for a failed connection, 1 for a read that timed out or was reset
    (a black hole costs two reads, about ``2 * READ_TIMEOUT`` s), 3 for the answers in
    ``RETRY_STATUS``; backoff 0.5 s doubling (none before the first retry). Every method is
    retried: STAC searches are POSTs that only read. ``Retry-After`` is not obeyed, so that a
    server asking for minutes cannot stall a notebook.
    """
    from urllib3.util import Retry

    return Retry(total=3, connect=2, read=1, status=3, other=0, backoff_factor=0.5,
                 status_forcelist=RETRY_STATUS, allowed_methods=None, respect_retry_after_header=False)


def mount_bounded_adapters(session) -> None:
    """Mount on a ``requests.Session`` (ours, or pystac-client's ``StacApiIO.session``) the
    adapter that resolves each request's host within ``RESOLVE_TIMEOUT`` s and retries with
    :func:`http_retry`."""
    from requests.adapters import HTTPAdapter

    class BoundedAdapter(HTTPAdapter):
        def send(self, request, *args, **kwargs):
            resolve_within(request.url)
            return super().send(request, *args, **kwargs)

    adapter = BoundedAdapter(max_retries=http_retry())
    session.mount("http://", adapter)
    session.mount("https://", adapter)


def http_session():
    """A ``requests.Session`` resolving host names within ``RESOLVE_TIMEOUT`` s and retrying
    with :func:`http_retry` (pass ``timeout=`` on every call)."""
    import requests

    session = requests.Session()
    mount_bounded_adapters(session)
    return session


def http_failure_cause(href: str) -> str | None:
    """Why ``href`` (http or https) could not be read, found with one request for its first
    16 KiB, GDAL's first read (a single try, ``CONNECT_TIMEOUT`` / ``READ_TIMEOUT``): GDAL says "not
    recognized as being in a supported file format" or "does not exist in the file system"
    for a reset connection or an HTML error page alike.

    Returns:
        str | None: a short cause, such as ``HTTP 404 Not Found`` or the connection error
        that ended the request; None when the server sends the start of a TIFF (the
        problem is not the network) or ``href`` is not an HTTP URL.
    """
    import requests

    if urlsplit(href).scheme not in ("http", "https"):
        return None
    try:
        resolve_within(href)
        with requests.get(href, headers={"Range": "bytes=0-16383"}, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT)) as r:
            if r.status_code >= 400:
                return f"HTTP {r.status_code} {r.reason}"
            head = r.content[:16]
    except SourceError as exc:
        return str(exc).split(": ", 1)[-1]
    except requests.exceptions.Timeout:
        return f"no answer within {CONNECT_TIMEOUT} s to connect or {READ_TIMEOUT} s to read"
    except requests.exceptions.RequestException as exc:  # refused, reset, cut short mid-body, ...
        return f"{type(exc).__name__}: {exc}"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return None
    return f"the server sent {len(head)} bytes that do not start a TIFF ({head[:16]!r})"
