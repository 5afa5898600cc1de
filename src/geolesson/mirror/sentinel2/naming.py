"""Sentinel-2 L2A names as Earth Search v1 and ESA write them: item ids, folders, product and datatake ids.

Patterns read from real items (Earth Search's ``S2A_35SNA_20230827_0_L2A`` and
``S2A_13TDE_20231008_0_L2A``, Planetary Computer's ``S2B_MSIL2A_20190629T212529_R043_T06VVN``):

- item id ``S2A_35SNA_20230827_0_L2A``; files under
  ``sentinel-cogs/sentinel-s2-l2a-cogs/35/S/NA/2023/8/<id>/`` (the ``sentinel-cogs`` bucket),
  JPEG 2000 files under ``sentinel-s2-l2a/tiles/35/S/NA/2023/8/27/0/`` (the
  ``sentinel-s2-l2a`` bucket, which Earth Search links as ``s3://``; the mirror serves both);
- ``s2:product_uri`` ``S2A_MSIL2A_<datatake start>_N0509_R107_T35SNA_<generation>.SAFE``;
- ``s2:datatake_id`` ``GS2A_<datatake start>_<absolute orbit, 6 digits>_N05.09``;
- ``s2:granule_id`` ``S2A_OPER_MSI_L2A_TL_2APS_<generation>_A<absolute orbit>_T35SNA_N05.09`` and
  ``s2:datastrip_id`` ``S2A_OPER_MSI_L2A_DS_2APS_<generation>_S<datastrip start>_N05.09``.

Absolute orbits: each satellite flies 143 orbits in 10 days, and its relative orbit is
``(absolute - first) % 143 + 1``; the anchors and offsets below are read from those real items
(S2A: 42718 is relative orbit 107 on 27 August 2023 and 43324 is 141 on 8 October 2023;
S2B: 12081 is 43 on 29 June 2019), and they give 33023 for Sentinel-2B on 3 July 2023, relative
orbit 107, as it must.
"""

from __future__ import annotations

import datetime as dt

from geolesson.mirror.sentinel2.scenario import Acquisition, Scenario, Tile

ORBITS_PER_CYCLE, CYCLE_DAYS = 143, 10
# platform -> (a real sensing time, its absolute orbit, the offset in relative = (absolute - offset) % 143 + 1)
_ORBIT_ANCHORS = {
    "sentinel-2a": (dt.datetime(2023, 8, 27, 9, 0, 21, tzinfo=dt.timezone.utc), 42718, -2),
    "sentinel-2b": (dt.datetime(2019, 6, 29, 21, 25, 29, tzinfo=dt.timezone.utc), 12081, 27),
}
# The datastrip begins this long before the first tile's sensing time (08:59:47 against
# 09:00:21.327 in S2A_35SNA_20230827_0_L2A's s2:datastrip_id and datetime).
DATASTRIP_LEAD = dt.timedelta(seconds=34.327)
# Earth Search ingested S2A_35SNA_20230827_0_L2A (its `created`) 9 h 15 min after sensing.
INGESTED_AFTER = dt.timedelta(hours=9, minutes=15, seconds=21, microseconds=779000)


def satellite(acq: Acquisition) -> str:
    """``"2A"`` or ``"2B"``."""
    return acq.platform.removeprefix("sentinel-").upper()


def relative_orbit(platform: str, absolute: int) -> int:
    """The relative orbit (1-143) of absolute orbit ``absolute`` of ``platform`` (``"sentinel-2a"``
    or ``"sentinel-2b"``): ``(absolute - offset) % 143 + 1``, the offsets read from real items (above).
    KeyError for another platform."""
    return (absolute - _ORBIT_ANCHORS[platform][2]) % ORBITS_PER_CYCLE + 1


def absolute_orbit(platform: str, when: dt.datetime, relative: int) -> int:
    """The absolute orbit of ``platform`` at ``when`` on relative orbit ``relative``: the orbit
    number nearest the anchor's count at 14.3 orbits a day whose relative orbit is ``relative``."""
    t0, a0, _ = _ORBIT_ANCHORS[platform]
    estimate = a0 + (when - t0).total_seconds() / 86400 * ORBITS_PER_CYCLE / CYCLE_DAYS
    base = round(estimate)
    candidates = [a for a in range(base - ORBITS_PER_CYCLE // 2, base + ORBITS_PER_CYCLE // 2 + 1)
                  if relative_orbit(platform, a) == relative]
    return min(candidates, key=lambda a: abs(a - estimate))


def item_id(acq: Acquisition, tile: Tile) -> str:
    """Earth Search's item id: ``S2A_35SNA_20230827_0_L2A`` (satellite, MGRS tile, UTC sensing date, sequence 0)."""
    return f"S{satellite(acq)}_{tile.mgrs}_{acq.datetime:%Y%m%d}_0_L2A"


def item_path(acq: Acquisition, tile: Tile) -> str:
    """The item's folder below the file server root, as in Earth Search's ``sentinel-cogs`` bucket."""
    d = acq.datetime
    return (f"sentinel-cogs/sentinel-s2-l2a-cogs/{tile.utm_zone}/{tile.latitude_band}/"
            f"{tile.grid_square}/{d.year}/{d.month}/{item_id(acq, tile)}")


def jp2_path(acq: Acquisition, tile: Tile) -> str:
    """The item's JPEG 2000 folder below the file server root, as in the ``sentinel-s2-l2a`` bucket."""
    d = acq.datetime
    return (f"sentinel-s2-l2a/tiles/{tile.utm_zone}/{tile.latitude_band}/{tile.grid_square}/"
            f"{d.year}/{d.month}/{d.day}/0")


def generation_time(scenario: Scenario, acq: Acquisition) -> dt.datetime:
    """When ESA generated the L2A product (UTC): the datatake's start plus the scenario's
    ``generation_after``; the ``<generation>`` field of the ids and ``s2:generation_time``."""
    return acq.datatake_start + scenario.generation_after


def identifiers(scenario: Scenario, acq: Acquisition, tile: Tile) -> dict[str, str]:
    """The item's ``s2:product_uri``, ``s2:datatake_id``, ``s2:datastrip_id``, ``s2:granule_id``."""
    sat, n = satellite(acq), scenario.processing_baseline
    start = f"{acq.datatake_start:%Y%m%dT%H%M%S}"
    gen = f"{generation_time(scenario, acq):%Y%m%dT%H%M%S}"
    orbit = absolute_orbit(acq.platform, acq.datetime, scenario.relative_orbit)
    strip = f"{acq.datetime - DATASTRIP_LEAD:%Y%m%dT%H%M%S}"
    return {
        "s2:product_uri": f"S{sat}_MSIL2A_{start}_N{n.replace('.', '')}_R{scenario.relative_orbit:03d}_"
                          f"T{tile.mgrs}_{gen}.SAFE",
        "s2:datatake_id": f"GS{sat}_{start}_{orbit:06d}_N{n}",
        "s2:datastrip_id": f"S{sat}_OPER_MSI_L2A_DS_{sat}PS_{gen}_S{strip}_N{n}",
        "s2:granule_id": f"S{sat}_OPER_MSI_L2A_TL_{sat}PS_{gen}_A{orbit:06d}_T{tile.mgrs}_N{n}",
    }
