"""`./lakehouse <command>` (and the `lakehouse` entry point): day-2 operations on the lakehouse, in
native or Docker mode. Each command lives in smartmeter/commands/; argparse dispatches to it, and
the one error type (LakehouseError) is caught here, once."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from smartmeter.commands import COMMANDS
from smartmeter.config import load_settings
from smartmeter.errors import LakehouseError

EPILOG = """Mode: LAKEHOUSE_MODE=native|docker, else native when $LAKEHOUSE_HOME holds native state, else
Docker when a Docker engine answers."""


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="lakehouse", description="Day-2 operations on the smart meter lakehouse.",
                                  epilog=EPILOG)
    sub = top.add_subparsers(dest="command", required=True, metavar="command")
    for module in COMMANDS:
        # A pass-through command's -h/--help belongs to the tool behind it.
        passthrough = getattr(module, "PASSTHROUGH", None)
        command = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP, add_help=not passthrough)
        if passthrough:
            command.add_argument("args", nargs=argparse.REMAINDER, help=passthrough)
        if hasattr(module, "add_arguments"):
            module.add_arguments(command)
        command.set_defaults(module=module)
    return top


def _prepare_start() -> None:
    """Before a command starts services: secrets exist, and an exposed stack has real ones."""
    from smartmeter.security import ensure_env_file, refuse_unsafe_exposure

    written = ensure_env_file()
    if written:
        print(f"Wrote {', '.join(written)} to .env (mode 0600)", flush=True)
    refuse_unsafe_exposure(load_settings())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Piped into `head`, stop quietly like any command-line tool.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    top = parser()
    args, unknown = top.parse_known_args(argv)
    if unknown:
        if not getattr(args.module, "PASSTHROUGH", None):
            top.error(f"unrecognized arguments: {' '.join(unknown)}")
        # Options before the first positional belong to the tool (dbt --debug build).
        args.args = unknown + args.args
    try:
        if getattr(args.module, "STARTS_STACK", False):
            _prepare_start()
        settings = load_settings()
        if getattr(args.module, "TRINO_AS", None):
            settings = settings.as_trino(args.module.TRINO_AS)
        return args.module.run(args, settings)
    except LakehouseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
