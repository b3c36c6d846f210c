"""`./lakehouse up`: start every service, keeping data."""

import os

from smartmeter.config import TRINO_ADMIN_USER
from smartmeter.mode import mode

NAME = "up"
# The Trino user this command works as (trino-config/etc/rules.json); cli.py applies it.
TRINO_AS = TRINO_ADMIN_USER
# cli.py writes missing secrets to .env and checks exposure first.
STARTS_STACK = True
HELP = "start every service, keeping data (the pipeline loop included)"


def add_arguments(parser) -> None:
    parser.add_argument("--trino-workers", type=int, metavar="N", help="run N Trino worker processes besides the coordinator")
    parser.add_argument("--no-pipeline", action="store_true",
                        help="leave the pipeline loop stopped (DBT_AUTO_RUN=false keeps it running but idle)")
    parser.add_argument("--no-dashboards", action="store_true",
                        help="without Superset (stopped if it runs); LAKEHOUSE_DASHBOARDS=false does the same")


def run(args, settings) -> int:
    if mode(settings) == "docker":
        from smartmeter import compose

        if args.trino_workers:
            os.environ["TRINO_WORKERS"] = str(args.trino_workers)
        return compose.up(("cluster",) if args.trino_workers else (), dashboards=settings.dashboards and not args.no_dashboards)
    from smartmeter.native import stack

    stack.up(settings, trino_workers=args.trino_workers, pipeline=not args.no_pipeline, dashboards=not args.no_dashboards)
    return 0
