"""`./lakehouse down`: stop every service, keeping data."""

from smartmeter.mode import mode

NAME = "down"
HELP = "stop every service, keeping data"


def run(args, settings) -> int:
    if mode(settings) == "docker":
        from smartmeter import compose

        return compose.down()
    from smartmeter.native import stack

    stack.down(settings)
    return 0
