"""The pipeline against the native stack: correctness oracle, idempotence, SIGKILL, late data.

One isolated pipeline (own Kafka test topics, own Iceberg schemas) is shared by the tests of this
module, which run in order, each building on the state the previous one left:

1. seeded backfill with chaos -> `./lakehouse dbt build` -> marts equal the oracle computed in
   Python from the produced messages (kWh to 1e-6, reading counts, rejected counts by reason);
2. a second `./lakehouse dbt run` with no new data changes no row;
3. late readings for an earlier day, then `./lakehouse catch-up` -> only that day's rows change;
4. new data plus cross-partition duplicates, `dbt build` SIGKILLed midway (twice, at different
   models), then `./lakehouse catch-up` -> marts equal the oracle over everything produced.

Needs the native stack and the Kafka catalog tables telemetry_raw_test / meter_fault_logs_test.
The test topics are recreated, so don't run two of these sessions at the same time.
"""

from __future__ import annotations

import json
import math
import re
import socket
import subprocess
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from smartmeter.commands.docs import site_directory, undocumented
from smartmeter.config import REPO_ROOT, TRINO_ADMIN_USER
from smartmeter.pipeline.maintenance import kept_for_restatements
from smartmeter.pipeline.restatements import (
    PUBLISHED_MARTS,
    STATE_PREFIX,
    Checkpoint,
    RestatementLog,
    published_checkpoints,
)
from smartmeter.pipeline.store import PipelineStore
from smartmeter.trino_sql import TrinoSession
from tests.helpers.contract import CONTRACT
from tests.helpers.pipeline import (
    FAULT_LOG_TEST_TOPIC,
    TELEMETRY_TEST_TOPIC,
    assert_matches_oracle,
    duplicate_count,
    first_devices,
    generate_backfill,
    isolated_state,
    month_published,
    produce,
    restated_change,
    snapshot,
)

pytestmark = pytest.mark.integration

TODAY = datetime.now(UTC).date()
FIRST_DAY = TODAY - timedelta(days=6)
LATE_DAY = FIRST_DAY + timedelta(days=1)
KILL_DAY = TODAY - timedelta(days=3)
LATE_DEVICE = "MTR-10003"


@pytest.fixture(scope="module")
def state(settings):
    def fill(s):
        devices = first_devices(s.device_customers, 10)
        backfill = generate_backfill(devices, FIRST_DAY, days=3, seed=42, late_device=LATE_DEVICE, late_day=LATE_DAY)
        s.telemetry = produce(settings, TELEMETRY_TEST_TOPIC, backfill.telemetry)
        s.fault_logs = produce(settings, FAULT_LOG_TEST_TOPIC, backfill.fault_logs)
        s.held_back = backfill.held_back

    with isolated_state(settings, fill) as s:
        s.pipeline.build()
        yield s


def test_marts_match_the_oracle_after_a_backfill_with_chaos(state):
    expected = assert_matches_oracle(state)
    assert set(expected.rejected) >= {"MALFORMED_JSON", "MISSING_FIELD", "WRONG_TYPE", "OUT_OF_RANGE", "UNKNOWN_DEVICE",
                                      "FUTURE_TIMESTAMP"}, "the chaos covers every reject reason"
    assert duplicate_count(expected) > 0, "the chaos includes duplicates"


def test_contract_marts_start_with_the_contract_columns(state):
    p = state.pipeline
    for name, columns in CONTRACT.items():
        described = [row[0] for row in p.query(f"describe iceberg.{p.marts}.{name}")]
        assert described[:len(columns)] == columns, name


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


def test_a_second_run_with_no_new_data_changes_no_row(state):
    before = snapshot(state)
    state.pipeline.lakehouse("dbt", "run")
    assert snapshot(state) == before


