"""Support for the dbt pipeline tests and benchmarks (no tests of its own).

- `IsolatedPipeline`: runs the whole pipeline (the real `./lakehouse` runner and dbt) into its
  own Iceberg schemas (staging_<suffix>, intermediate_<suffix>, marts_<suffix>) against the test
  topics `telemetry_raw_test` / `meter_fault_logs_test`, with its own record in PostgreSQL.
- `generate_backfill`: a seeded, self-contained stream of readings and fault-log lines with
  chaos (duplicates, late readings, clock skew, malformed JSON, missing fields, wrong types,
  out-of-range values, unknown devices, far-future timestamps, garbage log lines).
- `generate_local_days`: clean readings for whole local days, each meter in its customer's zone.
- `expected_from_messages`: the correctness oracle, computed in Python straight from the
  messages as produced (partition, offset, bytes), independently of Trino and dbt. It applies
  the documented rules of dbt-project/models/staging/kafka/stg_telemetry_messages.yml.
  `expected_customer_hours` and `expected_billing` carry it on to local hours and to
  time-of-use bills (zoneinfo, the `holidays` package and the master data in PostgreSQL);
  `expected_estimates` to VEE's estimates for gaps, which bills show apart.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import signal
import subprocess
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

from smartmeter import calendar
from smartmeter.config import REPO_ROOT, TEST_TOPICS, Settings
from smartmeter.pipeline.topics import recreate_topics

TELEMETRY_TEST_TOPIC, FAULT_LOG_TEST_TOPIC = TEST_TOPICS
MAX_ENERGY_KWH = 1000.0
MAX_VOLTAGE_V = 1000.0
FUTURE_TOLERANCE = timedelta(hours=24)
ISO_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$")
REQUIRED_TEXT = ("device_id", "customer_id", "timestamp", "status")
REQUIRED_METRICS = ("energy_kwh", "voltage", "battery_pct")


# --------------------------------------------------------------------------------------------
# Kafka


@dataclass(frozen=True)
class Produced:
    topic: str
    partition: int
    offset: int
    value: str | None


def produce(settings: Settings, topic: str, messages: Iterable[tuple[str | None, str | None]]) -> list[Produced]:
    """Send (key, value) pairs; return where each one landed (partition, offset)."""
    from confluent_kafka import Producer

    producer = Producer({
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "enable.idempotence": True,
        "linger.ms": 20,
        "compression.type": "lz4",
    })
    landed: list[Produced] = []
    errors: list[str] = []

    def report(err, msg) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            value = msg.value()
            landed.append(Produced(topic, msg.partition(), msg.offset(), None if value is None else value.decode()))

    for key, value in messages:
        while True:
            try:
                producer.produce(
                    topic,
                    key=None if key is None else key.encode(),
                    value=None if value is None else value.encode(),
                    on_delivery=report,
                )
                break
            except BufferError:
                producer.poll(0.5)
        producer.poll(0)
    remaining = producer.flush(60)
    if errors or remaining:
        raise RuntimeError(f"Kafka produce failed: {errors[:3]} ({remaining} undelivered)")
    return landed


def consume_all(settings: Settings, topic: str, timeout_s: float = 60) -> list[Produced]:
    """Every message of `topic` with its coordinates, read back from Kafka (not through Trino)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": f"oracle-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        metadata = consumer.list_topics(topic, timeout=15).topics[topic]
        partitions = sorted(metadata.partitions)
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=15)[1] for p in partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        out: list[Produced] = []
        positions = {p: 0 for p in partitions}
        deadline = time.monotonic() + timeout_s
        while any(positions[p] < ends[p] for p in partitions):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} back from Kafka")
            for msg in consumer.consume(1000, timeout=1):
                if msg.error():
                    continue
                value = msg.value()
                out.append(Produced(topic, msg.partition(), msg.offset(), None if value is None else value.decode()))
                positions[msg.partition()] = msg.offset() + 1
        return out
    finally:
        consumer.close()


def consume_recorded(settings: Settings, record: Path, topics: Sequence[str]) -> list[list[Produced]]:
    """Each topic read back from Kafka, checked to hold exactly what the simulator's --record file lists."""
    recorded = [json.loads(line) for line in record.read_text().splitlines() if line.strip()]
    consumed_by_topic = []
    for topic in topics:
        consumed = consume_all(settings, topic)
        sent = Counter(r["value"] for r in recorded if r["topic"] == topic)
        assert Counter(m.value for m in consumed) == sent, f"Kafka holds exactly what the simulator recorded for {topic}"
        consumed_by_topic.append(consumed)
    return consumed_by_topic


# --------------------------------------------------------------------------------------------
# Seeded data with chaos


def first_devices(device_customers: dict[str, str], count: int) -> list[tuple[str, str]]:
    """The `count` lowest-numbered meters (MTR-10000 ... of the seed sample), as (device, customer)."""
    return sorted(device_customers.items(), key=lambda item: int(item[0].split("-")[1]))[:count]


@dataclass
class Backfill:
    telemetry: list[tuple[str, str]] = field(default_factory=list)
    fault_logs: list[tuple[str, str]] = field(default_factory=list)
    held_back: list[tuple[str, str]] = field(default_factory=list)  # late readings, sent later
    chaos_counts: Counter = field(default_factory=Counter)


def _reading(device_id: str, customer_id: str, at: datetime, rng: random.Random, register: float,
             interval_minutes: int) -> tuple[dict, float]:
    energy = round(rng.uniform(0.05, 0.9), 3)
    voltage = round(rng.gauss(230, 6), 1)
    battery = rng.randint(5, 100) if rng.random() < 0.02 else rng.randint(60, 100)
    status = "OK" if 207 <= voltage <= 253 and battery >= 20 else "WARNING"
    register = round(register + energy, 3)
    return {
        "device_id": device_id,
        "customer_id": customer_id,
        "timestamp": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "metrics": {"energy_kwh": energy, "voltage": voltage, "battery_pct": battery, "register_kwh": register},
        "status": status,
        "interval_minutes": interval_minutes,
    }, register


def _set(doc: dict, path: tuple[str, ...], value) -> None:
    for step in path[:-1]:
        doc = doc[step]
    doc[path[-1]] = value


WRONG_TYPES = (
    lambda doc, rng: _set(doc, ("metrics", "energy_kwh"), f"{doc['metrics']['energy_kwh']}abc"),
    lambda doc, rng: _set(doc, ("metrics", "voltage"), {"value": doc["metrics"]["voltage"], "unit": "V"}),
    lambda doc, rng: _set(doc, ("metrics", "battery_pct"), "high"),
    lambda doc, rng: _set(doc, ("timestamp",), "yesterday at noon"),
    lambda doc, rng: _set(doc, ("metrics", "energy_kwh"), str(doc["metrics"]["energy_kwh"])),
)
OUT_OF_RANGE = (
    lambda doc, rng: _set(doc, ("metrics", "energy_kwh"), -round(rng.uniform(0.001, 5), 3)),
    lambda doc, rng: _set(doc, ("metrics", "energy_kwh"), round(rng.uniform(1000.001, 99999), 3)),
    lambda doc, rng: _set(doc, ("metrics", "voltage"), -round(rng.uniform(0, 230), 1)),
    lambda doc, rng: _set(doc, ("metrics", "voltage"), round(rng.uniform(1000.1, 5000), 1)),
    lambda doc, rng: _set(doc, ("metrics", "battery_pct"), -rng.randint(1, 50)),
    lambda doc, rng: _set(doc, ("metrics", "battery_pct"), rng.randint(101, 255)),
)
REQUIRED_PATHS = (("device_id",), ("customer_id",), ("timestamp",), ("status",),
                  ("metrics", "energy_kwh"), ("metrics", "voltage"), ("metrics", "battery_pct"))


