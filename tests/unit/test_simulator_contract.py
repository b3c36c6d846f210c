"""Determinism and the telemetry contract, checked against independent computations."""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal

from smartmeter.simulator.serializer import TelemetryEncoder, encode_document, reading_document
from tests.unit.test_simulator_support import (
    LOGS,
    TELEMETRY,
    backfill,
    contract_errors,
    parse_time,
    sample_devices,
)


def test_same_seed_gives_byte_identical_messages_and_another_seed_does_not():
    devices = sample_devices(30)
    first = backfill(devices, seed=42, days=2).producer.sent
    second = backfill(devices, seed=42, days=2).producer.sent
    other = backfill(devices, seed=43, days=2).producer.sent
    assert first == second
    assert len(first) > 30 * 192
    assert [value for _, _, value in first] != [value for _, _, value in other]


def test_every_reading_is_contract_valid_keyed_by_device_and_complete():
    devices = sample_devices(40)
    known = {device.device_id: device.customer_id for device in devices}
    run = backfill(devices, seed=5, days=2, background_events=False)
    messages = run.producer.on(TELEMETRY)
    assert len(messages) == 40 * 2 * 96
    per_device = defaultdict(list)
    for key, value in messages:
        assert contract_errors(value, known) == []
        document = json.loads(value)
        assert key == document["device_id"].encode()
        per_device[document["device_id"]].append(parse_time(document["timestamp"]))
    assert set(per_device) == set(known)
    first_at = parse_time("2025-11-30T23:15:00Z")  # 00:15 on 1 December in Berlin closes the first interval
    for timestamps in per_device.values():
        assert timestamps == [first_at + n * 900 for n in range(192)]


def test_register_equals_previous_register_plus_interval_energy():
    devices = sample_devices(20)
    run = backfill(devices, seed=9, days=1, background_events=False)
    previous: dict[str, Decimal] = {}
    for _, value in run.producer.on(TELEMETRY):
        document = json.loads(value, parse_float=Decimal)
        register = document["metrics"]["register_kwh"]
        device_id = document["device_id"]
        if device_id in previous:
            assert register - previous[device_id] == document["metrics"]["energy_kwh"]
        previous[device_id] = register


def test_template_encoding_equals_json_dumps_of_the_document():
    devices = sample_devices(12)
    run = backfill(devices, seed=3, days=1, background_events=False, max_readings=1)
    fleet = run.simulation.fleet
    batch = fleet.step(fleet._previous_end_at + 900)
    encoded = TelemetryEncoder(devices, 15).encode(batch)
    expected = [encode_document(reading_document(reading)) for reading in fleet.readings(batch)]
    assert [value for _, value in encoded] == expected
    assert [key for key, _ in encoded] == [reading.device_id.encode() for reading in fleet.readings(batch)]


def test_count_stops_after_exactly_n_readings():
    run = backfill(sample_devices(10), seed=1, days=1, max_readings=25)
    assert run.simulation.totals.readings == 25
    assert len(run.producer.on(TELEMETRY)) == 25


def test_fault_logs_go_to_their_own_topic_keyed_by_device():
    run = backfill(sample_devices(200), seed=2, days=2)
    lines = run.producer.on(LOGS)
    assert lines, "daily self tests should produce log lines"
    for key, line in lines:
        assert key.decode() in line
