"""What both simulated collections' STAC JSON share: the licence, the COG media type, the timestamp form."""

from __future__ import annotations

import datetime as dt

COG = "image/tiff; application=geotiff; profile=cloud-optimized"
# The scenes are simulated, not Copernicus data: they are licensed with the book's text
# (CC BY 4.0, the repository's LICENSE-text), not under the Sentinel data legal notice.
LICENSE_ID = "CC-BY-4.0"
LICENSE = "https://github.com/geolesson/geolesson/blob/main/LICENSE-text"
LICENSE_LINK = {"rel": "license", "href": LICENSE, "type": "text/plain",
                "title": "CC-BY-4.0: simulated data of the geolesson book (not Copernicus data)"}


def iso(t: dt.datetime) -> str:
    """``t`` in UTC as STAC's RFC 3339 form with microseconds: ``2023-07-03T09:06:41.024000Z``."""
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
