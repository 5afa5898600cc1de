"""The ``geolesson`` command: ``geolesson mirror build|start|stop|status`` and ``geolesson check``."""

from __future__ import annotations

import argparse
import sys


def _mirror(args: argparse.Namespace) -> int:
    # imported here: `geolesson check` must work (and report) even where the mirror's
    # server dependencies are broken
    from geolesson.mirror import service
    from geolesson.mirror.build import build
    from geolesson.mirror.database import MirrorError

    try:
        if args.action == "build":
            build(workers=args.workers, force=args.force)
        elif args.action == "start":
            service.start()
        elif args.action == "stop":
            service.stop()
        elif args.action == "status":
            up, message = service.status()
            print(message)
            return 0 if up else 3
    except MirrorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _check(args: argparse.Namespace) -> int:
    from geolesson.check import run_checks

    return 0 if run_checks() else 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="geolesson", description="Helpers and offline mirror of the geolesson book.")
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("mirror", help="the offline STAC API and COG server on 127.0.0.1")
    m.add_argument("action", choices=["build", "start", "stop", "status"],
                   help="build: simulate the data; start: run it (idempotent); stop: end it; status: is it up (exit 3 if not)")
    m.add_argument("--workers", type=int, default=None, help="build: processes to simulate with (default: all cores, at most 4)")
    m.add_argument("--force", action="store_true", help="build: rebuild even if the data is up to date")
    m.set_defaults(func=_mirror)
    c = sub.add_parser("check", help="self-test of the installation: imports, GDAL/PROJ, data source, one search, one COG read")
    c.set_defaults(func=_check)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