def _drop_field(doc: dict, rng: random.Random) -> None:
    path = rng.choice(REQUIRED_PATHS)
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    del parent[path[-1]]


def _future(doc: dict, rng: random.Random) -> None:
    doc["timestamp"] = (datetime.now(UTC) + timedelta(days=rng.randint(2, 30))).strftime("%Y-%m-%dT%H:%M:%SZ")


def _offset_zone(doc: dict, rng: random.Random) -> None:
    # Valid, in another zone: the same instant must land on the same UTC reading_at.
    at = datetime.strptime(doc["timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    doc["timestamp"] = at.astimezone(timezone(timedelta(hours=2))).isoformat()


CHAOS = {
    "missing_field": _drop_field,
    "wrong_type": lambda doc, rng: WRONG_TYPES[rng.randrange(len(WRONG_TYPES))](doc, rng),
    "out_of_range": lambda doc, rng: OUT_OF_RANGE[rng.randrange(len(OUT_OF_RANGE))](doc, rng),
    "unknown_device": lambda doc, rng: _set(doc, ("device_id",), f"MTR-99{rng.randrange(10_000):04d}"),
    "future": _future,
    "offset_zone": _offset_zone,
}


def _chaos_variant(kind: str, doc: dict, rng: random.Random) -> str:
    doc = json.loads(json.dumps(doc))
    if kind == "malformed":
        text = json.dumps(doc)
        return text[: rng.randrange(1, len(text) - 1)] if rng.random() < 0.8 else text.replace('"', "'")
    CHAOS[kind](doc, rng)
    return json.dumps(doc)


FAULT_CODES = {
    "B101": ("BATTERY_LOW", "WARNING"), "V201": ("VOLTAGE_SAG", "WARNING"), "V202": ("VOLTAGE_SWELL", "WARNING"),
    "C301": ("COMM_LOSS", "ERROR"), "R401": ("REGISTER_STUCK", "ERROR"), "X601": ("TAMPER_COVER_OPEN", "CRITICAL"),
    "I001": ("REBOOT", "INFO"),
}


def fault_line(dialect: str, device_id: str, at: datetime, code: str) -> str:
    event_type, severity = FAULT_CODES[code]
    if dialect == "ELX":
        short = {"WARNING": "WARN", "CRITICAL": "CRIT"}.get(severity, severity)
        return f"{at:%Y-%m-%dT%H:%M:%SZ} {short} {device_id} {code} {event_type} Event {event_type.lower()}"
    if dialect == "KMF":
        return f'[{at:%d/%m/%Y %H:%M:%S}] {device_id} <{severity.lower()}> code={code} type={event_type} msg="Event {code}"'
    if dialect == "SGX":
        number = ("INFO", "WARNING", "ERROR", "CRITICAL").index(severity)
        return f"{int(at.timestamp())}|{number}|{code}|{device_id}|Event {code}"
    return f"NOTE {at:%Y-%m-%d %H:%M:%S} UTC {device_id} technician visit, all fine"


def generate_backfill(devices: Sequence[tuple[str, str]], first_day: date, days: int, seed: int,
                      interval_minutes: int = 15, chaos_rate: float = 0.01,
                      late_device: str | None = None, late_day: date | None = None) -> Backfill:
    """Readings every `interval_minutes` for each (device_id, customer_id), with chaos. A reading
    that chaos corrects is sent with a wrong energy, and again with the right one and
    `"is_correction": true` after all the other readings.

    Readings of `late_device` on `late_day` between 10:00 and 12:00 UTC are held back in
    `held_back` (to be sent later as late data), and its readings of the next day between 08:00
    and 14:00 UTC are never sent (a dropout its register counts: a long gap, estimated from the
    meter's profile when that day has `late_day`'s day type).
    """
    rng = random.Random(seed)
    out = Backfill()
    kinds = ["duplicate", "malformed", "missing_field", "wrong_type", "out_of_range", "unknown_device",
             "future", "clock_skew", "offset_zone", "correction"]
    corrections = []
    registers = {device_id: rng.uniform(1000, 5000) for device_id, _ in devices}
    steps = days * 24 * 60 // interval_minutes
    start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
    for step in range(1, steps + 1):
        at = start + timedelta(minutes=step * interval_minutes)
        for device_id, customer_id in devices:
            doc, registers[device_id] = _reading(device_id, customer_id, at, rng, registers[device_id], interval_minutes)
            text = json.dumps(doc)
            if late_device == device_id and late_day == at.date() and 10 <= at.hour < 12:
                out.held_back.append((device_id, text))
                continue
            if late_device == device_id and late_day + timedelta(days=1) == (at - timedelta(seconds=1)).date() \
                    and 8 <= (at - timedelta(seconds=1)).hour < 14:
                continue
            if rng.random() < chaos_rate * len(kinds):
                kind = rng.choice(kinds)
                out.chaos_counts[kind] += 1
                if kind == "clock_skew":
                    skewed = at + timedelta(seconds=rng.choice((-1, 1)) * rng.randint(60, 300))
                    doc["timestamp"] = skewed.strftime("%Y-%m-%dT%H:%M:%SZ")
                    out.telemetry.append((device_id, json.dumps(doc)))
                    continue
                if kind == "correction":
                    # Sent wrong now; the right value follows as a correction after everything else.
                    wrong = json.loads(text)
                    wrong["metrics"]["energy_kwh"] = round(doc["metrics"]["energy_kwh"] * rng.uniform(1.5, 3), 3)
                    out.telemetry.append((device_id, json.dumps(wrong)))
                    corrections.append((device_id, json.dumps({**doc, "is_correction": True})))
                    continue
                out.telemetry.append((device_id, text))
                out.telemetry.append((device_id, text if kind == "duplicate" else _chaos_variant(kind, doc, rng)))
            else:
                out.telemetry.append((device_id, text))
        if rng.random() < 0.05:
            device_id, _ = rng.choice(devices)
            dialect = rng.choice(["ELX", "KMF", "SGX", "NOTE"])
            line = fault_line(dialect, device_id, at - timedelta(seconds=rng.randint(0, 800)), rng.choice(list(FAULT_CODES)))
            out.fault_logs.append((device_id, line))
            if rng.random() < 0.1:
                out.fault_logs.append((device_id, line[: rng.randrange(3, 18)]))
                out.chaos_counts["garbage_line"] += 1
    out.telemetry += corrections
    # A handful of edge cases, every run.
    device_id, customer_id = devices[0]
    edge_at = start + timedelta(hours=5, minutes=3)
    base, _ = _reading(device_id, customer_id, edge_at, rng, 1.0, interval_minutes)
    out.telemetry += [
        (device_id, ""),
        (device_id, "null"),
        (device_id, "[1, 2, 3]"),
        (device_id, json.dumps({**base, "metrics": {**base["metrics"], "energy_kwh": True}})),
        (device_id, json.dumps({**base, "metrics": {**base["metrics"], "voltage": 0.0}})),
        (device_id, json.dumps({**base, "device_id": ""})),
        (device_id, json.dumps({**base, "metrics": {**base["metrics"], "energy_kwh": 0.0}})),
        (device_id, json.dumps({**base, "extra_field": {"nested": [1, 2]}})),
        (device_id, json.dumps({**base, "is_correction": "yes"})),
    ]
    out.fault_logs += [(device_id, "complete garbage"), (device_id, "NOTE 2025-13-45 99:99:99 UTC MTR-10000 bad date")]
    return out


def generate_local_days(devices: Sequence[tuple[str, str, str]], days: Sequence[date], seed: int,
                        interval_minutes: int = 15) -> list[tuple[str, str]]:
    """Readings without chaos for each (device_id, customer_id, zone) covering the given local
    days of its zone: from 00:00 + interval to 24:00 local time, so 92 or 100 readings per meter
    on the days the clocks change."""
    rng = random.Random(seed)
    out: list[tuple[str, str]] = []
    for device_id, customer_id, zone in devices:
        register = rng.uniform(1000, 5000)
        tz = ZoneInfo(zone)
        for day in days:
            start = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
            end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tz).astimezone(UTC)
            at = start + timedelta(minutes=interval_minutes)
            while at <= end:
                doc, register = _reading(device_id, customer_id, at, rng, register, interval_minutes)
                out.append((device_id, json.dumps(doc)))
                at += timedelta(minutes=interval_minutes)
    return out


# --------------------------------------------------------------------------------------------
# Oracle


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _parse_object(value: str | None) -> dict | None:
    """The message as a JSON object, or None (Python's strict JSON: no NaN, no trailing text)."""

    def strict_constant(name: str):
        raise ValueError(name)

    if value is None:
        return None
    try:
        doc = json.loads(value, parse_constant=strict_constant)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _reading_at(text: str) -> datetime | None:
    if not ISO_TIMESTAMP.match(text):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def message_reading_at(text: str) -> datetime:
    """The reading time (UTC) of a well-formed telemetry message."""
    reading_at = _reading_at(json.loads(text)["timestamp"])
    assert reading_at is not None, text
    return reading_at


def _field_problem(doc: dict, metrics: dict, values: dict) -> str | None:
    """MISSING_FIELD or WRONG_TYPE for the fields' presence and JSON types."""
    if any(v is None for v in values.values()):
        return "MISSING_FIELD"
    if any(isinstance(values[name], str) and values[name].strip() == "" for name in ("device_id", "customer_id")):
        return "MISSING_FIELD"
    if not all(isinstance(values[n], str) for n in REQUIRED_TEXT) or not all(_is_number(values[n]) for n in REQUIRED_METRICS):
        return "WRONG_TYPE"
    optional = (metrics.get("register_kwh"), doc.get("interval_minutes"))
    if any(v is not None and not _is_number(v) for v in optional):
        return "WRONG_TYPE"
    if doc.get("is_correction") is not None and not isinstance(doc["is_correction"], bool):
        return "WRONG_TYPE"
    return None


def _out_of_range(energy: float, voltage: float, battery: float, register, interval) -> bool:
    numbers = [energy, voltage, battery] + ([float(register)] if register is not None else [])
    return (
        not all(math.isfinite(x) for x in numbers)
        or not 0 <= energy <= MAX_ENERGY_KWH
        or not 0 < voltage <= MAX_VOLTAGE_V
        or not 0 <= battery <= 100
        or (register is not None and register < 0)
        or (interval is not None and not 0 < interval <= 1440)
    )


def classify(value: str | None, known_devices: set[str], now: datetime) -> tuple[str | None, dict | None]:
    """(reject_reason, parsed reading) for one telemetry message, per the documented rules."""
    doc = _parse_object(value)
    if doc is None:
        return "MALFORMED_JSON", None
    metrics = doc.get("metrics") if isinstance(doc.get("metrics"), dict) else {}
    values = {name: doc.get(name) for name in REQUIRED_TEXT}
    values.update({name: metrics.get(name) for name in REQUIRED_METRICS})
    problem = _field_problem(doc, metrics, values)
    if problem:
        return problem, None
    reading_at = _reading_at(values["timestamp"])
    if reading_at is None:
        return "WRONG_TYPE", None
    energy, voltage, battery = (float(values[n]) for n in REQUIRED_METRICS)
    if _out_of_range(energy, voltage, battery, metrics.get("register_kwh"), doc.get("interval_minutes")):
        return "OUT_OF_RANGE", None
    device_id = values["device_id"].strip()
    if device_id not in known_devices:
        return "UNKNOWN_DEVICE", None
    if reading_at > now + FUTURE_TOLERANCE:
        return "FUTURE_TIMESTAMP", None
    register = metrics.get("register_kwh")
    return None, {"device_id": device_id, "reading_at": reading_at, "energy_kwh": energy, "status": values["status"],
                  "register_kwh": None if register is None else float(register),
                  "interval_minutes": doc.get("interval_minutes"), "is_correction": doc.get("is_correction") is True}


@dataclass
class Expected:
    message_count: int
    rejected: Counter
    readings: dict  # (device_id, reading_at) -> (partition, offset, reading)
    device_days: dict  # (device_id, date) -> (reading_count, energy_kwh, warning_count)
    customer_days: dict  # (customer_id, date) -> (reading_count, energy_kwh, active_devices)
    customer_hours: dict = field(default_factory=dict)  # see expected_customer_hours
    bills: dict = field(default_factory=dict)  # see expected_billing


def local_day(reading_at: datetime, zone: str) -> date:
    """The day a reading counts on: the local date of reading_at - 1 second (the interval it
    closes started on that day)."""
    return (reading_at - timedelta(seconds=1)).astimezone(ZoneInfo(zone)).date()


def _copy_rank(copy: tuple[int, int, dict]) -> tuple[int, int, int]:
    """Of a reading's copies the lowest rank is kept: the latest correction, else the lowest
    (partition, offset). A device's messages share a partition, where later means a higher offset."""
    partition, offset, reading = copy
    return (0, partition, -offset) if reading["is_correction"] else (1, partition, offset)


def expected_from_messages(messages: Sequence[Produced], device_customers: dict[str, str], now: datetime,
                           device_zones: dict[str, str] | None = None, default_zone: str = "Europe/Berlin") -> Expected:
    """The marts computed in Python from the messages as produced. `device_zones` gives each
    meter's zone (its customer's); missing meters use `default_zone` (LAKEHOUSE_TIMEZONE)."""
    zones = device_zones or {}
    rejected: Counter = Counter()
    winners: dict = {}
    known = set(device_customers)
    for message in messages:
        reason, reading = classify(message.value, known, now)
        if reason:
            rejected[reason] += 1
            continue
        key = (reading["device_id"], reading["reading_at"])
        candidate = (message.partition, message.offset, reading)
        if key not in winners or _copy_rank(candidate) < _copy_rank(winners[key]):
            winners[key] = candidate
    device_days: dict = defaultdict(lambda: [0, 0.0, 0])
    for (device_id, reading_at), (_, _, reading) in winners.items():
        day = device_days[(device_id, local_day(reading_at, zones.get(device_id, default_zone)))]
        day[0] += 1
        day[1] += reading["energy_kwh"]
        day[2] += reading["status"] != "OK"
    customer_days: dict = defaultdict(lambda: [0, 0.0, 0])
    for (device_id, day), (count, energy, _) in device_days.items():
        row = customer_days[(device_customers[device_id], day)]
        row[0] += count
        row[1] += energy
        row[2] += 1
    return Expected(len(messages), rejected, winners,
                    {k: tuple(v) for k, v in device_days.items()}, {k: tuple(v) for k, v in customer_days.items()})


@dataclass(frozen=True)
class MasterData:
    """What billing reads from PostgreSQL, read there directly (not through Trino or dbt)."""

    customer_zones: dict  # customer_id -> its zone, else the utility's
    customer_tariffs: dict  # customer_id -> tariff_id
    periods: dict  # (tariff_id, day_type) -> [(start_hour, end_hour, tou_period, price_per_kwh)]
    holidays: set  # (country_code, holiday_date) in public_holidays


def load_master_data(settings: Settings) -> MasterData:
    import psycopg2

    with psycopg2.connect(**settings.postgres_connect_kwargs(role="admin")) as conn, conn.cursor() as cur:
        cur.execute("select customer_id, coalesce(timezone, %s), tariff_id from customers", (settings.timezone,))
        customers = cur.fetchall()
        cur.execute("select tariff_id, day_type, start_hour, end_hour, period_name, price_per_kwh from tariff_periods")
        periods: dict = defaultdict(list)
        for tariff_id, day_type, start, end, period, price in cur.fetchall():
            periods[(tariff_id, day_type)].append((start, end, period, float(price)))
        cur.execute("select country_code, holiday_date from public_holidays")
        holidays = set(cur.fetchall())
    return MasterData({c: z for c, z, _ in customers}, {c: t for c, _, t in customers}, dict(periods), holidays)


def local_hour_start(reading_at: datetime, zone: str) -> datetime:
    """The local hour a reading counts in (the one holding reading_at - 1 second), zone-aware."""
    return (reading_at - timedelta(seconds=1)).astimezone(ZoneInfo(zone)).replace(minute=0, second=0, microsecond=0)


def expected_customer_hours(expected: Expected, device_customers: dict[str, str], master: MasterData) -> dict:
    """(customer_id, hour start in UTC) -> (local date, local hour, reading_count, energy_kwh,
    device_count): customer_usage_hourly computed with zoneinfo."""
    hours: dict = {}
    for (device_id, reading_at), (_, _, reading) in expected.readings.items():
        customer_id = device_customers[device_id]
        local = local_hour_start(reading_at, master.customer_zones[customer_id])
        row = hours.setdefault((customer_id, local.astimezone(UTC)), [local.date(), local.hour, 0, 0.0, set()])
        row[2] += 1
        row[3] += reading["energy_kwh"]
        row[4].add(device_id)
    return {key: (day, hour, count, energy, len(devices)) for key, (day, hour, count, energy, devices) in hours.items()}


def expected_estimated_hours(estimates: dict[tuple[str, datetime], tuple[str, float]],
                             device_customers: dict[str, str], master: MasterData) -> dict:
    """(customer_id, hour start in UTC) -> (local date, local hour, estimated kWh): the oracle's
    estimates (expected_estimates) in the local hour holding each interval's end - 1 second."""
    hours: dict = {}
    for (device_id, end_at), (_, energy) in estimates.items():
        customer_id = device_customers[device_id]
        local = local_hour_start(end_at, master.customer_zones[customer_id])
        row = hours.setdefault((customer_id, local.astimezone(UTC)), [local.date(), local.hour, 0.0])
        row[2] += energy
    return {key: tuple(value) for key, value in hours.items()}


def month_published(month: date, zone: str, published_at: datetime, grace_minutes: int) -> bool:
    """Whether the month starting `month` had ended in `zone`, plus the grace, at `published_at`:
    when the restatement log counts its monthly bill as published."""
    following = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    return datetime.combine(following, datetime.min.time(), ZoneInfo(zone)) + timedelta(minutes=grace_minutes) <= published_at


# Which of a tariff's day types prices a calendar day: the first one the tariff has.
DAY_TYPE_FALLBACKS = {
    calendar.HOLIDAY: ("HOLIDAY", "SUNDAY", "WEEKEND"),
    calendar.SATURDAY: ("SATURDAY", "WEEKEND"),
    calendar.SUNDAY: ("SUNDAY", "WEEKEND"),
    calendar.WEEKDAY: ("WEEKDAY",),
}


def tariff_day_type(day: date, zone: str, tariff_id: str, master: MasterData) -> tuple[str, bool]:
    """(the tariff day type that prices `day`, whether it is a public holiday in `zone`): a holiday
    of the `holidays` package, or one a utility declared in PostgreSQL besides."""
    country = calendar.country_of(zone)
    kind = calendar.HOLIDAY if (country, day) in master.holidays else calendar.day_type(day, country)
    choices = DAY_TYPE_FALLBACKS[kind]
    chosen = next((d for d in choices if (tariff_id, d) in master.periods), choices[-1])
    return chosen, kind == calendar.HOLIDAY


def expected_billing(customer_hours: dict, master: MasterData, estimated_hours: dict | None = None) -> dict:
    """(customer_id, local date, tou_period) -> (day_type, is_holiday, energy_kwh, energy_cost,
    billed_hour_count, estimated_energy_kwh, estimated_energy_cost): customer_billing_daily from
    the hours with readings or estimates (expected_estimated_hours), the tariffs and the holidays."""
    estimated_hours = estimated_hours or {}
    bills: dict = {}
    for key in customer_hours.keys() | estimated_hours.keys():
        customer_id, actual, estimate = key[0], customer_hours.get(key), estimated_hours.get(key)
        day, hour = (actual or estimate)[:2]
        energy, estimated = actual[3] if actual else 0.0, estimate[2] if estimate else 0.0
        tariff_id = master.customer_tariffs[customer_id]
        day_type, is_holiday = tariff_day_type(day, master.customer_zones[customer_id], tariff_id, master)
        period, price = next(((name, price) for start, end, name, price in master.periods.get((tariff_id, day_type), [])
                              if start <= hour < end), ("UNPRICED", None))
        row = bills.setdefault((customer_id, day, period), [day_type, is_holiday, 0.0, 0.0, 0, 0.0, 0.0])
        row[2] += energy
        row[3] = None if price is None or row[3] is None else row[3] + energy * price
        row[4] += 1
        row[5] += estimated
        row[6] = None if price is None or row[6] is None else row[6] + estimated * price
    return {key: tuple(value) for key, value in bills.items()}


# --------------------------------------------------------------------------------------------
# The pipeline in isolated schemas


class IsolatedPipeline:
    """The whole pipeline (runner and dbt, through the real CLI) into schemas suffixed `suffix`,
    reading the test topics, with its own record in PostgreSQL (scope = suffix)."""

    def __init__(self, settings: Settings, suffix: str | None = None,
                 telemetry_topic: str = TELEMETRY_TEST_TOPIC, fault_log_topic: str = FAULT_LOG_TEST_TOPIC,
                 max_messages_per_partition: int | None = None) -> None:
        self.settings = settings
        self.suffix = suffix or f"t{uuid.uuid4().hex[:8]}"
        self.telemetry_topic = telemetry_topic
        self.fault_log_topic = fault_log_topic
        self.max_messages_per_partition = max_messages_per_partition
        self.staging = f"staging_{self.suffix}"
        self.intermediate = f"intermediate_{self.suffix}"
        self.marts = f"marts_{self.suffix}"
        # Each scope publishes its health alerts to a topic of its own (created on first use).
        self.alerts_topic = f"meter_alerts_{self.suffix}"

    # -- Trino -----------------------------------------------------------------------------------
    def query(self, sql: str) -> list[tuple]:
        from smartmeter.trino_sql import query

        return query(self.settings, sql)[1]

    def wait_for_topic_count(self, topic: str, count: int, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            seen = self.query(f'select count(*) from kafka."default".{topic}')[0][0]
            if seen == count:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"Trino sees {seen} messages in {topic}, expected {count}")
            time.sleep(1)

    def drop_schemas(self) -> None:
        for schema in (self.marts, self.intermediate, self.staging):
            try:
                tables = self.query(
                    f"select table_name, table_type from iceberg.information_schema.tables where table_schema = '{schema}'"
                )
            except Exception:  # noqa: BLE001 - nothing to clean
                continue
            for name, kind in tables:
                what = "view" if kind == "VIEW" else "table"
                try:
                    self.query(f'drop {what} if exists iceberg."{schema}"."{name}"')
                except Exception:  # noqa: BLE001 - best effort
                    pass
            try:
                self.query(f'drop schema if exists iceberg."{schema}"')
            except Exception:  # noqa: BLE001 - best effort
                pass
        self.forget_runs()
        try:
            from smartmeter.pipeline.topics import delete_topics

            delete_topics(self.settings, [self.alerts_topic])
        except Exception:  # noqa: BLE001 - best effort
            pass

    def forget_runs(self) -> None:
        """Remove this scope's record (runs, offsets, gaps, state) from PostgreSQL."""
        import psycopg2

        with psycopg2.connect(**self.settings.postgres_connect_kwargs(role="admin")) as conn, conn.cursor() as cur:
            cur.execute("delete from pipeline.run_offsets where run_id in (select run_id from pipeline.runs where scope = %s)",
                        (self.suffix,))
            for table in ("runs", "gaps", "state", "alert_devices", "alert_offsets"):
                cur.execute(f"delete from pipeline.{table} where scope = %s", (self.suffix,))

    def runs(self) -> list[tuple]:
        """(run_id, trigger, status, reason, messages_taken, messages_behind) of this scope, oldest first."""
        import psycopg2

        with psycopg2.connect(**self.settings.postgres_connect_kwargs(role="admin")) as conn, conn.cursor() as cur:
            cur.execute("select run_id, trigger, status, reason, messages_taken, messages_behind from pipeline.runs "
                        "where scope = %s order by run_id", (self.suffix,))
            return cur.fetchall()

    # -- the CLI ---------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "DBT_SCHEMA_SUFFIX": self.suffix,
            "TELEMETRY_TOPIC": self.telemetry_topic,
            "FAULT_LOG_TOPIC": self.fault_log_topic,
            "ALERTS_TOPIC": self.alerts_topic,
            "TRINO_HOST": self.settings.trino_host,
            "TRINO_PORT": str(self.settings.trino_port),
            "TRINO_USER": self.settings.trino_user,
            "PYTHONUNBUFFERED": "1",
        })
        if self.max_messages_per_partition:
            env["PIPELINE_MAX_MESSAGES_PER_PARTITION"] = str(self.max_messages_per_partition)
        return env

    def command(self, *args: str) -> list[str]:
        import sys

        return [sys.executable, "-m", "smartmeter", *args]

    def lakehouse(self, *args: str, timeout_s: float = 1800, check: bool = True,
                  extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """`./lakehouse ARGS` for this scope, with `extra_env` on top of its environment."""
        result = subprocess.run(self.command(*args), cwd=REPO_ROOT, env={**self.env(), **(extra_env or {})},
                                capture_output=True, text=True, timeout=timeout_s)
        if check and result.returncode != 0:
            raise AssertionError(f"lakehouse {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout[-6000:]}\n{result.stderr[-3000:]}")
        return result

    def build(self, *extra: str) -> subprocess.CompletedProcess[str]:
        """`./lakehouse dbt build`: one bounded batch, every model and test."""
        return self.lakehouse("dbt", "build", *extra)

    def catch_up(self) -> subprocess.CompletedProcess[str]:
        return self.lakehouse("catch-up")

    def cycle(self) -> subprocess.CompletedProcess[str]:
        return self.lakehouse("pipeline", "cycle")

    def start_loop(self, interval_s: int, extra_env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """The pipeline loop for this scope, as the pipeline service runs it (its output to a file,
        as supervisord does); stop with stop_loop."""
        env = {**self.env(), "DBT_RUN_INTERVAL": str(interval_s), "DBT_AUTO_RUN": "true",
               "PIPELINE_MAINTENANCE_INTERVAL": "86400", "PIPELINE_FULL_TESTS_INTERVAL": "86400", **(extra_env or {})}
        self.loop_log = self.settings.home / "logs" / f"pipeline-{self.suffix}.log"
        self.loop_log.parent.mkdir(parents=True, exist_ok=True)
        with self.loop_log.open("w") as log:
            return subprocess.Popen(self.command("pipeline", "loop"), cwd=REPO_ROOT, env=env, stdout=log,
                                    stderr=subprocess.STDOUT, text=True, start_new_session=True)

    def stop_loop(self, process: subprocess.Popen[str], timeout_s: float = 300) -> str:
        """SIGTERM, as supervisord stops it: the loop interrupts dbt and exits 0. Its output."""
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=timeout_s)
        output = self.loop_log.read_text()
        assert process.returncode == 0, output[-4000:]
        return output

    def wait_caught_up(self, timeout_s: float = 900) -> None:
        """Until the loop's latest cycle left nothing behind and no run is in progress."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            runs = self.runs()
            if runs and runs[-1][2] == "ok" and self._kafka_drained():
                return
            time.sleep(3)
        raise AssertionError(f"the loop did not catch up within {timeout_s:.0f}s: {self.runs()[-3:]}")

    def _kafka_drained(self) -> bool:
        from smartmeter.pipeline.status import topic_lag

        settings = self.scoped_settings()
        return not any(topic_lag(settings).values())

    def scoped_settings(self) -> Settings:
        import dataclasses

        return dataclasses.replace(self.settings, dbt_schema_suffix=self.suffix, telemetry_topic=self.telemetry_topic,
                                   fault_log_topic=self.fault_log_topic, alerts_topic=self.alerts_topic)

    def run_and_kill(self, args: Sequence[str], after_marker: str, timeout_s: float = 900) -> str:
        """Start `./lakehouse ARGS`, SIGKILL it (runner and dbt) as soon as its output shows
        `after_marker`."""
        process = subprocess.Popen(self.command(*args), cwd=REPO_ROOT, env=self.env(), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, start_new_session=True)
        seen = []
        deadline = time.monotonic() + timeout_s
        assert process.stdout is not None
        for line in process.stdout:
            seen.append(line)
            if after_marker in line or time.monotonic() > deadline:
                break
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        output = "".join(seen)
        assert after_marker in output, f"never saw {after_marker!r}:\n{output[-4000:]}"
        return output

    # -- marts -----------------------------------------------------------------------------------
    def device_zones(self) -> dict[str, str]:
        """Each meter's zone: its customer's, else LAKEHOUSE_TIMEZONE."""
        rows = self.query("select d.device_id, c.timezone from postgresql.public.devices d "
                          "join postgresql.public.customers c on c.customer_id = d.customer_id")
        return {device_id: zone or self.settings.timezone for device_id, zone in rows}

    def device_segments(self) -> dict[str, str]:
        """Each meter's customer segment."""
        return dict(self.query("select d.device_id, c.segment from postgresql.public.devices d "
                               "join postgresql.public.customers c on c.customer_id = d.customer_id"))

    def table(self, schema: str, name: str, order_by: str) -> list[tuple]:
        return self.query(f'select * from iceberg."{schema}".{name} order by {order_by}')

    def restatement_rows(self) -> set[tuple]:
        return set(self.query(f"select * from iceberg.{self.marts}.restatements"))

    def restatements_since(self, logged_before: set[tuple]) -> list[dict]:
        """The restatement log's rows that are not in `logged_before` (from restatement_rows())."""
        columns = [c[0] for c in self.query(f"describe iceberg.{self.marts}.restatements")]
        return [dict(zip(columns, row, strict=True)) for row in self.restatement_rows() - logged_before]


def restated_change(rows: Sequence[dict], mart: str, measure: str) -> float:
    """Sum of new - old of one measure over one mart's rows of restatements_since() (a deleted value's new is 0)."""
    return sum((r["new_value"] or 0) - r["old_value"] for r in rows if r["mart_name"] == mart and r["measure_name"] == measure)


# --------------------------------------------------------------------------------------------
# The oracle against the marts


class State:
    """What a test module produced and the pipeline that loaded it."""

    pipeline: IsolatedPipeline
    device_customers: dict[str, str]
    telemetry: list[Produced]
    fault_logs: list[Produced]
    held_back: list[tuple[str, str]]

    def send(self, telemetry: Sequence[tuple[str | None, str | None]],
             fault_logs: Sequence[tuple[str | None, str | None]] = ()) -> None:
        """Produce more messages to the test topics, recorded here for the oracle, and wait until
        Kafka has every telemetry message so far."""
        settings = self.pipeline.settings
        self.telemetry += produce(settings, TELEMETRY_TEST_TOPIC, telemetry)
        if fault_logs:
            self.fault_logs += produce(settings, FAULT_LOG_TEST_TOPIC, fault_logs)
        self.pipeline.wait_for_topic_count(TELEMETRY_TEST_TOPIC, len(self.telemetry))


@contextmanager
def isolated_state(settings: Settings, fill: Callable[[State], None], **pipeline_options) -> Iterator[State]:
    """A State on a fresh IsolatedPipeline and fresh test topics, which `fill` fills (telemetry,
    fault_logs, held_back); the pipeline's schemas are dropped at the end, also when `fill` fails."""
    s = State()
    s.pipeline = IsolatedPipeline(settings, **pipeline_options)
    try:
        s.device_customers = dict(s.pipeline.query("select device_id, customer_id from postgresql.public.devices"))
        recreate_topics(settings, [TELEMETRY_TEST_TOPIC, FAULT_LOG_TEST_TOPIC])
        s.held_back = []
        fill(s)
        s.pipeline.wait_for_topic_count(TELEMETRY_TEST_TOPIC, len(s.telemetry))
        yield s
    finally:
        s.pipeline.drop_schemas()


def assert_matches_oracle(s: State) -> Expected:
    p = s.pipeline
    expected = expected_from_messages(s.telemetry, s.device_customers, datetime.now(UTC), p.device_zones())

    landed, distinct_coordinates = p.query(
        f"select count(*), count(distinct (kafka_partition, kafka_offset)) from iceberg.{p.staging}.stg_telemetry_messages"
    )[0]
    assert landed == distinct_coordinates == expected.message_count, "every message lands exactly once"

    rejected = dict(p.query(f"select reject_reason, count(*) from iceberg.{p.staging}.stg_telemetry_rejected group by 1"))
    assert rejected == dict(expected.rejected)
    assert sum(rejected.values()) + len(expected.readings) + duplicate_count(expected) == expected.message_count

    staged = {
        (device_id, reading_at.astimezone(UTC)): (partition, offset)
        for device_id, reading_at, partition, offset in p.query(
            f"select device_id, reading_at, kafka_partition, kafka_offset from iceberg.{p.staging}.stg_telemetry_raw"
        )
    }
    assert staged == {key: value[:2] for key, value in expected.readings.items()}, \
        "dedup keeps the latest correction, else the lowest (partition, offset)"

    device_days = {
        (device_id, day): (count, energy, warnings)
        for device_id, day, count, energy, warnings in p.query(
            "select device_id, reading_date, reading_count, total_energy_kwh, warning_count "
            f"from iceberg.{p.marts}.device_daily_metrics"
        )
    }
    assert set(device_days) == set(expected.device_days)
    for key, (count, energy, warnings) in expected.device_days.items():
        got = device_days[key]
        assert got[0] == count, key
        assert math.isclose(got[1], energy, abs_tol=1e-6), (key, got[1], energy)
        assert got[2] == warnings, key

    customer_days = {
        (customer_id, day): (energy, devices)
        for customer_id, day, energy, devices in p.query(
            "select customer_id, reading_date, total_energy_kwh, active_device_count "
            f"from iceberg.{p.marts}.customer_usage_summary"
        )
    }
    assert set(customer_days) == set(expected.customer_days)
    for key, (_, energy, devices) in expected.customer_days.items():
        assert math.isclose(customer_days[key][0], energy, abs_tol=1e-6), (key, customer_days[key][0], energy)
        assert customer_days[key][1] == devices, key

    hourly_total = p.query(f"select sum(energy_kwh), sum(reading_count) from iceberg.{p.marts}.customer_usage_hourly")[0]
    billed_total = p.query(f"select sum(energy_kwh) from iceberg.{p.marts}.customer_billing_daily")[0][0]
    energy_total = sum(v[1] for v in expected.customer_days.values())
    assert math.isclose(hourly_total[0], energy_total, abs_tol=1e-6)
    assert hourly_total[1] == len(expected.readings)
    assert math.isclose(billed_total, energy_total, abs_tol=1e-6)

    intervals = expected_intervals(expected)
    estimates = expected_estimates(expected, intervals, p.device_zones(), p.device_segments(),
                                   load_master_data(p.settings).holidays, p.settings.timezone)
    assert_hours_and_bills_match(p, expected, s.device_customers, estimates)
    assert_intervals_match(p, expected, intervals, estimates)
    assert_estimated_energy_matches(p, expected, estimates, s.device_customers)

    parsed, unparsed = (
        p.query(f"select count(*) from iceberg.{p.staging}.stg_fault_logs")[0][0],
        p.query(f"select count(*) from iceberg.{p.staging}.stg_fault_logs_rejected")[0][0],
    )
    assert parsed + unparsed == len(s.fault_logs), "every fault-log line is parsed or rejected"
    return expected


def _assert_amounts(got: tuple, want: tuple, amounts: tuple[int, ...], key) -> None:
    """Equal field by field: amounts (double sums) to 1e-9, everything else exactly."""
    assert len(got) == len(want), key
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if i in amounts and g is not None and w is not None:
            assert math.isclose(g, w, abs_tol=1e-9), (key, i, g, w)
        else:
            assert g == w, (key, i, g, w)


def _assert_same_keys(actual: dict, want: dict, what: str) -> None:
    assert set(actual) == set(want), {what: {"not expected": sorted(set(actual) - set(want))[:5],
                                             "missing": sorted(set(want) - set(actual))[:5]}}


def assert_hours_and_bills_match(p: IsolatedPipeline, expected: Expected, device_customers: dict[str, str],
                                 estimates: dict[tuple[str, datetime], tuple[str, float]],
                                 max_share: float = 0.02) -> None:
    """customer_usage_hourly, customer_billing_daily and customer_billing_monthly, row by row,
    against the local-time oracle and its `estimates` (expected_estimates), with the monthly
    billing-quality flag above `max_share` (billing_max_estimated_share); fills
    expected.customer_hours and expected.bills."""
    master = load_master_data(p.settings)
    expected.customer_hours = expected_customer_hours(expected, device_customers, master)
    expected.bills = expected_billing(expected.customer_hours, master,
                                      expected_estimated_hours(estimates, device_customers, master))
    hours = {
        (customer_id, hour_at.astimezone(UTC)): (day, local_hour, count, energy, devices)
        for customer_id, hour_at, day, local_hour, count, energy, devices in p.query(
            "select customer_id, usage_hour_at, usage_date, local_hour, reading_count, energy_kwh, device_count "
            f"from iceberg.{p.marts}.customer_usage_hourly"
        )
    }
    assert set(hours) == set(expected.customer_hours)
    for key, want in expected.customer_hours.items():
        _assert_amounts(hours[key], want, (3,), key)
    bills = {
        (customer_id, day, period): row
        for customer_id, day, period, *row in p.query(
            "select customer_id, billing_date, tou_period, day_type, is_holiday, energy_kwh, energy_cost, "
            f"billed_hour_count, estimated_energy_kwh, estimated_energy_cost from iceberg.{p.marts}.customer_billing_daily"
        )
    }
    _assert_same_keys(bills, expected.bills, "daily bills")
    for key, want in expected.bills.items():
        _assert_amounts(tuple(bills[key]), want, (2, 3, 5, 6), key)
    # The monthly bill: the oracle's daily bills summed per customer, month and period.
    months: dict = defaultdict(lambda: [0.0, 0.0, 0, 0.0, 0.0])
    for (customer_id, day, period), (_, _, energy, cost, _, estimated, estimated_cost) in expected.bills.items():
        month = months[(customer_id, day.replace(day=1), period)]
        month[0] += energy
        month[1] += cost
        month[2] += 1
        month[3] += estimated
        month[4] += estimated_cost
    bill_energy: dict = defaultdict(lambda: [0.0, 0.0])
    for (customer_id, month, _), (energy, _, _, estimated, _) in months.items():
        bill_energy[(customer_id, month)][0] += energy + estimated
        bill_energy[(customer_id, month)][1] += estimated
    monthly = {
        (customer_id, month, period): row
        for customer_id, month, period, *row in p.query(
            "select customer_id, billing_month, tou_period, energy_kwh, energy_cost, billed_day_count, "
            "estimated_energy_kwh, estimated_energy_cost, is_billing_quality_flagged "
            f"from iceberg.{p.marts}.customer_billing_monthly"
        )
    }
    _assert_same_keys(monthly, months, "monthly bills")
    for key, want in months.items():
        total, estimated = bill_energy[key[:2]]
        is_flagged = total > 0 and estimated / total > max_share
        _assert_amounts(tuple(monthly[key]), (*want, is_flagged), (0, 1, 3, 4), key)


@dataclass
class IntervalReading:
    """What landed on one VEE interval: its readings' count and energy, the latest's register."""
    reading_count: int = 0
    energy_kwh: float = 0.0
    register_kwh: float | None = None
    latest_at: datetime | None = None


def expected_intervals(expected: Expected) -> dict[tuple[str, datetime], IntervalReading]:
    """(device_id, interval end) -> IntervalReading: each reading on the interval end nearest its
    timestamp, as VEE validation places it."""
    intervals: dict = defaultdict(IntervalReading)
    for (device_id, reading_at), (_, _, reading) in expected.readings.items():
        interval_s = 60 * (reading["interval_minutes"] or 15)
        end_s = math.floor(reading_at.timestamp() / interval_s + 0.5) * interval_s  # half up, as Trino's round()
        row = intervals[(device_id, datetime.fromtimestamp(end_s, UTC))]
        row.reading_count += 1
        row.energy_kwh += reading["energy_kwh"]
        if row.latest_at is None or reading_at > row.latest_at:
            row.latest_at, row.register_kwh = reading_at, reading["register_kwh"]
    return intervals


def _profile_lookup(expected: Expected, zones: dict[str, str], default_zone: str, segments: dict[str, str],
                    holidays: set, profile_days: int) -> Callable[[str, datetime, timedelta, bool], float | None]:
    """(device_id, interval end, interval, is_segment) -> the meter's profile value in the local
    hour holding end - 1 s, over its days of the same day type (working day, or rest day:
    Saturday, Sunday or a public holiday of its zone's country in `holidays`) in the
    `profile_days` before: its own mean kWh per reading; or (is_segment) the energy of its
    segment's meters in that hour over those days per second of reading, times the interval.
    None without any."""
    own: dict = defaultdict(lambda: [0.0, 0])  # (device_id, local date, local hour) -> [kWh, readings]
    pooled: dict = defaultdict(lambda: [0.0, 0])  # (segment, local date, local hour) -> [kWh, seconds]
    for (device_id, reading_at), (_, _, reading) in expected.readings.items():
        local = (reading_at - timedelta(seconds=1)).astimezone(ZoneInfo(zones.get(device_id, default_zone)))
        hour = own[(device_id, local.date(), local.hour)]
        hour[0] += reading["energy_kwh"]
        hour[1] += 1
        if device_id in segments:
            hour = pooled[(segments[device_id], local.date(), local.hour)]
            hour[0] += reading["energy_kwh"]
            hour[1] += (reading["interval_minutes"] or 15) * 60

    def profile(device_id: str, end: datetime, step: timedelta, is_segment: bool) -> float | None:
        zone = zones.get(device_id, default_zone)
        local = (end - timedelta(seconds=1)).astimezone(ZoneInfo(zone))
        country = calendar.ZONE_COUNTRIES.get(zone)

        def is_rest_day(day: date) -> bool:
            return day.isoweekday() >= 6 or (country, day) in holidays

        days = [day for day in (local.date() - timedelta(days=n) for n in range(1, profile_days + 1))
                if is_rest_day(day) == is_rest_day(local.date())]
        owner, hours = (segments.get(device_id), pooled) if is_segment else (device_id, own)
        history = [hours[key] for key in ((owner, day, local.hour) for day in days) if key in hours]
        if not history:
            return None
        kwh, amount = sum(kwh for kwh, _ in history), sum(amount for _, amount in history)
        return kwh * step.total_seconds() / amount if is_segment else kwh / amount

    return profile


def _gap_shape(profile: Callable[[str, datetime, timedelta, bool], float | None], device_id: str,
               slots: list[datetime], step: timedelta) -> tuple[str, list[float]] | None:
    """("", values) from the meter's own profile where it has every slot, else ("SEGMENT_",
    values) from its segment's where that has; else None."""
    for source, is_segment in (("", False), ("SEGMENT_", True)):
        values = [profile(device_id, slot, step, is_segment) for slot in slots]
        if None not in values:
            return source, values
    return None


def expected_estimates(expected: Expected, intervals: dict[tuple[str, datetime], IntervalReading],
                       zones: dict[str, str], segments: dict[str, str], holidays: set,
                       default_zone: str = "Europe/Berlin",
                       max_gap: timedelta = timedelta(hours=3), profile_days: int = 28,
                       register_tolerance_kwh: float = 0.01) -> dict[tuple[str, datetime], tuple[str, float]]:
    """(device_id, interval end) -> (estimation method, kWh) for every interval of a gap between
    two `intervals` (expected_intervals) with readings. Up to `max_gap`
    (vee_estimation_max_gap_hours): the register's count over the gap split along the straight
    line between the two readings, else the line. Longer, with all its intervals on one local day:
    the meter's profile (its mean kWh per reading in each local hour over its days of the same
    day type in the `profile_days` before; `holidays`: (country, date)) where it has every hour
    of the gap, else its segment's (`segments`: device -> customer segment) where that has,
    scaled to the register's count if there is one; else, with a register count, the line's
    split; else no estimate."""
    steps = {device_id: timedelta(minutes=reading["interval_minutes"] or 15)
             for (device_id, _), (_, _, reading) in expected.readings.items()}
    profile = _profile_lookup(expected, zones, default_zone, segments, holidays, profile_days)

    def day_of(device_id: str, end: datetime) -> date:
        return local_day(end, zones.get(device_id, default_zone))

    ends_by_device = defaultdict(list)
    for device_id, end in intervals:
        ends_by_device[device_id].append(end)
    estimates = {}
    for device_id, ends in ends_by_device.items():
        step = steps[device_id]
        ends.sort()
        for before, after in pairwise(ends):
            missing = (after - before) // step - 1
            slots = [before + k * step for k in range(1, missing + 1)]
            is_long = missing * step > max_gap
            if missing == 0 or (is_long and day_of(device_id, slots[0]) != day_of(device_id, slots[-1])):
                continue
            first, last = intervals[(device_id, before)], intervals[(device_id, after)]
            counted = (None if first.register_kwh is None or last.register_kwh is None
                       else last.register_kwh - first.register_kwh - last.energy_kwh)
            is_counted = counted is not None and counted >= -register_tolerance_kwh
            shape = _gap_shape(profile, device_id, slots, step) if is_long else None
            if shape is not None:
                source, values = shape
                total = sum(values)
                for slot, value in zip(slots, values, strict=True):
                    estimates[(device_id, slot)] = (
                        (f"REGISTER_{source}PROFILE", max(counted, 0) * (value / total if total > 0 else 1 / missing))
                        if is_counted else (f"{source}PROFILE", value))
                continue
            line_total = missing * (first.energy_kwh + last.energy_kwh) / 2
            for k, slot in enumerate(slots, start=1):
                line = first.energy_kwh + (last.energy_kwh - first.energy_kwh) * k / (missing + 1)
                if is_counted:
                    share = line / line_total if line_total > 0 else 1 / missing
                    estimates[(device_id, slot)] = ("REGISTER_SPLIT", max(counted, 0) * share)
                elif not is_long:
                    estimates[(device_id, slot)] = ("LINEAR_INTERPOLATION", line)
    return estimates


def _intervals_by_key(p: IsolatedPipeline, columns: str, where: str) -> dict[tuple[str, datetime], tuple]:
    """(device_id, interval end in UTC) -> the other `columns` of device_intervals' rows `where`."""
    rows = p.query(f"select device_id, interval_end_at, {columns} from iceberg.{p.marts}.device_intervals where {where}")
    return {(device_id, end_at.astimezone(UTC)): tuple(values) for device_id, end_at, *values in rows}


def assert_intervals_match(p: IsolatedPipeline, expected: Expected, want: dict[tuple[str, datetime], IntervalReading],
                           want_estimates: dict[tuple[str, datetime], tuple[str, float]]) -> None:
    """device_intervals (VEE): every reading on its interval (`want`, from expected_intervals),
    each meter-day with a row for every interval of its local day, a gap exactly where no reading
    is, and each short gap estimated (`want_estimates`, from expected_estimates)."""
    table = f"iceberg.{p.marts}.device_intervals"
    present = _intervals_by_key(p, "reading_count, energy_kwh", "reading_count > 0")
    _assert_same_keys(present, want, "intervals with readings")
    for key, interval in want.items():
        assert present[key][0] == interval.reading_count, key
        assert math.isclose(present[key][1], interval.energy_kwh, abs_tol=1e-9), (key, present[key][1], interval)
    misfiled = p.query(
        f"select count(*) from {table} where (reading_count = 0) != (validation_status = 'MISSING' "
        "and coalesce(rule_codes, '') like 'GAP%') or (reading_count = 0 and not is_estimated and energy_kwh is not null)"
    )[0][0]
    assert misfiled == 0, "a gap is MISSING with GAP, and only a gap; a gap not estimated has no energy"
    estimated = _intervals_by_key(p, "estimation_method, energy_kwh", "is_estimated")
    _assert_same_keys(estimated, want_estimates, "estimated gaps")
    for key, (method, energy) in want_estimates.items():
        assert estimated[key][0] == method, (key, estimated[key], method)
        assert math.isclose(estimated[key][1], energy, abs_tol=1e-9), (key, estimated[key], energy)
    zones = p.device_zones()
    devices = sorted({device_id for device_id, _ in expected.device_days})
    per_day = {
        (device_id, day): count
        for device_id, day, count in p.query(
            f"select device_id, reading_date, count(*) from {table} "
            f"where device_id in ({', '.join(repr(d) for d in devices)}) group by 1, 2"
        )
    }
    now = datetime.now(UTC)
    for device_id, day in expected.device_days:
        midnight = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zones.get(device_id, "Europe/Berlin")))
        start, end = midnight.astimezone(UTC), (midnight + timedelta(days=1)).astimezone(UTC)
        if end <= now:
            assert per_day.get((device_id, day)) == (end - start).total_seconds() // 900, (device_id, day)


