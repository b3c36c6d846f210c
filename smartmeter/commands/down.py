"""`./lakehouse down`: stop every service, keeping data."""

from smartmeter.config import TRINO_ADMIN_USER
from smartmeter.mode import mode

NAME = "down"
# The Trino user this command works as (trino-config/etc/rules.json); cli.py applies it.
TRINO_AS = TRINO_ADMIN_USER
HELP = "stop every service, keeping data"


def run(args, settings) -> int:
    if mode(settings) == "docker":
        from smartmeter import compose

        return compose.down()
    from smartmeter.native import stack

    stack.down(settings)
    return 0
