"""The offline mirror: a STAC API and a COG file server on 127.0.0.1 over simulated scenes.

A leaf of the package: the teaching helpers never import it (they only see its URLs, through
``run/state.json``: :mod:`geolesson._home`); the ``geolesson mirror`` command and
``geolesson check`` drive it. Its parts:

``sentinel2/``, ``sentinel1/``
    one collection each: ``scenario`` (the TOML scenario's dates, tiles or areas),
    ``simulation`` (the scenes, position-anchored so crops agree), ``writing`` (COGs and
    previews), ``items`` (the STAC JSON in Earth Search's or Planetary Computer's schema)
    and ``build`` (every scene of the collection, in worker processes);
``noise``, ``stac``
    what the two collections share: position-anchored noise; licence, media type, timestamps;
``build``
    both collections into a fresh folder, swapped in when complete (:func:`geolesson.mirror.build.build`);
``jobs``
    the build's one pool of worker processes for both collections (longest chains first; workers
    die with the build; the first failure stops the rest and is said in one line);
``layout``
    the data on disk and whether it is intact: read by the builder and the server alike;
``server/``
    ``database`` (the private PostgreSQL + pgstac cluster, loading), ``app`` (the web app:
    STAC API + file server), ``service`` (start, stop, status), ``processes`` (finding this
    home's web app), ``ports`` and ``lock`` (one lifecycle command at a time).

The names below are the mirror's public entry points.
"""

from geolesson.mirror.layout import is_built, verify
from geolesson.mirror.server.database import MirrorError
from geolesson.mirror.server.service import start, status, stop

__all__ = ["start", "stop", "status", "verify", "is_built", "MirrorError"]
