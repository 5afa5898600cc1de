"""The ``geolesson`` command: ``geolesson mirror build|start|stop|status|verify``, ``geolesson chips
index`` and ``geolesson check``."""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from datetime import datetime, timezone


def _workers(text: str) -> int:
    """``--workers``: an integer in 1..2 x cores (argparse reports the error with the option's name)."""
    from geolesson.mirror.build import check_workers

    try:
        return check_workers(int(text))
    except ValueError as exc:
        if "workers=" in str(exc):
            raise argparse.ArgumentTypeError(str(exc).replace("workers=", "")) from None
        cores = len(os.sched_getaffinity(0))
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer number of processes (1..{2 * cores})") from None


class _Parser(argparse.ArgumentParser):
    """argparse's parser whose errors are one line (``geolesson chips index: error: argument
    --bbox: ...``): the usage block is what ``--help`` is for."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _count(minimum: int):
    """An argparse type: an integer >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, not {text!r}")
        return value
    return parse


def _number(allowed: str, ok):
    """An argparse type: a float for which ``ok(value)`` holds (NaN never does); ``allowed``
    says which numbers those are."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if math.isnan(value) or not ok(value):
            raise argparse.ArgumentTypeError(f"must be {allowed}, not {text!r}")
        return value
    return parse


_finite = _number("a finite number", math.isfinite)
_fraction = _number("a fraction in [0, 1]", lambda value: 0 <= value <= 1)


def _text(what: str):
    """An argparse type: a non-empty string (``what`` says what it names)."""
    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"must name {what}, not {text!r}")
        return text
    return parse


def _scheduler(text: str) -> str:
    """An argparse type: a Dask scheduler address, ``[protocol://]host:port``."""
    if not re.fullmatch(r"([a-z]+://)?[\w.\-\[\]:]+:\d{1,5}", text):
        raise argparse.ArgumentTypeError(f"must be a Dask scheduler address such as tcp://127.0.0.1:8786, "
                                         f"not {text!r}")
    return text


def _instant(text: str, end: bool) -> datetime | None:
    """One end of a STAC datetime: None for an open end; a year, a month, a date or an
    RFC 3339 date-time (UTC where no offset is given). ValueError if it is none of these."""
    if text in ("", ".."):
        return None
    if re.fullmatch(r"\d{4}", text):
        return datetime(int(text) + end, 1, 1, tzinfo=timezone.utc)
    if m := re.fullmatch(r"(\d{4})-(\d{2})", text):
        year, month = int(m[1]), int(m[2])
        start = datetime(year, month, 1, tzinfo=timezone.utc)  # ValueError for month 13
        return datetime(year + month // 12, month % 12 + 1, 1, tzinfo=timezone.utc) if end else start
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _stac_datetime(text: str) -> str:
    """An argparse type: a STAC search ``datetime`` (a date, a date-time, or an interval
    ``start/end`` with ``..`` for an open end), checked here and passed on as given."""
    parts = text.split("/")
    try:
        if len(parts) > 2 or not text.strip():
            raise ValueError
        ends = [_instant(part, i == 1) for i, part in enumerate(parts)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a STAC datetime: give a date (2023-07-01), a month "
                                         "(2023-07), a year, an RFC 3339 date-time, or an interval such as "
                                         "2023-06-01/2023-09-30 (.. for an open end)") from None
    if len(ends) == 2 and None not in ends and ends[0] > ends[1]:
        raise argparse.ArgumentTypeError(f"{text!r}: the start must come before the end")
    return text


class _BBox(argparse.Action):
    """``--bbox W S E N`` in degrees: longitudes in -180..180, latitudes in -90..90, south <=
    north (west > east is a box over the antimeridian, as STAC allows)."""

    def __call__(self, parser, namespace, values, option_string=None):
        west, south, east, north = values
        for name, value, limit in (("W", west, 180), ("S", south, 90), ("E", east, 180), ("N", north, 90)):
            if not -limit <= value <= limit:
                raise argparse.ArgumentError(self, f"{name}={value:g} is outside {-limit}..{limit} degrees")
        if south > north:
            raise argparse.ArgumentError(self, f"the south edge S={south:g} lies north of N={north:g}")
        setattr(namespace, self.dest, list(values))


def _mirror(args: argparse.Namespace) -> int:
    # imported here: `geolesson check` must work (and report) even where the mirror's
    # server dependencies are broken
    from geolesson import mirror
    from geolesson.mirror.build import build

    try:
        if args.action == "build":
            build(workers=args.workers, force=args.force)
        elif args.action == "start":
            mirror.start()
        elif args.action == "stop":
            mirror.stop()
        elif args.action == "status":
            up, message = mirror.status()
            print(message)
            return 0 if up else 3
        elif args.action == "verify":
            ok, message = mirror.verify()
            print(message)
            return 0 if ok else 1
    except (mirror.MirrorError, ValueError, TimeoutError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if args.action != "build":
            raise
        print("error: mirror build interrupted: its workers are stopped and its partial folder deleted; "
              "the data are as they were", file=sys.stderr)
        return 130  # 128 + SIGINT, as a shell reports a Ctrl-C
    return 0


#: seconds to wait for a ``--scheduler`` that does not answer
SCHEDULER_TIMEOUT = 10
# the STAC API that serves each collection (mirror and live); others: --provider
COLLECTION_PROVIDERS = {"sentinel-2-l2a": "earth-search", "sentinel-1-rtc": "planetary-computer"}


def _chips_index(args: argparse.Namespace) -> int:
    """Search, then index every item found with ``geolesson.chips.index_archive``."""
    import warnings

    from geolesson import sources
    from geolesson.chips import index_archive

    provider = args.provider or COLLECTION_PROVIDERS.get(args.collection, "earth-search")
    client = None
    if args.scheduler:  # first: a scheduler that cannot be reached fails before any search
        import distributed

        try:
            client = distributed.Client(args.scheduler, timeout=f"{SCHEDULER_TIMEOUT}s")
        except (OSError, TimeoutError) as exc:
            cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            print(f"error: cannot reach the Dask scheduler at {args.scheduler} within {SCHEDULER_TIMEOUT} s "
                  f"({cause[:200]})", file=sys.stderr)
            return 1
    try:
        search = sources.open_client(provider).search(
            collections=[args.collection], bbox=args.bbox, datetime=args.datetime,
            max_items=args.max_items)
        counted = sources.source_mode() == "mirror"
        before = sources.request_counts()["total"]["bytes"] if counted else 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the report below lists failures
            report = index_archive(search, args.out, chip_size=args.chip_size, client=client,
                                   workers=args.workers, max_nodata=args.max_nodata)
    except (ValueError, TypeError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    finally:
        if client is not None:
            client.close()
    read = (f"{(sources.request_counts()['total']['bytes'] - before) / 1e6:.1f} MB read"
            if counted else "MB read: not counted in live mode")
    print(f"{report}\n{read}")
    return 1 if report.failed else 0


def _check(args: argparse.Namespace) -> int:
    from geolesson.check import run_checks

    return 0 if run_checks() else 1


def parser() -> argparse.ArgumentParser:
    """The ``geolesson`` command's argument parser: ``mirror build|start|stop|status|verify``,
    ``chips index`` and ``check``, each with its ``--help``."""
    p = _Parser(prog="geolesson", description="Helpers and offline mirror of the geolesson book.")
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("mirror", help="the offline STAC API and COG server on 127.0.0.1")
    actions = m.add_subparsers(dest="action", required=True, metavar="{build,start,stop,status,verify}")
    b = actions.add_parser("build", help="simulate the data (kept if up to date and intact)")
    b.add_argument("--workers", type=_workers, default=None,
                   help="processes to simulate with: 1..2 x cores (default: all cores, at most 4)")
    b.add_argument("--force", action="store_true", help="rebuild even if the data is up to date")
    actions.add_parser("start", help="run it (idempotent; repairs a half-dead mirror)")
    actions.add_parser("stop", help="end it: no process or port of it remains")
    actions.add_parser("status", help="is it up: the STAC API and PostgreSQL (exit 3 if not)")
    actions.add_parser("verify", help="check every built file's SHA-256 against build.json (exit 1 if any differs)")
    m.set_defaults(func=_mirror)
    ch = sub.add_parser("chips", help="chip indexes of many items")
    chips_sub = ch.add_subparsers(dest="action", required=True)
    ix = chips_sub.add_parser(
        "index", help="search a collection and write one chip-index part per item (resumable)",
        description="Search a collection (mirror or live, as GEOLESSON_SOURCE says) and write "
                    "the chip index of every item found to OUT/item_id=<id>/part.parquet, one "
                    "Dask task per item. Rerun to resume: items whose part is up to date are "
                    "skipped. Exit 0: all indexed; 1: some items failed (listed); 2: bad input.")
    ix.add_argument("--collection", required=True, type=_text("a collection"),
                    help="e.g. sentinel-2-l2a, sentinel-1-rtc")
    ix.add_argument("--bbox", type=_finite, nargs=4, metavar=("W", "S", "E", "N"), action=_BBox,
                    help="area in degrees (EPSG:4326)")
    ix.add_argument("--datetime", type=_stac_datetime, help="e.g. 2023-06-01/2023-09-30")
    ix.add_argument("--max-items", type=_count(1), default=None, help="stop after this many items")
    ix.add_argument("--chip-size", type=_count(1), required=True, help="chip side in pixels")
    ix.add_argument("--max-nodata", type=_fraction, default=None,
                    help="keep chips with at most this nodata fraction (0..1)")
    ix.add_argument("--out", required=True, type=_text("a folder"), help="folder of the parts (created if missing)")
    ix.add_argument("--provider", choices=["earth-search", "planetary-computer"], default=None,
                    help="STAC API to search (default: the one that serves the collection)")
    where = ix.add_mutually_exclusive_group()
    where.add_argument("--scheduler", type=_scheduler, help="address of a running Dask scheduler (tcp://host:8786)")
    where.add_argument("--workers", type=_count(0), default=None,
                       help="worker processes of a local Dask cluster (0: serial, no Dask; default: cores, at most 4)")
    ix.set_defaults(func=_chips_index)
    c = sub.add_parser("check", help="self-test of the installation: imports, GDAL/PROJ, data source, one search, "
                                     "one COG read, the mirror's data")
    c.set_defaults(func=_check)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the ``geolesson`` command with ``argv`` (None: ``sys.argv[1:]``); returns its exit
    status: 0 ok; 1 a failure (the message on stderr); 2 bad input (argparse's, or ``chips
    index``'s); 3 ``mirror status``: not running."""
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:
        # the reader of a pipe left early (`geolesson mirror status | head -1`): not our
        # failure, but Python would print a traceback when it flushes stdout at exit
        # (docs.python.org/3/library/signal.html#note-on-sigpipe)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
