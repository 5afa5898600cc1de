"""The HTTP policy of every client here: timeouts, and retries of transient failures.

Network waits are bounded: every HTTP client of the helpers connects within
``CONNECT_TIMEOUT`` and reads within ``READ_TIMEOUT`` seconds, and transient failures (429,
500, 502, 503, 504, connection resets) are retried with backoff by the clients' own retry
support (urllib3 ``Retry`` here, ``GDAL_HTTP_MAX_RETRY`` for GDAL: :mod:`geolesson.gdal`),
so a dead or black-holed service fails within about 30 s with an error naming the URL
instead of hanging.
"""

from __future__ import annotations

# Timeouts (s) for every HTTP request to a STAC API, a token service or a COG: a connection
# must open within CONNECT_TIMEOUT and each read must deliver data within READ_TIMEOUT.
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 10
# HTTP answers worth retrying: rate limiting and the gateway/overload errors of busy services
RETRY_STATUS = (429, 500, 502, 503, 504)


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


def http_session():
    """A ``requests.Session`` retrying with :func:`http_retry` (pass ``timeout=`` on every call)."""
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    adapter = HTTPAdapter(max_retries=http_retry())
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
