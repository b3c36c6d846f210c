"""The native stack's components, each checked through its real protocol."""

from __future__ import annotations

import json
import uuid

import psycopg2
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from smartmeter.native.services import s3_client
from smartmeter.trino_sql import query
from tests.conftest import run_lakehouse


def _produce(settings, topic: str, key: str, value: str) -> tuple[int, int]:
    """Produce one message and return its (partition, offset) from the delivery report."""
    delivered = []
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, "acks": "all"})
    producer.produce(topic, key=key, value=value, on_delivery=lambda err, msg: delivered.append((err, msg)))
    producer.flush(30)
    assert len(delivered) == 1
    err, msg = delivered[0]
    assert err is None, err
    return msg.partition(), msg.offset()


@pytest.fixture()
def s3(settings):
    return s3_client(settings)


def test_kafka_produce_and_consume_on_external_listener(settings):
    assert settings.kafka_bootstrap_servers == f"localhost:{settings.kafka_port}"
    topic = f"it_roundtrip_{uuid.uuid4().hex[:8]}"
    sent = {f"MTR-{i}": f"payload-{i}-{uuid.uuid4().hex}" for i in range(5)}
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, "acks": "all"})
    for key, value in sent.items():
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": topic, "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    received = {}
    try:
        for _ in range(60):
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is None:
                received[msg.key().decode()] = msg.value().decode()
            if len(received) == len(sent):
                break
    finally:
        consumer.close()
        AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers}).delete_topics([topic])
    assert received == sent


def test_trino_reads_telemetry_topic_with_kafka_coordinates(settings):
    reading = {
        "device_id": "MTR-10000",
        "customer_id": "CUST-8000",
        "timestamp": "2020-01-01T00:15:00Z",
        "metrics": {"energy_kwh": 0.1, "voltage": 230.0, "battery_pct": 90},
        "status": "OK",
        "probe": uuid.uuid4().hex,
    }
    text = json.dumps(reading)
    partition, offset = _produce(settings, "telemetry_raw", "MTR-10000", text)
    _, rows = query(
        settings,
        "SELECT _partition_id, _partition_offset, _message, json_extract_scalar(_message, '$.probe') "
        f"FROM kafka.default.telemetry_raw WHERE _partition_id = {partition} AND _partition_offset = {offset}",
    )
    assert rows == [(partition, offset, text, reading["probe"])]


def test_iceberg_table_lifecycle_writes_parquet_to_s3(settings, s3):
    name = f"it_lifecycle_{uuid.uuid4().hex[:8]}"
    table = f"iceberg.staging.{name}"
    query(settings, f"CREATE TABLE {table} (device_id varchar, energy_kwh double)")
    try:
        query(settings, f"INSERT INTO {table} VALUES ('MTR-1', 0.5), ('MTR-2', 1.25)")
        _, rows = query(settings, f"SELECT device_id, energy_kwh FROM {table} ORDER BY device_id")
        assert rows == [("MTR-1", 0.5), ("MTR-2", 1.25)]
        _, files = query(settings, f'SELECT file_path FROM iceberg.staging."{name}$files"')
        assert files, "the insert committed no data file"
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket=settings.s3_bucket, Prefix="warehouse/").get("Contents", [])}
        for (path,) in files:
            assert path.endswith(".parquet")
            key = path.split(f"s3://{settings.s3_bucket}/", 1)[1]
            assert key in keys, f"{key} is not on the S3 server"
    finally:
        query(settings, f"DROP TABLE {table}")
    _, remaining = query(settings, f"SHOW TABLES FROM iceberg.staging LIKE '{name}'")
    assert remaining == []
    keys_after = {o["Key"] for o in s3.list_objects_v2(Bucket=settings.s3_bucket, Prefix="warehouse/").get("Contents", [])}
    for (path,) in files:
        assert path.split(f"s3://{settings.s3_bucket}/", 1)[1] not in keys_after, "DROP TABLE left data files behind"


def test_s3_multipart_upload_over_64_mb(settings, s3):
    key = f"it-multipart/{uuid.uuid4().hex}.bin"
    part = 16 * 1024 * 1024
    chunks = [bytes([i]) * part for i in range(5)]  # 80 MiB in 5 parts
    upload = s3.create_multipart_upload(Bucket=settings.s3_bucket, Key=key)
    parts = []
    for number, chunk in enumerate(chunks, start=1):
        etag = s3.upload_part(Bucket=settings.s3_bucket, Key=key, UploadId=upload["UploadId"], PartNumber=number, Body=chunk)
        parts.append({"PartNumber": number, "ETag": etag["ETag"]})
    s3.complete_multipart_upload(Bucket=settings.s3_bucket, Key=key, UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": parts})
    try:
        head = s3.head_object(Bucket=settings.s3_bucket, Key=key)
        assert head["ContentLength"] == 5 * part
        tail = s3.get_object(Bucket=settings.s3_bucket, Key=key, Range=f"bytes={4 * part}-{4 * part + 3}")["Body"].read()
        assert tail == bytes([4]) * 4
    finally:
        s3.delete_object(Bucket=settings.s3_bucket, Key=key)


def test_trino_reads_postgres_master_data(settings):
    with psycopg2.connect(**settings.postgres_connect_kwargs(role="admin")) as conn, conn.cursor() as cur:
        cur.execute("SELECT device_id, customer_id FROM devices ORDER BY device_id")
        expected = cur.fetchall()
    _, rows = query(settings, "SELECT device_id, customer_id FROM postgresql.public.devices ORDER BY device_id")
    assert rows == [tuple(r) for r in expected]
    assert ("MTR-10000", "CUST-8000") in rows


def test_sql_command_prints_table_and_fails_on_error():
    # As the analyst it runs as by default (no catalog needed).
    ok = run_lakehouse("sql", "select count(*) from unnest(sequence(1, 10))")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[2].strip() == "10"
    bad = run_lakehouse("sql", "select no_such_column from (values 1) t(x)")
    assert bad.returncode != 0
    assert "COLUMN_NOT_FOUND" in bad.stderr


def test_postgres_rejects_overlapping_tariff_periods(settings):
    """An hour in two periods of one tariff and day type would be billed twice."""
    with psycopg2.connect(**settings.postgres_connect_kwargs(role="admin")) as conn, conn.cursor() as cur:
        cur.execute("SELECT start_hour, end_hour FROM tariff_periods"
                    " WHERE tariff_id = 'TOU-RES' AND day_type = 'WEEKDAY' AND start_hour = 17")
        assert cur.fetchone() == (17, 21)
        cur.execute("SAVEPOINT overlap")
        with pytest.raises(psycopg2.errors.ExclusionViolation, match="tariff_periods_no_overlap"):
            cur.execute("INSERT INTO tariff_periods (tariff_id, day_type, start_hour, end_hour, period_name,"
                        " price_per_kwh) VALUES ('TOU-RES', 'WEEKDAY', 20, 22, 'PEAK', 0.5)")
        cur.execute("ROLLBACK TO SAVEPOINT overlap")
        # Adjacent periods, [0, 12) then [12, 24), do not overlap.
        cur.execute("INSERT INTO tariff_periods (tariff_id, day_type, start_hour, end_hour, period_name,"
                    " price_per_kwh) VALUES ('TOU-RES', 'SATURDAY', 0, 12, 'OFF_PEAK', 0.1),"
                    " ('TOU-RES', 'SATURDAY', 12, 24, 'PEAK', 0.3)")
        conn.rollback()
