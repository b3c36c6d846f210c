"""`./lakehouse stop-service NAME`: stop one service (supervisord leaves it stopped)."""

from smartmeter.config import TRINO_ADMIN_USER

NAME = "stop-service"
# The Trino user this command works as (trino-config/etc/rules.json); cli.py applies it.
TRINO_AS = TRINO_ADMIN_USER
HELP = "stop one service until the next `up` (for failure drills and maintenance)"


def add_arguments(parser) -> None:
    parser.add_argument("service")


def run(args, settings) -> int:
    from smartmeter.native import stack

    stack.stop_service(settings, args.service)
    return 0
