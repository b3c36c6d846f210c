"""`./lakehouse stop-service NAME`: stop one service (supervisord leaves it stopped)."""

NAME = "stop-service"
HELP = "stop one service until the next `up` (for failure drills and maintenance)"


def add_arguments(parser) -> None:
    parser.add_argument("service")


def run(args, settings) -> int:
    from smartmeter.native import stack

    stack.stop_service(settings, args.service)
    return 0