def assert_estimated_energy_matches(p: IsolatedPipeline, expected: Expected,
                                    estimates: dict[tuple[str, datetime], tuple[str, float]],
                                    device_customers: dict[str, str], max_share: float = 0.02) -> None:
    """customer_usage_summary: each customer-day's estimated kWh is the sum of the oracle's
    `estimates` (expected_estimates) on that local day, with its share of actual plus estimated
    and the billing-quality flag above `max_share` (billing_max_estimated_share)."""
    zones = p.device_zones()
    estimated: dict = defaultdict(float)
    for (device_id, end_at), (_, energy) in estimates.items():
        estimated[(device_customers[device_id], local_day(end_at, zones.get(device_id, "Europe/Berlin")))] += energy
    rows = {
        (customer_id, day): (energy, share, is_flagged)
        for customer_id, day, energy, share, is_flagged in p.query(
            "select customer_id, reading_date, estimated_energy_kwh, estimated_energy_share, is_billing_quality_flagged "
            f"from iceberg.{p.marts}.customer_usage_summary"
        )
    }
    assert set(estimated) <= set(rows), sorted(set(estimated) - set(rows))[:5]
    for key, (_, actual_kwh, _) in expected.customer_days.items():
        energy, share, is_flagged = rows[key]
        assert math.isclose(energy, estimated[key], abs_tol=1e-9), (key, energy, estimated[key])
        if actual_kwh + estimated[key] == 0:
            assert share is None and not is_flagged, key
        else:
            want_share = estimated[key] / (actual_kwh + estimated[key])
            assert math.isclose(share, want_share, abs_tol=1e-9), (key, share, want_share)
            assert is_flagged == (want_share > max_share), (key, share)


