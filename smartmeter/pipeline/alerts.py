"""Health alerts out. After every successful run, each meter whose status moved into or out of
ACTION_REQUIRED is published once to the alerts topic (ALERTS_TOPIC, default meter_alerts).

A meter requires action when it is UNHEALTHY on its latest complete local day in `device_health`
(the status that makes its customer ACTION_REQUIRED in `customer_usage_summary`); it is CLEARED
when that day is HEALTHY or DEGRADED after an alert.

Exactly once without Kafka transactions: the topic itself is the record of what was published.
PostgreSQL keeps a copy of it (pipeline.alert_devices: each meter's last published alert) and how
far into the topic that copy goes (pipeline.alert_offsets). A publication first reads the topic
from there to its end, which picks up what a killed run published but never recorded, then diffs
the mart against the copy, produces the difference with an idempotent producer, and reads it back
the same way. The pipeline's writer lock keeps a second publisher out meanwhile.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from smartmeter.config import Settings
from smartmeter.errors import LakehouseError
from smartmeter.pipeline.lakehouse import table_exists
from smartmeter.pipeline.store import PipelineStore, connect
from smartmeter.pipeline.topics import describe_topics, ensure_topics
from smartmeter.trino_sql import TrinoSession

ACTION_REQUIRED, CLEARED = "ACTION_REQUIRED", "CLEARED"
# The health status that requires action (models/marts/device_health.yml).
ACTION_STATUS = "UNHEALTHY"
# pipeline.state key: the highest batch id of device_health already compared with the alerts.
WATERMARK_STATE = "alerts_batch_id"
_DELIVERY_TIMEOUT_S = 60.0
# Meters per since-date query: keeps its text well under Trino's 1 MB limit.
_SINCE_CHUNK = 5_000


@dataclass(frozen=True)
class Alert:
    """One message on the alerts topic (its JSON schema is in the README, section Alerts)."""

    device_id: str
    customer_id: str | None
    status: str
    health_status: str
    reasons: list[str]
    since_date: date
    reading_date: date
    health_score_pct: float | None
    run_id: int
    published_at: datetime

    @property
    def alert_id(self) -> str:
        return f"{self.device_id}/{self.status}/{self.since_date.isoformat()}"

    def to_json(self) -> str:
        return json.dumps({
            "alert_id": self.alert_id,
            "device_id": self.device_id,
            "customer_id": self.customer_id,
            "status": self.status,
            "health_status": self.health_status,
            "reasons": self.reasons,
            "since_date": self.since_date.isoformat(),
            "reading_date": self.reading_date.isoformat(),
            "health_score_pct": self.health_score_pct,
            "run_id": self.run_id,
            "published_at": self.published_at.isoformat(),
        }, separators=(",", ":"))


@dataclass(frozen=True)
class PublishedAlert:
    device_id: str
    alert_status: str
    since_date: date
    alert_id: str
    published_at: datetime

    @classmethod
    def from_json(cls, value: bytes) -> PublishedAlert:
        doc = json.loads(value)
        return cls(doc["device_id"], doc["status"], date.fromisoformat(doc["since_date"]), doc["alert_id"],
                   datetime.fromisoformat(doc["published_at"]))


class AlertPublisher:
    """Publishes one scope's alerts; call publish(store, run_id) with the writer lock held."""

    def __init__(self, settings: Settings, progress: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.scope = settings.dbt_schema_suffix
        self.topic = settings.alerts_topic
        self.say = progress

    # -- the record: the topic, and its copy in PostgreSQL -------------------------------------
    def sync(self) -> int:
        """Read the alerts topic from where the copy ends to the topic's end into the copy."""
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        state = describe_topics(self.settings, [self.topic])[self.topic]
        conn = connect(self.settings)
        try:
            with conn.cursor() as cur:
                cur.execute("select kafka_partition, topic_id, next_offset from pipeline.alert_offsets "
                            "where scope = %s and topic = %s", (self.scope, self.topic))
                stored = {p: (topic_id, offset) for p, topic_id, offset in cur.fetchall()}
            starts = {}
            for partition, offsets in state.partitions.items():
                topic_id, offset = stored.get(partition, (state.topic_id, OFFSET_BEGINNING))
                # A recreated topic starts over; what was published before stays in the copy.
                starts[partition] = offset if topic_id == state.topic_id else OFFSET_BEGINNING
                if starts[partition] != OFFSET_BEGINNING:
                    starts[partition] = max(starts[partition], offsets.log_start_offset)
            pending = {p: o.log_end_offset for p, o in state.partitions.items()
                       if o.log_end_offset > (starts[p] if starts[p] != OFFSET_BEGINNING else o.log_start_offset)}
            if not pending:
                return 0
            consumer = Consumer({"bootstrap.servers": self.settings.kafka_bootstrap_servers,
                                 "group.id": f"lakehouse-alerts-{self.scope or 'main'}", "enable.auto.commit": False,
                                 "isolation.level": "read_committed", "log_level": 0})
            read: list[tuple[int, int, PublishedAlert]] = []
            try:
                consumer.assign([TopicPartition(self.topic, p, starts[p]) for p in pending])
                positions = {p: -1 for p in pending}
                deadline = time.monotonic() + _DELIVERY_TIMEOUT_S
                while any(positions[p] + 1 < end for p, end in pending.items()):
                    if time.monotonic() > deadline:
                        raise LakehouseError(f"reading {self.topic} back timed out at {positions} (ends {pending})")
                    message = consumer.poll(1.0)
                    if message is None:
                        continue
                    if message.error():
                        raise LakehouseError(f"reading {self.topic}: {message.error()}")
                    positions[message.partition()] = message.offset()
                    read.append((message.partition(), message.offset(), PublishedAlert.from_json(message.value())))
            finally:
                consumer.close()
            with conn, conn.cursor() as cur:
                # A meter's messages share a partition (keyed by device), so offsets order them.
                for _, _, alert in sorted(read, key=lambda r: (r[2].published_at, r[0], r[1])):
                    cur.execute(
                        "insert into pipeline.alert_devices (scope, device_id, alert_status, since_date, alert_id, "
                        "published_at) values (%s, %s, %s, %s, %s, %s) on conflict (scope, device_id) do update set "
                        "alert_status = excluded.alert_status, since_date = excluded.since_date, "
                        "alert_id = excluded.alert_id, published_at = excluded.published_at",
                        (self.scope, alert.device_id, alert.alert_status, alert.since_date, alert.alert_id,
                         alert.published_at))
                for partition, end in pending.items():
                    cur.execute(
                        "insert into pipeline.alert_offsets (scope, topic, topic_id, kafka_partition, next_offset) "
                        "values (%s, %s, %s, %s, %s) on conflict (scope, topic, kafka_partition) do update set "
                        "topic_id = excluded.topic_id, next_offset = excluded.next_offset",
                        (self.scope, self.topic, state.topic_id, partition, end))
            return len(read)
        finally:
            conn.close()

    def _action_required_devices(self) -> list[str]:
        conn = connect(self.settings)
        try:
            with conn.cursor() as cur:
                cur.execute("select device_id from pipeline.alert_devices where scope = %s and alert_status = %s",
                            (self.scope, ACTION_REQUIRED))
                return [row[0] for row in cur.fetchall()]
        finally:
            conn.close()

    # -- the diff --------------------------------------------------------------------------------
    def transitions(self, trino: TrinoSession, run_id: int, watermark: int) -> list[Alert]:
        """Meters whose latest complete local day disagrees with their published alert. Today is
        left out: early in a day every meter looks silent (MISSING_READINGS), which would raise
        alerts for all of them at each midnight. The days looked at are those rescored since
        `watermark` and the last two (so a day that completes with no new data for it counts).
        The comparison with the copy happens here, not in SQL: the set of alerted meters can be
        too large to write into a query."""
        health = f'iceberg."{self.settings.schema("marts")}".device_health'
        devices = f'iceberg."{self.settings.schema("intermediate")}".int_devices_located'
        latest = trino.rows(f"""
            with located as (
                select
                    device_id,
                    cast(at_timezone(current_timestamp, coalesce(timezone, {_literal(self.settings.timezone)})) as date)
                        as local_today
                from {devices}
            ),
            candidates as (
                select health.*
                from {health} as health
                inner join located on health.device_id = located.device_id
                where
                    (health.batch_id > {int(watermark)} or health.reading_date >= current_date - interval '2' day)
                    and health.reading_date < located.local_today
            ),
            newest as (
                select device_id, max(reading_date) as reading_date from candidates group by device_id
            )
            select
                candidates.device_id, candidates.customer_id, candidates.device_health_status,
                candidates.health_reasons, candidates.reading_date, candidates.health_score_pct
            from candidates
            inner join newest
                on candidates.device_id = newest.device_id and candidates.reading_date = newest.reading_date
        """)
        alerted = set(self._action_required_devices())
        changed = sorted((row for row in latest if (row[2] == ACTION_STATUS) != (row[0] in alerted)), key=lambda r: r[0])
        since = {}
        for chunk in (changed[i:i + _SINCE_CHUNK] for i in range(0, len(changed), _SINCE_CHUNK)):
            values = ", ".join(f"({_literal(row[0])}, date '{row[4].isoformat()}', {str(row[2] == ACTION_STATUS).lower()})"
                               for row in chunk)
            since.update(trino.rows(f"""
                select
                    changed.device_id,
                    coalesce(
                        date_add('day', 1, max(earlier.reading_date) filter (
                            where (earlier.device_health_status = '{ACTION_STATUS}') != changed.is_action)),
                        min(earlier.reading_date)
                    )
                from (values {values}) as changed (device_id, reading_date, is_action)
                inner join {health} as earlier
                    on earlier.device_id = changed.device_id and earlier.reading_date <= changed.reading_date
                group by changed.device_id
            """))
        now = datetime.now(UTC)
        return [
            Alert(device_id=device_id, customer_id=customer_id,
                  status=ACTION_REQUIRED if status == ACTION_STATUS else CLEARED, health_status=status,
                  reasons=reasons.split(",") if reasons else [], since_date=since[device_id], reading_date=reading_date,
                  health_score_pct=float(score) if score is not None else None, run_id=run_id, published_at=now)
            for device_id, customer_id, status, reasons, reading_date, score in changed
        ]

    def produce(self, alerts: Sequence[Alert]) -> None:
        """Every alert delivered, or an error: the client's idempotent producer, a delivery
        callback, a bounded queue (poll when it is full) and a flush before returning."""
        from confluent_kafka import Producer

        failures: list[str] = []

        def delivered(err, msg) -> None:
            if err is not None:
                failures.append(f"{msg.key().decode()}: {err}")

        producer = Producer({"bootstrap.servers": self.settings.kafka_bootstrap_servers, "enable.idempotence": True,
                             "acks": "all", "queue.buffering.max.messages": 10_000, "linger.ms": 5, "log_level": 0})
        for alert in alerts:
            while True:
                try:
                    producer.produce(self.topic, key=alert.device_id, value=alert.to_json(), on_delivery=delivered)
                    break
                except BufferError:
                    producer.poll(0.5)
            producer.poll(0)
        left = producer.flush(_DELIVERY_TIMEOUT_S)
        if left or failures:
            raise LakehouseError(f"publishing alerts to {self.topic}: {left} undelivered after "
                                 f"{_DELIVERY_TIMEOUT_S:.0f}s, {len(failures)} failed ({'; '.join(failures[:3])})")

    def publish(self, store: PipelineStore, run_id: int) -> list[Alert]:
        """Sync the copy, publish the transitions since the last publication, sync again."""
        ensure_topics(self.settings, [self.topic])
        self.sync()
        watermark = int(store.get_state(WATERMARK_STATE) or 0)
        if not table_exists(self.settings, "device_health", "marts"):
            return []
        with TrinoSession(self.settings) as trino:
            health = f'iceberg."{self.settings.schema("marts")}".device_health'
            newest = trino.rows(f"select max(batch_id) from {health}")[0][0]
            if newest is None or newest <= watermark:
                return []
            alerts = self.transitions(trino, run_id, watermark)
        if alerts:
            self.say(f"alerts: publishing {len(alerts)} transition(s) to {self.topic}")
            self.produce(alerts)
            self.sync()
            into = sum(a.status == ACTION_REQUIRED for a in alerts)
            self.say(f"alerts: {into} meter(s) now require action, {len(alerts) - into} cleared ({self.topic})")
        store.set_state(WATERMARK_STATE, str(newest))
        return alerts


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
