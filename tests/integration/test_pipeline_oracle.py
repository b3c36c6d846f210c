"""The dbt pipeline against the native stack: correctness oracle, idempotence, SIGKILL, late data.

One isolated pipeline (own Kafka test topics, own Iceberg schemas) is shared by the tests of this
module, which run in order, each building on the state the previous one left:

1. seeded backfill with chaos -> dbt build -> marts equal the oracle computed in Python from the
   produced messages (kWh to 1e-6, reading counts, rejected counts by reason);
2. a second build with no new data changes no row;
3. late readings for an earlier day -> only that day's rows change;
4. new data plus cross-partition duplicates, dbt build SIGKILLed midway (twice, at different
   models), then a normal build -> marts equal the oracle over everything produced.

Needs the native stack and the Kafka catalog tables telemetry_raw_test / meter_fault_logs_test.
The test topics are recreated, so don't run two of these sessions at the same time.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from tests.helpers.pipeline import (
    FAULT_LOG_TEST_TOPIC,
    TELEMETRY_TEST_TOPIC,
    Expected,
    IsolatedPipeline,
    Produced,
    expected_from_messages,
    generate_backfill,
    produce,
    recreate_topics,
)

pytestmark = pytest.mark.integration

TODAY = datetime.now(UTC).date()
FIRST_DAY = TODAY - timedelta(days=6)
LATE_DAY = FIRST_DAY + timedelta(days=1)
KILL_DAY = TODAY - timedelta(days=3)
LATE_DEVICE = "MTR-10003"


class State:
    pipeline: IsolatedPipeline
    device_customers: dict[str, str]
    telemetry: list[Produced]
    fault_logs: list[Produced]
    held_back: list[tuple[str, str]]


@pytest.fixture(scope="module")
def state(settings):
    s = State()
    s.pipeline = IsolatedPipeline(settings)
    try:
        rows = s.pipeline.query("select device_id, customer_id from postgresql.public.devices")
        s.device_customers = dict(rows)
        devices = sorted(s.device_customers.items())[:10]
        recreate_topics(settings, [TELEMETRY_TEST_TOPIC, FAULT_LOG_TEST_TOPIC])
        backfill = generate_backfill(devices, FIRST_DAY, days=3, seed=42, late_device=LATE_DEVICE, late_day=LATE_DAY)
        s.telemetry = produce(settings, TELEMETRY_TEST_TOPIC, backfill.telemetry)
        s.fault_logs = produce(settings, FAULT_LOG_TEST_TOPIC, backfill.fault_logs)
        s.held_back = backfill.held_back
        s.pipeline.wait_for_topic_count(TELEMETRY_TEST_TOPIC, len(s.telemetry))
        s.pipeline.build()
    except BaseException:
        s.pipeline.drop_schemas()
        raise
    yield s
    s.pipeline.wait_for_idle_queries()
    s.pipeline.drop_schemas()


def assert_matches_oracle(s: State) -> Expected:
    p = s.pipeline
    expected = expected_from_messages(s.telemetry, s.device_customers, datetime.now(UTC))

    landed, distinct_coordinates = p.query(
        f"select count(*), count(distinct (kafka_partition, kafka_offset)) from iceberg.{p.staging}.stg_telemetry_messages"
    )[0]
    assert landed == distinct_coordinates == expected.message_count, "every message lands exactly once"

    rejected = dict(p.query(f"select reject_reason, count(*) from iceberg.{p.staging}.stg_telemetry_rejected group by 1"))
    assert rejected == dict(expected.rejected)
    assert sum(rejected.values()) + len(expected.readings) + _duplicates(expected) == expected.message_count

    staged = {
        (device_id, reading_at.astimezone(UTC)): (partition, offset)
        for device_id, reading_at, partition, offset in p.query(
            f"select device_id, reading_at, kafka_partition, kafka_offset from iceberg.{p.staging}.stg_telemetry_raw"
        )
    }
    assert staged == {key: value[:2] for key, value in expected.readings.items()}, "dedup keeps the lowest (partition, offset)"

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

    parsed, unparsed = (
        p.query(f"select count(*) from iceberg.{p.staging}.stg_fault_logs")[0][0],
        p.query(f"select count(*) from iceberg.{p.staging}.stg_fault_logs_rejected")[0][0],
    )
    assert parsed + unparsed == len(s.fault_logs), "every fault-log line is parsed or rejected"
    return expected


def _duplicates(expected: Expected) -> int:
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
    }


def test_marts_match_the_oracle_after_a_backfill_with_chaos(state):
    expected = assert_matches_oracle(state)
    assert set(expected.rejected) >= {"MALFORMED_JSON", "MISSING_FIELD", "WRONG_TYPE", "OUT_OF_RANGE", "UNKNOWN_DEVICE",
                                      "FUTURE_TIMESTAMP"}, "the chaos covers every reject reason"
    assert _duplicates(expected) > 0, "the chaos includes duplicates"


def test_contract_marts_have_exactly_the_contract_columns(state):
    from tests.unit.test_dbt_project import CONTRACT

    p = state.pipeline
    for name, columns in CONTRACT.items():
        assert [row[0] for row in p.query(f"describe iceberg.{p.marts}.{name}")] == columns, name


def test_fault_logs_parse_every_dialect(state):
    p = state.pipeline
    dialects = dict(p.query(f"select log_dialect, count(*) from iceberg.{p.staging}.stg_fault_logs group by 1"))
    assert set(dialects) == {"ELX", "KMF", "SGX", "NOTE"}
    bad = p.query(
        f"select count(*) from iceberg.{p.staging}.stg_fault_logs "
        "where severity not in ('INFO', 'WARNING', 'ERROR', 'CRITICAL') or event_at is null or event_type is null"
    )[0][0]
    assert bad == 0
    assert p.query(f"select count(*) from iceberg.{p.staging}.stg_fault_logs_rejected")[0][0] >= 2


def test_a_second_build_with_no_new_data_changes_no_row(state):
    before = snapshot(state)
    state.pipeline.build()
    assert snapshot(state) == before


def test_late_data_updates_only_its_day(state):
    p = state.pipeline
    before = snapshot(state)
    state.telemetry += produce(p.settings, TELEMETRY_TEST_TOPIC, state.held_back)
    p.wait_for_topic_count(TELEMETRY_TEST_TOPIC, len(state.telemetry))
    p.build()
    after = snapshot(state)
    assert_matches_oracle(state)

    def by_day(rows: list[tuple], day_index: int, drop: tuple[int, ...] = ()) -> dict:
        out: dict = {}
        for row in rows:
            day = row[day_index]
            day = day.astimezone(UTC).date() if isinstance(day, datetime) else day
            out.setdefault(day, []).append(tuple(v for i, v in enumerate(row) if i not in drop))
        return out

    for name, day_index in (("device_daily_metrics", 2), ("customer_usage_summary", 1), ("customer_usage_hourly", 1)):
        old, new = by_day(before[name], day_index), by_day(after[name], day_index)
        changed = {day for day in set(old) | set(new) if old.get(day) != new.get(day)}
        assert changed == {LATE_DAY}, (name, changed)
    def late_count(rows: list[tuple]) -> int:
        return sum(r[8] for r in rows if r[0] == LATE_DEVICE and r[2] == LATE_DAY)

    assert late_count(after["device_daily_metrics"]) == late_count(before["device_daily_metrics"]) + len(state.held_back)
    # device_health re-scores every meter of that day but changes no other day.
    columns = [c[0] for c in p.query(f"describe iceberg.{p.marts}.device_health")]
    drop = (columns.index("aggregated_at"),)
    old, new = by_day(before["device_health"], 2, drop), by_day(after["device_health"], 2, drop)
    assert {day for day in set(old) | set(new) if old.get(day) != new.get(day)} == {LATE_DAY}


def test_sigkill_midway_then_rerun_equals_the_oracle(state):
    p = state.pipeline
    devices = sorted(state.device_customers.items())[:10]
    backfill = generate_backfill(devices, KILL_DAY, days=1, seed=7)
    # Exact copies of earlier valid readings, without key so they may land on a lower partition.
    copies = [(None, m.value) for m in state.telemetry[:400:20] if m.value]
    state.telemetry += produce(p.settings, TELEMETRY_TEST_TOPIC, backfill.telemetry + copies)
    state.fault_logs += produce(p.settings, FAULT_LOG_TEST_TOPIC, backfill.fault_logs)
    p.wait_for_topic_count(TELEMETRY_TEST_TOPIC, len(state.telemetry))

    output = p.build_and_kill(f"START sql incremental model {p.staging}.stg_telemetry_raw")
    assert "stg_telemetry_raw" in output
    p.wait_for_idle_queries()
    output = p.build_and_kill(f"START sql incremental model {p.intermediate}.int_device_days_aggregated")
    p.wait_for_idle_queries()
    p.build()
    assert_matches_oracle(state)
    days = {row[1] for row in p.query(f"select distinct customer_id, reading_date from iceberg.{p.marts}.customer_usage_summary")}
    assert KILL_DAY in days


def test_dbt_tests_and_unit_tests_pass(state):
    # `dbt build` already ran every data test and unit test; this checks the warn-level ones too.
    result = state.pipeline.dbt("test", "--select", "stg_telemetry_messages")
    assert "ERROR=0" in result.stdout

