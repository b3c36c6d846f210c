"""`./lakehouse logs SERVICE`: a service's log."""

import subprocess

from smartmeter.mode import mode

NAME = "logs"
HELP = "print a service's log (postgres, objectstore, kafka, trino, trino-worker-N, pipeline)"


def add_arguments(parser) -> None:
    parser.add_argument("service")
    parser.add_argument("-n", "--lines", type=int, default=100, help="how many lines from the end (default 100)")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")


def run(args, settings) -> int:
    if mode(settings) == "docker":
        from smartmeter import compose

        return compose.logs(args.service, args.lines, args.follow)
    from smartmeter.native.stack import log_path

    path = log_path(settings, args.service)
    return subprocess.call(["tail", "-n", str(args.lines), *(["-F"] if args.follow else []), str(path)])
