"""What the runner asks Trino: the offsets already landed, whether a batch landed whole, and
writes of a dead writer that are still running."""

from __future__ import annotations

import time
from collections.abc import Callable

from smartmeter.config import TRINO_DBT_USER, Settings
from smartmeter.pipeline.planner import StoredOffsets, TopicBatch
from smartmeter.trino_sql import query


def _table(settings: Settings, model: str, suffix: str = "") -> str:
    return f'iceberg."{settings.schema("staging")}"."{model}{suffix}"'


def table_exists(settings: Settings, model: str, base: str = "staging") -> bool:
    rows = query(settings, "select count(*) from iceberg.information_schema.tables "
                           f"where table_schema = '{settings.schema(base)}' and table_name = '{model}'")[1]
    return rows[0][0] > 0


def stored_offsets(settings: Settings, model: str) -> StoredOffsets:
    """Highest offset per (topic id, partition) in a landing table, from its Iceberg metadata
    (the table is partitioned by both, and keeps min/max per column per partition): the cost
    follows the number of partitions, not of rows."""
    if not table_exists(settings, model):
        return {}
    rows = query(settings, "select partition.kafka_topic_id, partition.kafka_partition, max(data.kafka_offset.max) "
                           f"from {_table(settings, model, '$partitions')} group by 1, 2")[1]
    return {(topic_id, int(partition)): int(offset) for topic_id, partition, offset in rows if offset is not None}


def landed_batch(settings: Settings, model: str, batch_id: int) -> dict[int, tuple[int, int, int]]:
    """partition -> (rows, lowest offset, highest offset) that batch `batch_id` landed."""
    rows = query(settings, "select kafka_partition, count(*), min(kafka_offset), max(kafka_offset) "
                           f"from {_table(settings, model)} where batch_id = {int(batch_id)} group by 1")[1]
    return {int(p): (int(n), int(lo), int(hi)) for p, n, lo, hi in rows}


def missing_from_batch(settings: Settings, batch: TopicBatch, model: str, batch_id: int) -> list[str]:
    """Partitions whose landed rows are not exactly the planned range (Kafka deleted messages
    between planning and reading, for example)."""
    if not any(r.size for r in batch.ranges):
        return []
    landed = landed_batch(settings, model, batch_id)
    problems = []
    for r in batch.ranges:
        if not r.size:
            continue
        got = landed.get(r.partition, (0, None, None))
        if got != (r.size, r.start, r.end - 1):
            problems.append(f"{batch.topic} partition {r.partition}: planned offsets {r.start}..{r.end - 1} "
                            f"({r.size} messages), landed {got[0]} (offsets {got[1]}..{got[2]})")
    return problems


def drop_leftover_temporaries(settings: Settings) -> list[str]:
    """Tables and views dbt names `*__dbt_tmp` outlive a killed run, or a failed unit test, and
    the next one then stops on "already exists"; with the write lock held, they are leftovers."""
    schemas = ", ".join(f"'{settings.schema(base)}'" for base in ("staging", "intermediate", "marts"))
    rows = query(settings, "select table_schema, table_name, table_type from iceberg.information_schema.tables "
                           f"where table_schema in ({schemas}) and table_name like '%\\_\\_dbt\\_tmp' escape '\\'")[1]
    dropped = []
    for schema, name, kind in rows:
        query(settings, f'drop {"view" if kind == "VIEW" else "table"} if exists iceberg."{schema}"."{name}"')
        dropped.append(f"{schema}.{name}")
    return dropped


def scope_pattern(settings: Settings) -> str:
    """A regular expression for this scope's schemas as dbt writes them ("staging", or
    "staging_<suffix>" for a DBT_SCHEMA_SUFFIX scope): writers of other scopes hold another lock."""
    return '"(' + "|".join(settings.schema(base) for base in ("staging", "intermediate", "marts")) + ')"'


# Statements that change a table. "create or replace table" is how a merge stages its batch
# (materializations/incremental.sql) and how a run writes its run tables (macros/run_tables.sql);
# a dead writer's copy must be cancelled like its MERGE.
WRITE_STATEMENT = r"(insert into|merge into|create (or replace )?table|alter table|drop table)"


def running_writes(settings: Settings) -> list[tuple[str, str]]:
    """Writes by dbt of this scope on this Trino that have not finished: (query id, first line of the query)."""
    rows = query(settings, "select query_id, query from system.runtime.queries "
                           "where state not in ('FINISHED', 'FAILED') and source like 'dbt-trino%' "
                           f"and \"user\" = '{TRINO_DBT_USER}' "
                           f"and regexp_like(lower(query), '{WRITE_STATEMENT}') "
                           f"and regexp_like(query, '{scope_pattern(settings)}')")[1]
    return [(query_id, text.strip().splitlines()[0][:120] if text else "") for query_id, text in rows]


def stop_orphaned_writes(settings: Settings, progress: Callable[[str], None], timeout_s: float = 120) -> None:
    """With the write lock held, any dbt write still running belongs to a writer that died
    (SIGKILL, crash): cancel it and wait until Trino has finished it, so it cannot commit after
    the next batch is planned. Iceberg commits are atomic, so a cancelled write leaves nothing."""
    deadline = time.monotonic() + timeout_s
    announced = False
    while True:
        writes = running_writes(settings)
        if not writes:
            return
        if not announced:
            progress(f"cancelling {len(writes)} write(s) left running by a writer that stopped: "
                     + "; ".join(text for _, text in writes))
            announced = True
        for query_id, _ in writes:
            try:
                query(settings, f"call system.runtime.kill_query(query_id => '{query_id}', "
                                "message => 'its writer stopped; cancelled by the next writer')")
            except Exception:  # noqa: BLE001 - it may have finished in the meantime
                pass
        if time.monotonic() > deadline:
            from smartmeter.errors import LakehouseError

            raise LakehouseError(f"writes of a stopped writer are still running on Trino after {timeout_s:.0f}s: {writes}")
        time.sleep(1)
