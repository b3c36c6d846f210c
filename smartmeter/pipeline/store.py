"""The runner's record in PostgreSQL (schema `pipeline`, postgres-init/04-pipeline.sql): runs and
the offsets they read, gaps and their acknowledgement, and keyed state. Batch ids are run ids."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from smartmeter.config import Settings
from smartmeter.errors import LakehouseError
from smartmeter.pipeline.planner import Gap, Resumes, TopicBatch


@dataclass(frozen=True)
class GapRecord:
    gap_id: int
    topic: str
    partition: int
    kind: str
    detail: str
    messages_lost: int | None
    detected_at: datetime
    acknowledged_at: datetime | None


@dataclass(frozen=True)
class RunRecord:
    run_id: int
    trigger: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    duration_s: float | None
    messages_taken: int | None
    messages_behind: int | None
    reason: str | None
    error: str | None


RUN_COLUMNS = ("run_id, trigger, status, started_at, finished_at, duration_s, messages_taken, messages_behind, "
               "reason, error")


def connect(settings: Settings):
    import psycopg2

    try:
        conn = psycopg2.connect(**settings.postgres_connect_kwargs(role="pipeline"), application_name="lakehouse-pipeline")
    except psycopg2.OperationalError as exc:
        raise LakehouseError(
            f"cannot reach PostgreSQL at {settings.postgres_host}:{settings.postgres_port}: {str(exc).strip()}. "
            "Is the stack up? Check with ./lakehouse status"
        ) from exc
    conn.autocommit = True
    return conn


class PipelineStore:
    def __init__(self, settings: Settings) -> None:
        self.scope = settings.dbt_schema_suffix
        self._conn = connect(settings)

    def close(self) -> None:
        self._conn.close()

    def _rows(self, sql: str, params: Iterable = ()) -> list[tuple]:
        with self._conn.cursor() as cur:
            cur.execute(sql, tuple(params))
            return cur.fetchall() if cur.description else []

    # -- runs --------------------------------------------------------------------------------
    def start_run(self, trigger: str, command: str, reason: str) -> int:
        return self._rows(
            "insert into pipeline.runs (scope, trigger, command, reason, host, pid) values (%s, %s, %s, %s, %s, %s) "
            "returning run_id",
            (self.scope, trigger, command, reason, socket.gethostname(), os.getpid()),
        )[0][0]

    def record_offsets(self, run_id: int, batches: Iterable[TopicBatch]) -> None:
        rows = [(run_id, b.topic, b.topic_id, r.partition, r.start, r.end, r.log_end) for b in batches for r in b.ranges]
        with self._conn.cursor() as cur:
            cur.executemany(
                "insert into pipeline.run_offsets (run_id, topic, topic_id, kafka_partition, start_offset, end_offset, "
                "log_end_offset) values (%s, %s, %s, %s, %s, %s, %s)", rows,
            )

    def finish_run(self, run_id: int, status: str, *, messages_taken: int | None = None,
                   messages_behind: int | None = None, rows_landed: int | None = None,
                   rows_rejected: int | None = None, error: str | None = None) -> None:
        self._rows(
            "update pipeline.runs set status = %s, finished_at = now(), "
            "duration_s = extract(epoch from now() - started_at), messages_taken = %s, messages_behind = %s, "
            "rows_landed = %s, rows_rejected = %s, error = %s where run_id = %s",
            (status, messages_taken, messages_behind, rows_landed, rows_rejected, error, run_id),
        )

    def fail_abandoned_runs(self) -> int:
        """Runs still marked running while we hold the writer lock belong to a dead writer."""
        return len(self._rows(
            "update pipeline.runs set status = 'interrupted', finished_at = now(), "
            "error = coalesce(error, 'the writer died before finishing (lock released)') "
            "where scope = %s and status = 'running' returning run_id", (self.scope,),
        ))

    def last_run(self, status: str | None = None) -> RunRecord | None:
        rows = self._rows(
            f"select {RUN_COLUMNS} from pipeline.runs where scope = %s and (%s is null or status = %s) "
            "order by run_id desc limit 1", (self.scope, status, status),
        )
        return RunRecord(*rows[0]) if rows else None

    def recent_runs(self, limit: int) -> list[RunRecord]:
        rows = self._rows(f"select {RUN_COLUMNS} from pipeline.runs where scope = %s order by run_id desc limit %s",
                          (self.scope, limit))
        return [RunRecord(*row) for row in reversed(rows)]

    def last_committed_offsets(self) -> dict[tuple[str, int], tuple[str, int]]:
        """(topic, partition) -> (topic_id, end offset) of the newest ok run that read it."""
        rows = self._rows(
            "select distinct on (o.topic, o.kafka_partition) o.topic, o.kafka_partition, o.topic_id, o.end_offset "
            "from pipeline.run_offsets o join pipeline.runs r using (run_id) "
            "where r.scope = %s and r.status = 'ok' order by o.topic, o.kafka_partition, o.run_id desc",
            (self.scope,),
        )
        return {(topic, partition): (topic_id, end) for topic, partition, topic_id, end in rows}

    # -- gaps --------------------------------------------------------------------------------
    def record_gaps(self, gaps: Iterable[Gap]) -> None:
        for gap in gaps:
            self._rows(
                "insert into pipeline.gaps (scope, topic, topic_id, kafka_partition, gap_kind, previous_topic_id, "
                "first_missing_offset, resume_offset, messages_lost, detail) "
                "values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) on conflict do nothing",
                (self.scope, gap.topic, gap.topic_id, gap.partition, gap.kind, gap.previous_topic_id,
                 gap.first_missing_offset, gap.resume_offset, gap.messages_lost, gap.detail),
            )

    def gaps(self, *, open_only: bool = False) -> list[GapRecord]:
        rows = self._rows(
            "select gap_id, topic, kafka_partition, gap_kind, detail, messages_lost, detected_at, acknowledged_at "
            "from pipeline.gaps where scope = %s and (not %s or acknowledged_at is null) order by gap_id",
            (self.scope, open_only),
        )
        return [GapRecord(*row) for row in rows]

    def acknowledge_gaps(self, who: str, gap_ids: Iterable[int] | None = None) -> list[GapRecord]:
        ids = list(gap_ids) if gap_ids is not None else None
        self._rows(
            "update pipeline.gaps set acknowledged_at = now(), acknowledged_by = %s "
            "where scope = %s and acknowledged_at is null and (%s is null or gap_id = any(%s))",
            (who, self.scope, ids, ids or []),
        )
        return [g for g in self.gaps() if ids is None or g.gap_id in ids]

    def resumes(self, topic: str) -> Resumes:
        rows = self._rows(
            "select topic_id, kafka_partition, max(resume_offset) from pipeline.gaps "
            "where scope = %s and topic = %s and acknowledged_at is not null group by 1, 2",
            (self.scope, topic),
        )
        return {(topic_id, partition): offset for topic_id, partition, offset in rows}

    # -- keyed state -------------------------------------------------------------------------
    def get_state(self, key: str) -> str | None:
        rows = self._rows("select state_value from pipeline.state where scope = %s and state_key = %s", (self.scope, key))
        return rows[0][0] if rows else None

    def set_state(self, key: str, value: str) -> None:
        self._rows(
            "insert into pipeline.state (scope, state_key, state_value) values (%s, %s, %s) "
            "on conflict (scope, state_key) do update set state_value = excluded.state_value, updated_at = now()",
            (self.scope, key, value),
        )

    def master_data_fingerprint(self) -> str:
        """Changes whenever a row of the master data that the marts read changes."""
        parts = []
        for table, key in (("tariffs", "tariff_id"), ("tariff_periods", "tariff_id, day_type, start_hour"),
                           ("customers", "customer_id"), ("devices", "device_id"),
                           ("fault_labels", "device_id, fault_type, started_at"),
                           ("timezone_countries", "timezone"), ("public_holidays", "country_code, holiday_date")):
            parts.append(f"select '{table}', md5(coalesce(string_agg(md5(t::text), '' order by {key}), '')) from public.{table} t")
        rows = self._rows(" union all ".join(parts))
        return ",".join(f"{table}:{digest}" for table, digest in sorted(rows))
