"""`./lakehouse status`: one line per service, and the pipeline's lag and last good cycle."""

from smartmeter.mode import mode

NAME = "status"
HELP = "health of every service (restarts, pipeline lag); exit 0 only when all are healthy"


def run(args, settings) -> int:
    if mode(settings) == "docker":
        from smartmeter import compose

        return 0 if compose.status() else 1
    from smartmeter.native import stack

    return 0 if stack.status(settings) else 1
