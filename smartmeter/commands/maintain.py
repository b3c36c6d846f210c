"""`./lakehouse maintain`: Iceberg maintenance, under the write lock."""

import argparse

NAME = "maintain"
HELP = "Iceberg maintenance: optimize, expire_snapshots, remove_orphan_files"
PASSTHROUGH = True


def add_arguments(parser) -> None:
    parser.add_argument("args", nargs=argparse.REMAINDER, help="options, see ./lakehouse maintain --help")


def run(args, settings) -> int:
    from smartmeter.pipeline.maintenance import main

    return main(args.args, settings)