def test_late_data_updates_only_its_day(state):
    p = state.pipeline
    assert state.held_back, "the backfill held readings back"
    held = [json.loads(text) for _, text in state.held_back]
    window = (
        f"device_id = '{LATE_DEVICE}' and interval_end_at between from_iso8601_timestamp('{held[0]['timestamp']}') "
        f"and from_iso8601_timestamp('{held[-1]['timestamp']}')"
    )
    estimated = f"select estimation_method, count(*), sum(energy_kwh) from iceberg.{p.marts}.device_intervals " \
                f"where is_estimated and {window} group by 1"
    # The held-back readings are a 2-hour gap: estimated by splitting what the register counted
    # over it, which is exactly the energy of the readings still to come.
    [(method, count, estimated_kwh)] = p.query(estimated)
    assert (method, count) == ("REGISTER_SPLIT", len(held))
    assert math.isclose(estimated_kwh, sum(doc["metrics"]["energy_kwh"] for doc in held), abs_tol=1e-9)
    # The next day's 6-hour dropout (never sent) is estimated from the meter's profile, which
    # holds the late hours when that day has the late day's day type.
    dropout_day = LATE_DAY + timedelta(days=1)
    dropout = (f"select interval_end_at, estimation_method, energy_kwh from iceberg.{p.marts}.device_intervals "
               f"where device_id = '{LATE_DEVICE}' and interval_end_at > timestamp '{dropout_day} 08:00:00 UTC' "
               f"and interval_end_at <= timestamp '{dropout_day} 14:00:00 UTC' order by 1")
    dropout_before = p.query(dropout)
    before = snapshot(state)
    logged_before = p.restatement_rows()
    state.send(state.held_back)
    p.catch_up()
    after = snapshot(state)
    assert_matches_oracle(state)
    assert p.query(estimated) == [], "the late actuals replace the estimates"
    dropout_after = p.query(dropout)
    assert len(dropout_after) == 24, dropout_after
    zone = ZoneInfo(p.device_zones()[LATE_DEVICE])
    if len({(r[0] - timedelta(seconds=1)).astimezone(zone).date() for r in dropout_after}) == 1:
        assert all(r[2] is not None for r in dropout_after), dropout_after
        assert math.isclose(sum(r[2] for r in dropout_after), sum(r[2] for r in dropout_before), abs_tol=1e-9), \
            "the dropout sums to what the register counted, before and after"
        if (LATE_DAY.isoweekday() >= 6) == (dropout_day.isoweekday() >= 6):
            assert {r[1] for r in dropout_after} == {"REGISTER_PROFILE"}
            assert dropout_after != dropout_before, "the late hours reshape the dropout's profile estimate"
    # The later days whose long gaps follow the late meter's profile, or its segment's, read the
    # late hours, so VEE re-validates them too (the oracle above checked their values).
    profiled = {day for (day,) in p.query(
        f"select distinct reading_date from iceberg.{p.marts}.device_intervals where reading_date > date '{LATE_DAY}' "
        f"and (device_id = '{LATE_DEVICE}' and estimation_method in ('PROFILE', 'REGISTER_PROFILE') "
        "or estimation_method in ('SEGMENT_PROFILE', 'REGISTER_SEGMENT_PROFILE'))")}
    assert_restated(state, before, after, logged_before, held, profiled)

    def by_day(rows: list[tuple], day_index: int, drop: tuple[int, ...] = ()) -> dict:
        out: dict = {}
        for row in rows:
            day = row[day_index]
            day = day.astimezone(UTC).date() if isinstance(day, datetime) else day
            out.setdefault(day, []).append(tuple(v for i, v in enumerate(row) if i not in drop))
        return out

    def run_columns(name: str) -> tuple[int, ...]:
        columns = [c[0] for c in p.query(f"describe iceberg.{p.marts}.{name}")]
        return tuple(i for i, column in enumerate(columns) if column in ("batch_id", "scored_at"))

    def changed_days(name: str, day_index: int, drop: tuple[int, ...]) -> set:
        old, new = by_day(before[name], day_index, drop), by_day(after[name], day_index, drop)
        return {day for day in set(old) | set(new) if not same_values(old.get(day, []), new.get(day, []))}

    for name, day_index in (("device_daily_metrics", 2), ("customer_usage_hourly", 2), ("device_health", 2)):
        assert changed_days(name, day_index, run_columns(name)) == {LATE_DAY}, name
    # Estimates count in the usage summary; a profile estimate without a register count can change.
    assert {LATE_DAY} <= changed_days("customer_usage_summary", 1, run_columns("customer_usage_summary")) \
        <= {LATE_DAY} | profiled

    def late_count(rows: list[tuple]) -> int:
        return sum(r[8] for r in rows if r[0] == LATE_DEVICE and r[2] == LATE_DAY)

    assert late_count(after["device_daily_metrics"]) == late_count(before["device_daily_metrics"]) + len(state.held_back)
    # VEE validation: the late readings fill their gaps, and only profiled days change besides.
    assert {LATE_DAY} <= changed_days("device_intervals", 0, (3,)) <= {LATE_DAY} | profiled


