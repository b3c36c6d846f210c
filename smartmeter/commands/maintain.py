"""`./lakehouse maintain`: Iceberg maintenance, under the write lock."""

from smartmeter.config import TRINO_ADMIN_USER

NAME = "maintain"
# The Trino user this command works as (trino-config/etc/rules.json); cli.py applies it.
TRINO_AS = TRINO_ADMIN_USER
HELP = "Iceberg maintenance: optimize, expire_snapshots, remove_orphan_files"
PASSTHROUGH = "options, see ./lakehouse maintain --help"


def run(args, settings) -> int:
    from smartmeter.pipeline.maintenance import main

    return main(args.args, settings)
