"""Stopping and starting the stack keeps data; status reports a stopped service.

Named to run last: it takes services down, which the other integration tests need up.
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Producer

from smartmeter.trino_sql import query
from tests.conftest import run_lakehouse


def test_down_then_up_keeps_iceberg_table_and_kafka_messages(settings):
    name = f"it_restart_{uuid.uuid4().hex[:8]}"
    query(settings, f"CREATE TABLE iceberg.staging.{name} AS SELECT 'MTR-10001' AS device_id, 2.5 AS energy_kwh")
    delivered = []
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, "acks": "all"})
    marker = uuid.uuid4().hex
    producer.produce("meter_fault_logs", key="MTR-10001", value=f"NOTE restart probe {marker}",
                     on_delivery=lambda err, msg: delivered.append((err, msg.partition(), msg.offset())))
    producer.flush(30)
    (err, partition, offset), = delivered
    assert err is None

    down = run_lakehouse("down")
    assert down.returncode == 0, down.stderr
    assert run_lakehouse("status").returncode != 0

    started = time.monotonic()
    up = run_lakehouse("up")
    print(f"warm up to healthy: {time.monotonic() - started:.1f}s")
    assert up.returncode == 0, up.stdout + up.stderr
    assert run_lakehouse("status").returncode == 0

    try:
        _, rows = query(settings, f"SELECT device_id, energy_kwh FROM iceberg.staging.{name}")
        assert [(d, float(e)) for d, e in rows] == [("MTR-10001", 2.5)]
        _, messages = query(
            settings,
            f"SELECT _message FROM kafka.default.meter_fault_logs WHERE _partition_id = {partition} AND _partition_offset = {offset}",
        )
        assert messages == [(f"NOTE restart probe {marker}",)]
    finally:
        query(settings, f"DROP TABLE iceberg.staging.{name}")


def test_status_fails_when_one_service_is_stopped():
    assert run_lakehouse("status").returncode == 0
    assert run_lakehouse("stop-service", "objectstore").returncode == 0
    status = run_lakehouse("status")
    assert status.returncode != 0
    assert any(line.startswith("objectstore") and "stopped" in line for line in status.stdout.splitlines()), status.stdout
    assert run_lakehouse("up").returncode == 0
    assert run_lakehouse("status").returncode == 0