def same_values(old: list[tuple], new: list[tuple]) -> bool:
    """Rows (in key order) equal, doubles to 1e-9 kWh: a day recomputed from unchanged inputs may
    sum its doubles in another order and differ in the last bit (the restatement log ignores
    changes under 1e-6)."""
    def same(a, b) -> bool:
        if isinstance(a, float) and isinstance(b, float):
            return math.isclose(a, b, rel_tol=0, abs_tol=1e-9)
        return a == b

    return len(old) == len(new) and all(
        len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True)) for a, b in zip(old, new, strict=True)
    )


def assert_restated(state, before: dict, after: dict, logged_before: set, held: list[dict], profiled: set) -> None:
    """The late readings changed published values of one customer-day (and may reshape the
    profile estimates of the `profiled` days after it): each change is in the restatement log
    once, with the value before and after, and the held-back energy (the messages themselves)
    accounts for it."""
    p = state.pipeline
    logged = p.restatements_since(logged_before)
    held_kwh = sum(doc["metrics"]["energy_kwh"] for doc in held)
    customer = held[0]["customer_id"]

    usage_columns = [c[0] for c in p.query(f"describe iceberg.{p.marts}.customer_usage_summary")]
    old_usage = {(r[0], r[1]): dict(zip(usage_columns, r, strict=True)) for r in before["customer_usage_summary"]}
    new_usage = {(r[0], r[1]): dict(zip(usage_columns, r, strict=True)) for r in after["customer_usage_summary"]}
    changed = {(key, measure) for key in old_usage for measure in ("total_energy_kwh", "estimated_energy_kwh")
               if abs(old_usage[key][measure] - new_usage[key][measure]) > 1e-6}
    usage = {((r["customer_id"], r["period_date"]), r["measure_name"]): r for r in logged
             if r["mart_name"] == "customer_usage_summary"}
    late = {((customer, LATE_DAY), "total_energy_kwh"), ((customer, LATE_DAY), "estimated_energy_kwh")}
    assert set(usage) == changed and late <= changed
    assert {day for (_, day), _ in changed} <= {LATE_DAY} | profiled
    for (key, measure), row in usage.items():
        assert (row["old_value"], row["new_value"]) == (old_usage[key][measure], new_usage[key][measure])
    total = usage[((customer, LATE_DAY), "total_energy_kwh")]
    assert math.isclose(total["new_value"] - total["old_value"], held_kwh, abs_tol=1e-9)
    estimate = usage[((customer, LATE_DAY), "estimated_energy_kwh")]
    assert math.isclose(estimate["old_value"] - estimate["new_value"], held_kwh, abs_tol=1e-9)

    billing = [r for r in logged if r["mart_name"] == "customer_billing_daily"]
    assert (customer, LATE_DAY) in {(r["customer_id"], r["period_date"]) for r in billing}
    assert {r["period_date"] for r in billing} <= {LATE_DAY} | profiled
    # A profile reshaped under the register's count keeps its day's sum. The bill moves the held-back energy from estimated to actual.
    assert math.isclose(restated_change(logged, "customer_billing_daily", "energy_kwh"), held_kwh, abs_tol=1e-9)
    assert math.isclose(restated_change(logged, "customer_billing_daily", "estimated_energy_kwh"), -held_kwh, abs_tol=1e-9)
    assert {r["measure_name"] for r in billing} == {"energy_kwh", "energy_cost", "estimated_energy_kwh",
                                                    "estimated_energy_cost"}
    # The month's bill too, once the month has ended.
    settings = p.scoped_settings()
    monthly = [r for r in logged if r["mart_name"] == "customer_billing_monthly"]
    if month_published(LATE_DAY.replace(day=1), p.device_zones()[LATE_DEVICE], total["published_at"],
                       settings.restatement_grace_minutes):
        assert (customer, LATE_DAY.replace(day=1)) in {(r["customer_id"], r["period_date"]) for r in monthly}
        assert {r["period_date"] for r in monthly} <= {day.replace(day=1) for day in {LATE_DAY} | profiled}
        for measure, change in (("energy_kwh", held_kwh), ("estimated_energy_kwh", -held_kwh)):
            assert math.isclose(restated_change(logged, "customer_billing_monthly", measure), change, abs_tol=1e-9)
    else:
        assert monthly == [], "the month is still running"
    assert {r["change_reason"] for r in logged if r["period_date"] in (LATE_DAY, LATE_DAY.replace(day=1))} \
        == {"ESTIMATE_REPLACED"}
    assert len({r["batch_id"] for r in logged}) == 1
    assert all(r["published_at"] < r["restated_at"] for r in logged)

    # A run killed after writing the log but before moving its checkpoint writes the same rows again.
    store = PipelineStore(settings)
    try:
        for mart in PUBLISHED_MARTS:
            checkpoint = published_checkpoints(store)[mart.name]
            published = next((r["published_snapshot_id"] for r in logged if r["mart_name"] == mart.name),
                             checkpoint.snapshot_id)
            store.set_state(STATE_PREFIX + mart.name, str(Checkpoint(published, checkpoint.run_id - 1)))
        assert RestatementLog(settings, lambda _: None).record(store, logged[0]["batch_id"]) == len(logged)
    finally:
        store.close()
    assert len(p.restatements_since(logged_before)) == len(logged)


