"""`./lakehouse catch-up`: pipeline cycles back to back until no topic has a backlog."""

from smartmeter.config import TRINO_DBT_USER
from smartmeter.mode import docker_exec, mode

NAME = "catch-up"
# The Trino user this command works as (trino-config/etc/rules.json); cli.py applies it.
TRINO_AS = TRINO_DBT_USER
HELP = "pipeline cycles back to back until no topic has a backlog"


def add_arguments(parser) -> None:
    parser.add_argument("--max-cycles", type=int, metavar="N", help="give up after N cycles")


def run(args, settings) -> int:
    if mode(settings) == "docker":
        extra = ["--max-cycles", str(args.max_cycles)] if args.max_cycles else []
        return docker_exec("dbt-transformations", "/opt/lakehouse/bin/python", "-m", "smartmeter", "catch-up", *extra)
    from smartmeter.pipeline.catch_up import catch_up

    return catch_up(settings, max_cycles=args.max_cycles)
