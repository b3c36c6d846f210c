"""Correctness oracle on the simulator's own seeded backfill with --chaos.

`telemetry_simulator.py --backfill-days 2 --seed ... --chaos --record FILE` writes into the test
topics; the expected marts are computed in Python from the produced messages (read back from
Kafka for their partition and offset, and checked against the --record file), then
`./lakehouse catch-up` must make the marts match them exactly. Also checks that health scoring against the simulator's
fault labels yields precision and recall.
"""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from smartmeter.config import REPO_ROOT
from tests.helpers.pipeline import (
    FAULT_LOG_TEST_TOPIC,
    TELEMETRY_TEST_TOPIC,
    assert_matches_oracle,
    consume_recorded,
    isolated_state,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def state(settings, tmp_path_factory):
    def fill(s):
        folder = tmp_path_factory.mktemp("sim")
        record = folder / "record.jsonl"
        s.labels_csv = folder / "labels.csv"
        result = subprocess.run(
            [sys.executable, str(REPO_ROOT / "telemetry_simulator.py"), "--backfill-days", "2", "--seed", "20251209",
             "--chaos", "--devices", "10", "--fault-rate", "0.5", "--record", str(record), "--quiet",
             "--fault-labels", str(s.labels_csv),
             "--bootstrap-servers", settings.kafka_bootstrap_servers,
             "--topic", TELEMETRY_TEST_TOPIC, "--fault-log-topic", FAULT_LOG_TEST_TOPIC],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        s.telemetry, s.fault_logs = consume_recorded(settings, record, [TELEMETRY_TEST_TOPIC, FAULT_LOG_TEST_TOPIC])

    with isolated_state(settings, fill) as s:
        s.pipeline.catch_up()
        yield s


def test_marts_match_the_oracle_on_a_simulator_backfill(state):
    expected = assert_matches_oracle(state)
    assert sum(expected.rejected.values()) > 0, "--chaos produced rejects"


def test_health_scoring_reports_precision_and_recall(state):
    p = state.pipeline
    rows = p.query(f"select positive_status_rule, fault_type, precision_share, recall_share, true_positive_count, "
                   f"false_positive_count, false_negative_count, true_negative_count "
                   f"from iceberg.{p.marts}.health_score_evaluation order by 1, 2")
    print("\n".join(str(r) for r in rows))
    overall = [r for r in rows if r[1] == "ALL"]
    assert {r[0] for r in overall} == {"NOT_HEALTHY", "UNHEALTHY"}
    assert all(r[3] is not None for r in overall)
    deserved = {"BATTERY_FAILURE": "UNHEALTHY", "REGISTER_STUCK": "UNHEALTHY", "TAMPER": "UNHEALTHY",
                "COMM_DROPOUT": "NOT_HEALTHY", "CLOCK_DRIFT": "NOT_HEALTHY", "VOLTAGE_INSTABILITY": "NOT_HEALTHY"}
    assert {r[1]: r[0] for r in rows if r[1] != "ALL"} == deserved, "one row per fault type, at its status"
    # Every row scores the same device-days: the reporting meters' days with at least 90 % of
    # the readings of their busiest day.
    days = p.query(f"select reading_date, count(*), sum(reading_count) from iceberg.{p.marts}.device_health "
                   f"where device_id in (select device_id from iceberg.{p.marts}.device_health group by 1 "
                   f"having sum(reading_count) > 0) group by 1")
    busiest = max(readings for _, _, readings in days)
    scored = sum(device_days for _, device_days, readings in days if readings >= 0.9 * busiest)
    assert scored > 0
    assert all(sum(r[4:8]) == scored for r in rows), f"each row counts the {scored} scored device-days once"
    statuses = dict(p.query(f"select device_health_status, count(*) from iceberg.{p.marts}.device_health group by 1"))
    assert statuses.get("HEALTHY", 0) > 0 and (statuses.get("DEGRADED", 0) + statuses.get("UNHEALTHY", 0)) > 0


def test_vee_finds_the_labelled_dropouts_and_stuck_registers(state):
    """Every interval inside a labelled comm dropout is a gap. A dropout of up to 3 hours is
    estimated by splitting what the register counted over it (the simulator's register keeps
    counting) along the line, a longer one within a local day in the shape of the meter's profile
    (or the line without one), and the estimates sum to exactly that; a longer one across
    midnight is not estimated. Every reading
    of a labelled stuck register, from 2 hours into the episode, is in a zero run. (An episode
    still open at the end of the backfill has no end. Which dropouts the seed draws depends on
    the meters in master data; the late-data oracle test estimates a 2-hour hole every time.)"""
    p = state.pipeline
    with state.labels_csv.open() as handle:
        labels = list(csv.DictReader(handle))
    devices = ", ".join(sorted({repr(label["device_id"]) for label in labels}))
    rows = p.query(f"select device_id, interval_end_at, reading_count, rule_codes, energy_kwh, register_kwh, "
                   f"estimation_method, reading_date from iceberg.{p.marts}.device_intervals where device_id in ({devices}) "
                   "order by device_id, interval_end_at")
    checked = {"COMM_DROPOUT": 0, "REGISTER_STUCK": 0}
    estimated = {"short dropouts": 0, "long dropouts": 0, "long dropouts across midnight": 0}
    for label in labels:
        if label["fault_type"] not in checked:
            continue
        started_at = datetime.fromisoformat(label["started_at"].replace("Z", "+00:00")).astimezone(UTC)
        ended_at = (datetime.fromisoformat(label["ended_at"].replace("Z", "+00:00")).astimezone(UTC)
                    if label["ended_at"] else datetime.max.replace(tzinfo=UTC))
        device_rows = [r for r in rows if r[0] == label["device_id"]]
        if label["fault_type"] == "COMM_DROPOUT":
            inside = [r for r in device_rows if started_at < r[1] < ended_at]
            assert all(r[2] == 0 and r[3].startswith("GAP") for r in inside), (label, inside[:3])
            before = [r for r in device_rows if r[1] <= started_at and r[2] > 0]
            after = [r for r in device_rows if r[1] >= ended_at and r[2] > 0]
            if inside and before and after:
                gap = [r for r in device_rows if before[-1][1] < r[1] < after[0][1]]
                is_short = after[0][1] - before[-1][1] - timedelta(minutes=15) <= timedelta(hours=3)
                if is_short or gap[0][7] == gap[-1][7]:
                    methods = {r[6] for r in gap}
                    allowed = [{"REGISTER_SPLIT"}] if is_short else [
                        {"REGISTER_SPLIT"}, {"REGISTER_PROFILE"}, {"REGISTER_SEGMENT_PROFILE"}]
                    assert methods in allowed, (label, methods)
                    counted = after[0][5] - before[-1][5] - after[0][4]
                    assert math.isclose(sum(r[4] for r in gap), counted, abs_tol=1e-9), (label, counted)
                    estimated["short dropouts" if is_short else "long dropouts"] += 1
                else:
                    assert all(r[6] is None and r[4] is None for r in gap), (label, gap[:3])
                    estimated["long dropouts across midnight"] += 1
        else:
            inside = [r for r in device_rows if r[2] > 0 and started_at + timedelta(hours=2) <= r[1] < ended_at]
            assert all("ZERO_RUN" in (r[3] or "") for r in inside), (label, [r for r in inside if "ZERO_RUN" not in (r[3] or "")][:3])
        checked[label["fault_type"]] += len(inside)
    print(checked, estimated)
    assert all(checked.values()), f"the seeded backfill has a dropout and a stuck register to check: {checked}"
