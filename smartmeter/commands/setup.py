"""`./lakehouse setup`: a fresh stack (what ./initial-setup.sh runs)."""

from smartmeter.config import TRINO_ADMIN_USER

NAME = "setup"
# The Trino user this command works as (trino-config/etc/rules.json); cli.py applies it.
TRINO_AS = TRINO_ADMIN_USER
# cli.py writes missing secrets to .env and checks exposure first.
STARTS_STACK = True
HELP = "fresh setup (what ./initial-setup.sh runs): native by default, or --docker"


def add_arguments(parser) -> None:
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--native", action="store_true", help="local processes, no Docker (the default)")
    modes.add_argument("--docker", action="store_true", help="Docker Compose (docker-compose.yml)")


def run(args, settings) -> int:
    if args.docker:
        from smartmeter.compose import setup as compose_setup

        return compose_setup()
    from smartmeter.native import stack

    stack.setup(settings)
    return 0
