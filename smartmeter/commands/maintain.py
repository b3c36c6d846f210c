"""`./lakehouse maintain`: Iceberg maintenance, under the write lock."""

NAME = "maintain"
HELP = "Iceberg maintenance: optimize, expire_snapshots, remove_orphan_files"
PASSTHROUGH = "options, see ./lakehouse maintain --help"


def run(args, settings) -> int:
    from smartmeter.pipeline.maintenance import main

    return main(args.args, settings)
