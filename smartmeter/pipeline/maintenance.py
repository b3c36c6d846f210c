"""Iceberg table maintenance as one operation (`./lakehouse maintain`).

For every table in the lakehouse schemas (iceberg.staging, iceberg.intermediate, iceberg.marts):

1. `optimize`: rewrite small data files (and merge-on-read delete files) into larger ones;
2. `expire_snapshots`: drop snapshots older than the retention, and the files only they used;
3. `remove_orphan_files`: delete files no snapshot references (e.g. from failed writes).

It prints data-file counts (from the `$files` metadata table) and snapshot counts before and
after. Trino refuses retentions below the catalog's `iceberg.expire-snapshots.min-retention` /
`iceberg.remove-orphan-files.min-retention` (trino-config/etc/catalog/iceberg.properties).

It holds the lakehouse's write lock for the whole run (smartmeter/pipeline/lock.py): `optimize`
commits like any other write, so it never overlaps a pipeline cycle. The pipeline loop runs it on
its own schedule (PIPELINE_MAINTENANCE_INTERVAL), with the retention ICEBERG_SNAPSHOT_RETENTION.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from trino.exceptions import TrinoQueryError

from smartmeter.config import TRINO_ADMIN_USER, Settings
from smartmeter.errors import LakehouseError
from smartmeter.pipeline.lock import WriterLock
from smartmeter.pipeline.restatements import PUBLISHED_MARTS, RestatementLog, published_checkpoints
from smartmeter.pipeline.store import PipelineStore
from smartmeter.trino_sql import TrinoSession, format_table

DEFAULT_SCHEMAS = ("staging", "intermediate", "marts")
DURATION = re.compile(r"^\d+(\.\d+)?(ms|s|m|h|d)$")
SIZE = re.compile(r"^\d+(\.\d+)?(B|kB|MB|GB)$")


@dataclass
class TableReport:
    table: str
    files_before: int
    files_after: int | None = None
    snapshots_before: int = 0
    snapshots_after: int | None = None
    seconds: float = 0.0
    error: str | None = None


def parse_args(argv: Sequence[str], settings: Settings | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="lakehouse maintain",
        description="Optimize, expire snapshots and remove orphan files on every Iceberg table of the lakehouse.",
    )
    parser.add_argument("--schema", action="append", dest="schemas", metavar="SCHEMA",
                        help=f"schema of catalog iceberg to maintain (repeatable; default: {', '.join(DEFAULT_SCHEMAS)})")
    parser.add_argument("--table", action="append", dest="tables", metavar="NAME",
                        help="only these tables (repeatable; default: every table of the schemas)")
    retention = settings.snapshot_retention if settings else "1d"
    parser.add_argument("--retention", default=retention,
                        help=f"keep snapshots and unreferenced files younger than this (Trino duration; default {retention}, "
                             "ICEBERG_SNAPSHOT_RETENTION; at least the catalog's min-retention, 1h)")
    parser.add_argument("--file-size-threshold", default="128MB",
                        help="optimize rewrites files smaller than this (default 128MB)")
    parser.add_argument("--skip-optimize", action="store_true", help="do not rewrite data files")
    parser.add_argument("--skip-orphans", action="store_true", help="do not remove orphan files")
    parser.add_argument("--catalog", default="iceberg", help="Iceberg catalog name in Trino (default iceberg)")
    args = parser.parse_args(list(argv))
    if not DURATION.match(args.retention):
        parser.error(f"--retention {args.retention!r} is not a Trino duration such as 7d, 36h or 1d")
    if not SIZE.match(args.file_size_threshold):
        parser.error(f"--file-size-threshold {args.file_size_threshold!r} is not a size such as 128MB")
    for name in (args.schemas or []) + (args.tables or []) + [args.catalog]:
        if not re.match(r"^[A-Za-z0-9_]+$", name):
            parser.error(f"{name!r} is not a plain identifier")
    return args


def list_tables(trino: TrinoSession, catalog: str, schemas: Sequence[str], only: Sequence[str] | None) -> list[str]:
    quoted = ", ".join(f"'{s}'" for s in schemas)
    rows = trino.rows(
        f"select table_schema, table_name from {catalog}.information_schema.tables "
        f"where table_schema in ({quoted}) and table_type = 'BASE TABLE' order by 1, 2"
    )
    tables = [f'{catalog}."{schema}"."{name}"' for schema, name in rows if not name.endswith("__dbt_tmp")]
    if only:
        tables = [t for t in tables if t.rsplit(".", 1)[1].strip('"') in only]
    return tables


def metadata_table(table: str, suffix: str) -> str:
    head, name = table.rsplit(".", 1)
    return f'{head}."{name.strip(chr(34))}${suffix}"'


def duration_seconds(duration: str) -> float:
    text, unit = DURATION.match(duration).group(0, 2)
    return float(text[: -len(unit)]) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def expiry_retention(retention: str, keep_s: float) -> str:
    """The retention for expire_snapshots: `retention`, or longer when `keep_s` seconds must stay."""
    return retention if duration_seconds(retention) >= keep_s else f"{int(keep_s) + 1}s"


def kept_for_restatements(settings: Settings, trino: TrinoSession, tables: Sequence[str]) -> dict[str, float]:
    """Table -> seconds of history that expire_snapshots must keep: the restatement log compares
    each published mart with its last published snapshot (smartmeter/pipeline/restatements.py),
    which may be older than the retention while a long catch-up runs."""
    store = PipelineStore(settings)
    try:
        checkpoints = published_checkpoints(store)
    finally:
        store.close()
    log = RestatementLog(settings)
    kept = {}
    for mart in PUBLISHED_MARTS:
        checkpoint, table = checkpoints[mart.name], log.table(mart)
        if checkpoint is None or table not in tables:
            continue
        committed = log.committed_at(trino, mart, checkpoint.snapshot_id)
        if committed:
            kept[table] = (datetime.now(UTC) - committed[checkpoint.snapshot_id]).total_seconds() + 3600
    return kept


def maintain_table(trino: TrinoSession, table: str, args: argparse.Namespace, keep_s: float = 0) -> TableReport:
    started = time.monotonic()
    report = TableReport(
        table,
        files_before=trino.scalar(f"select count(*) from {metadata_table(table, 'files')} where content = 0"),
        snapshots_before=trino.scalar(f"select count(*) from {metadata_table(table, 'snapshots')}"),
    )
    try:
        if not args.skip_optimize:
            trino.rows(f"alter table {table} execute optimize(file_size_threshold => '{args.file_size_threshold}')")
        retention = expiry_retention(args.retention, keep_s)
        trino.rows(f"alter table {table} execute expire_snapshots(retention_threshold => '{retention}')")
        if not args.skip_orphans:
            trino.rows(f"alter table {table} execute remove_orphan_files(retention_threshold => '{args.retention}')")
    except TrinoQueryError as exc:  # report it and go on with the next table
        report.error = str(exc.message or exc).splitlines()[0]
    report.files_after = trino.scalar(f"select count(*) from {metadata_table(table, 'files')} where content = 0")
    report.snapshots_after = trino.scalar(f"select count(*) from {metadata_table(table, 'snapshots')}")
    report.seconds = time.monotonic() - started
    return report


def format_reports(reports: Sequence[TableReport]) -> str:
    header = ("table", "files before", "files after", "snapshots before", "snapshots after", "seconds", "result")
    rows = [
        (r.table, r.files_before, r.files_after, r.snapshots_before, r.snapshots_after,
         f"{r.seconds:.1f}", "ok" if r.error is None else f"error: {r.error}")
        for r in reports
    ]
    return format_table(header, rows, footer=totals(reports))


def totals(reports: Sequence[TableReport]) -> str:
    before, after = sum(r.files_before for r in reports), sum(r.files_after or 0 for r in reports)
    return f"{len(reports)} table(s): data files {before} -> {after}"


def maintain(settings: Settings, args: argparse.Namespace, progress=print) -> list[TableReport]:
    """Every table of the lakehouse, one by one, with the write lock held."""
    # Table procedures are the admin's (trino-config/etc/rules.json), whoever schedules them.
    settings = settings.as_trino(TRINO_ADMIN_USER)
    lock = WriterLock(settings, "maintenance")
    lock.acquire(progress=progress)
    try:
        with TrinoSession(settings) as trino:
            schemas = args.schemas or [settings.schema(base) for base in DEFAULT_SCHEMAS]
            try:
                tables = list_tables(trino, args.catalog, schemas, args.tables)
            except TrinoQueryError as exc:
                raise LakehouseError(f"cannot list the tables of catalog {args.catalog}: {exc.message}") from exc
            kept = kept_for_restatements(settings, trino, tables)
            reports = []
            for table in tables:
                progress(f"maintaining {table} ...")
                reports.append(maintain_table(trino, table, args, kept.get(table, 0)))
            return reports
    finally:
        lock.release()


def main(argv: Sequence[str], settings: Settings) -> int:
    args = parse_args(argv, settings)
    reports = maintain(settings, args)
    if not reports:
        print("nothing to maintain: no Iceberg tables in the lakehouse schemas (has the pipeline run yet?)")
        return 0
    print(format_reports(reports))
    failed = [r for r in reports if r.error]
    if failed:
        print(f"error: {len(failed)} table(s) failed; see the result column", file=sys.stderr)
        return 1
    return 0