def test_sigkill_midway_then_rerun_equals_the_oracle(state):
    p = state.pipeline
    devices = first_devices(state.device_customers, 10)
    backfill = generate_backfill(devices, KILL_DAY, days=1, seed=7)
    # Exact copies of earlier valid readings, without key so they may land on a lower partition.
    copies = [(None, m.value) for m in state.telemetry[:400:20] if m.value]
    state.send(backfill.telemetry + copies, backfill.fault_logs)

    p.run_and_kill(["dbt", "build"], f"START sql incremental model {p.staging}.stg_telemetry_raw")
    p.run_and_kill(["dbt", "build"], f"START sql incremental model {p.intermediate}.int_device_days_aggregated")
    p.catch_up()
    assert_matches_oracle(state)
    days = {row[1] for row in p.query(f"select distinct customer_id, reading_date from iceberg.{p.marts}.customer_usage_summary")}
    assert KILL_DAY in days


def test_maintenance_compacts_files_keeps_the_published_snapshots_and_changes_no_number(state):
    """`lakehouse maintain` (as the loop runs it) optimizes and expires snapshots on every table of
    the scope; the marts still equal the oracle, and the snapshots the restatement log compares
    with stay, for as long as their age (plus an hour), whatever the retention."""
    p = state.pipeline
    settings = p.scoped_settings()
    store = PipelineStore(settings)
    try:
        published = published_checkpoints(store)
    finally:
        store.close()
    assert all(published.values()), published
    result = p.lakehouse("maintain", "--retention", "1h", "--skip-orphans")
    assert "error" not in result.stdout, result.stdout
    files_before, files_after = map(int, re.search(r"data files (\d+) -> (\d+)", result.stdout).groups())
    assert files_after < files_before, result.stdout
    marts = {mart.name: f'iceberg."{p.marts}"."{mart.name}"' for mart in PUBLISHED_MARTS}
    for name in marts:
        kept = p.query(f'select count(*) from iceberg."{p.marts}"."{name}$snapshots" '
                       f"where snapshot_id = {published[name].snapshot_id}")
        assert kept == [(1,)], f"{name}'s published snapshot was expired"
    with TrinoSession(settings.as_trino(TRINO_ADMIN_USER)) as trino:
        kept_s = kept_for_restatements(settings, trino, list(marts.values()) + ["iceberg.x.y"])
    assert set(kept_s) == set(marts.values()) and all(seconds > 3600 for seconds in kept_s.values()), kept_s
    assert_matches_oracle(state)


def test_dbt_tests_and_unit_tests_pass(state):
    # `dbt build` already ran every data test and unit test; this checks the warn-level ones too.
    result = state.pipeline.lakehouse("dbt", "test", "--select", "stg_telemetry_messages")
    assert "ERROR=0" in result.stdout



def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_docs_describe_every_model_and_column_and_are_served(state):
    result = state.pipeline.lakehouse("docs", "--no-serve")
    assert "every model and column described" in result.stdout, result.stdout
    site = site_directory(state.pipeline.scoped_settings())
    manifest = json.loads((site / "manifest.json").read_text())
    catalog = json.loads((site / "catalog.json").read_text())
    models = [uid for uid, node in manifest["nodes"].items() if node["resource_type"] == "model"]
    # The catalog saw every model in the warehouse, so no column escaped the check.
    assert len(models) >= 20 and set(models) <= set(catalog["nodes"])
    assert undocumented(manifest, catalog) == []

    port = _free_port()
    server = subprocess.Popen(state.pipeline.command("docs", "--port", str(port)), cwd=REPO_ROOT,
                              env=state.pipeline.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/catalog.json", timeout=5) as response:
                    served = json.load(response)
                break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "the docs server did not answer in 300 s"
                time.sleep(2)
        assert set(served["nodes"]) == set(catalog["nodes"])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            assert "dbt" in response.read().decode().lower()
    finally:
        server.terminate()
        server.wait(timeout=30)
