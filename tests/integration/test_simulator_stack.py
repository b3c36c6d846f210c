"""The simulator against the native stack: provisioning, backfill, fault labels, broker pause.

Each test uses its own Kafka topics (unique suffix) and, where it writes master data, its own
PostgreSQL database built from postgres-init/, so it never disturbs the shared stack's data.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import psycopg2
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from psycopg2 import sql

from smartmeter.config import REPO_ROOT
from smartmeter.native.services import Postgres
from tests.helpers.stack import kill_service, wait_healthy_again

pytestmark = pytest.mark.integration


@pytest.fixture
def topics(settings):
    suffix = uuid.uuid4().hex[:8]
    names = (f"sim_it_telemetry_{suffix}", f"sim_it_logs_{suffix}")
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    for future in admin.create_topics([NewTopic(name, 3, 1) for name in names]).values():
        future.result()
    yield names
    for future in admin.delete_topics(list(names)).values():
        future.result()


@pytest.fixture
def database(settings, native_stack):
    name = f"sim_it_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(**settings.postgres_connect_kwargs(role="admin"))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    # The master-data scripts and the roles' grants, as setup applies them (the simulator logs in
    # as its own role, which may only provision and label faults).
    for script in ("01-master-data.sql", "02-seed-sample.sql", "04-pipeline.sql", "05-roles.sql"):
        Postgres().run_script(native_stack, REPO_ROOT / "postgres-init" / script, database=name)
    connection = psycopg2.connect(**settings.postgres_connect_kwargs(role="admin", database=name))
    connection.autocommit = True
    yield name, connection
    connection.close()
    with admin.cursor() as cursor:
        cursor.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    admin.close()


def simulator(*args: str, database: str | None = None, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"POSTGRES_DB": database} if database else {})}
    return subprocess.run([sys.executable, "telemetry_simulator.py", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout_s)


def consume_all(settings, topic: str, expected: int, timeout_s: float = 60) -> list[tuple[str, str]]:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers,
                         "group.id": f"sim-it-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    out = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                out.append((message.key().decode(), message.value().decode()))
            elif message is None and len(out) >= expected:
                break
    finally:
        consumer.close()
    return out


def recorded(path: Path, topic: str) -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [(row["key"], row["value"]) for row in rows if row["topic"] == topic]


def test_provisioning_then_backfill_sends_every_active_device_keyed_by_device(settings, topics, database, tmp_path):
    telemetry_topic, log_topic = topics
    name, connection = database
    result = simulator("--provision-customers", "30", "--provision-devices", "60", database=name)
    assert result.returncode == 0, result.stderr
    again = simulator("--provision-customers", "30", "--provision-devices", "60", database=name)
    assert "0 new customers, 0 new devices" in again.stdout
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM customers")
        assert cursor.fetchone()[0] == 30
        cursor.execute("SELECT device_id, customer_id FROM devices WHERE is_active")
        active = dict(cursor.fetchall())
        cursor.execute("SELECT count(*) FROM devices")
        assert cursor.fetchone()[0] == 60

    record = tmp_path / "record.jsonl"
    result = simulator("--backfill-days", "1", "--start", "2025-12-01", "--seed", "5", "--fault-rate", "0",
                       "--topic", telemetry_topic, "--fault-log-topic", log_topic, "--record", str(record),
                       database=name)
    assert result.returncode == 0, result.stderr
    assert "Delivery failures:   0" in result.stdout
    messages = consume_all(settings, telemetry_topic, len(active) * 96)
    assert len(messages) == len(active) * 96
    per_device = Counter()
    for key, value in messages:
        document = json.loads(value)
        assert key == document["device_id"]
        assert active[document["device_id"]] == document["customer_id"]
        per_device[key] += 1
    assert per_device == Counter(dict.fromkeys(active, 96))
    assert Counter(messages) == Counter(recorded(record, telemetry_topic))


def test_fault_labels_land_in_the_csv_and_in_postgres(settings, topics, database, tmp_path):
    telemetry_topic, log_topic = topics
    name, connection = database
    assert simulator("--provision-customers", "40", "--provision-devices", "80", database=name).returncode == 0
    labels_csv = tmp_path / "labels.csv"
    result = simulator("--backfill-days", "2", "--start", "2025-12-01", "--seed", "6", "--fault-rate", "0.25",
                       "--fault-labels", str(labels_csv), "--topic", telemetry_topic,
                       "--fault-log-topic", log_topic, database=name)
    assert result.returncode == 0, result.stderr
    from_csv = {(row["device_id"], row["fault_type"], row["started_at"]) for row in csv.DictReader(labels_csv.open())}
    with connection.cursor() as cursor:
        cursor.execute("SELECT device_id, fault_type, to_char(started_at AT TIME ZONE 'UTC', "
                       "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM fault_labels")
        from_postgres = set(cursor.fetchall())
    assert len(from_csv) >= 15
    assert from_csv == from_postgres


def test_killing_the_broker_in_live_mode_loses_no_accepted_reading(settings, topics, tmp_path):
    """SIGKILL the broker mid-stream; supervisord restarts it: every reading still arrives once."""
    telemetry_topic, log_topic = topics
    record = tmp_path / "record.jsonl"
    process = subprocess.Popen(
        [sys.executable, "telemetry_simulator.py", "--interval", "0.2", "--count", "400", "--seed", "9",
         "--fault-rate", "0", "--topic", telemetry_topic, "--fault-log-topic", log_topic, "--record", str(record)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(3)
    old_pid = kill_service(settings, "kafka")
    wait_healthy_again(settings, "kafka", old_pid)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert "Delivery failures:   0" in stdout
    sent = recorded(record, telemetry_topic)
    assert len(sent) == 400
    assert stdout.count("✓ Sent: MTR-") == 400
    assert Counter(consume_all(settings, telemetry_topic, len(sent))) == Counter(sent)