def duplicate_count(expected: Expected) -> int:
    """Valid messages that lost deduplication: counted neither as readings nor as rejects."""
    return expected.message_count - sum(expected.rejected.values()) - len(expected.readings)


def snapshot(s: State) -> dict[str, list[tuple]]:
    p = s.pipeline
    return {
        "device_daily_metrics": p.table(p.marts, "device_daily_metrics", "device_id, reading_date"),
        "customer_usage_summary": p.table(p.marts, "customer_usage_summary", "customer_id, reading_date"),
        "device_health": p.table(p.marts, "device_health", "device_id, reading_date"),
        "customer_usage_hourly": p.table(p.marts, "customer_usage_hourly", "customer_id, usage_hour_at"),
        "customer_billing_daily": p.table(p.marts, "customer_billing_daily", "customer_id, billing_date, tou_period"),
        "customer_billing_monthly": p.table(p.marts, "customer_billing_monthly", "customer_id, billing_month, tou_period"),
        # A row per interval of every active meter is too many to fetch: per day, the count and
        # order-insensitive checksums of the values and of the run columns. An estimate is rounded
        # to 1e-9 kWh, as its profile's sums of doubles may come out in another order.
        "device_intervals": p.query(
            "select reading_date, count(*), checksum(row(device_id, interval_end_at, interval_minutes, reading_count, "
            "reading_at, round(energy_kwh, 9), is_estimated, estimation_method, voltage_v, register_kwh, validation_status, "
            "rule_codes)), "
            f"checksum(row(batch_id, validated_at)) from iceberg.{p.marts}.device_intervals group by 1 order by 1"
        ),
    }
