"""`./lakehouse setup`: a fresh stack (what ./initial-setup.sh runs)."""

NAME = "setup"
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
