"""Bounded batches and catch-up on the native stack (issue: scale).

One isolated pipeline with a tiny bound (PIPELINE_MAX_MESSAGES_PER_PARTITION=120), shared by the
tests of this module, in order:

1. a seeded backfill with chaos needs several cycles; a cycle that leaves a backlog writes no
   VEE gaps past a meter-day's last reading; after `./lakehouse catch-up` the marts equal the
   Python oracle, and one more cycle is idle: it starts no dbt and changes no row;
2. more data, `catch-up` SIGKILLed in the middle of a batch (runner and dbt), then `catch-up`
   again: the marts equal the oracle over everything produced;
3. a master-data change alone makes the next cycle run dbt;
4. a reading just after local midnight, alone in its batch, lands on the day before's last
   VEE interval; a long gap's estimate survives the next batch;
5. late readings for a published day are in the restatement log; today's changes are not;
6. a new meter's long gap follows its segment's profile;
7. a later day with only fault-log events is not re-validated when the meter's hours change;
8. a corrected reading replaces the published one and is logged as a CORRECTION;
9. zero runs across batches: the day's first energy flags the zero run before it, and readings
   that only append energy re-validate from the reading before them;
10. a cycle that leaves a backlog writes no day with only fault-log events ahead of its readings:
   the day's readings or the last cycle write its whole grid, once.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from itertools import combinations
from statistics import fmean
from zoneinfo import ZoneInfo

import psycopg2
import pytest

from smartmeter import calendar
from tests.helpers.pipeline import (
    FAULT_LOG_TEST_TOPIC,
    TELEMETRY_TEST_TOPIC,
    assert_matches_oracle,
    fault_line,
    first_devices,
    generate_backfill,
    generate_local_days,
    isolated_state,
    load_master_data,
    message_reading_at,
    month_published,
    produce,
    restated_change,
    snapshot,
)

pytestmark = pytest.mark.integration

BOUND = 120
FIRST_DAY = datetime.now(UTC).date() - timedelta(days=5)


def local_hours(text: str, day: date, zone: ZoneInfo) -> float:
    """Hours from `day`'s local midnight to the reading's timestamp (the end of its interval)."""
    return (message_reading_at(text) - datetime(day.year, day.month, day.day, tzinfo=zone)).total_seconds() / 3600


@pytest.fixture(scope="module")
def state(settings):
    def fill(s):
        backfill = generate_backfill(first_devices(s.device_customers, 6), FIRST_DAY, days=2, seed=8, chaos_rate=0.02)
        s.telemetry = produce(settings, TELEMETRY_TEST_TOPIC, backfill.telemetry + backfill.held_back)
        s.fault_logs = produce(settings, FAULT_LOG_TEST_TOPIC, backfill.fault_logs)

    with isolated_state(settings, fill, max_messages_per_partition=BOUND) as s:
        yield s


def test_catch_up_in_bounded_batches_equals_the_oracle(state):
    p = state.pipeline
    p.cycle()  # the first builds each model whole
    p.cycle()
    run_id, *_, behind = p.runs()[-1]
    assert behind > 0, p.runs()
    # A cycle that leaves a backlog stops each meter-day it extends at its last reading, on the
    # dates from a day before the latest its readings reached: the gaps after it are written once, by
    # a later cycle, not again by every cycle. (A day re-validated whole, for a profile its long
    # gap reads, is not cut.)
    passed_before = p.query(f"select max(usage_date) - interval '1' day from iceberg.{p.intermediate}"
                            f".int_device_hours_aggregated where batch_id <= {run_id} and reading_count > 0")[0][0]
    days = p.query(
        f"select device_id, reading_date, max(reading_at), max(interval_end_at) filter (where batch_id = {run_id}) "
        f"from iceberg.{p.marts}.device_intervals group by device_id, reading_date "
        f"having count(reading_at) > 0 and count_if(batch_id = {run_id}) between 1 and count(*) - 1 "
        f"and reading_date >= date '{passed_before}'"
    )
    tails = [day for day in days if day[3] > day[2] + timedelta(hours=1)]
    assert days and not tails, tails
    output = p.catch_up().stdout
    loaded = [run for run in p.runs() if run[2] == "ok" and run[4]]
    needed = -(-len(state.telemetry) // (3 * BOUND))
    assert len(loaded) >= needed >= 3, (len(loaded), needed, output[-3000:])
    assert all(run[4] <= 3 * BOUND * 2 for run in loaded), "no cycle took more than the bound per partition"
    assert "caught up" in output
    leftover = p.query(f"select table_name from iceberg.information_schema.tables where table_schema = '{p.intermediate}' "
                       "and table_name = 'device_intervals__windows'")
    assert not leftover, "each run drops the windows table it wrote for device_intervals"
    assert_matches_oracle(state)


def test_one_more_cycle_is_idle_and_changes_nothing(state):
    p = state.pipeline
    before, runs_before = snapshot(state), p.runs()
    output = p.cycle().stdout
    assert "idle" in output and "nothing new" in output, output
    assert p.runs() == runs_before, "an idle cycle records no run and starts no dbt"
    assert snapshot(state) == before


def test_sigkill_in_the_middle_of_a_batch_then_catch_up_equals_the_oracle(state):
    p = state.pipeline
    devices = first_devices(state.device_customers, 6)
    backfill = generate_backfill(devices, FIRST_DAY + timedelta(days=2), days=1, seed=9, chaos_rate=0.02)
    copies = [(None, m.value) for m in state.telemetry[:300:30] if m.value]
    state.telemetry += produce(p.settings, TELEMETRY_TEST_TOPIC, backfill.telemetry + copies)
    state.fault_logs += produce(p.settings, FAULT_LOG_TEST_TOPIC, backfill.fault_logs)
    p.wait_for_topic_count(TELEMETRY_TEST_TOPIC, len(state.telemetry))
    p.run_and_kill(["catch-up"], f"START sql incremental model {p.intermediate}.int_device_days_aggregated")
    interrupted = [run for run in p.runs() if run[2] == "running"]
    assert interrupted, "the killed run was still marked running"
    p.catch_up()
    assert not [run for run in p.runs() if run[2] == "running"], "the next writer marks the killed run interrupted"
    assert_matches_oracle(state)


def test_a_master_data_change_alone_triggers_a_run(state):
    p = state.pipeline
    assert "idle" in p.cycle().stdout
    with psycopg2.connect(**p.settings.postgres_connect_kwargs(role="admin")) as conn, conn.cursor() as cur:
        cur.execute("select customer_id, region from customers order by customer_id limit 1")
        customer_id, region = cur.fetchone()
        cur.execute("update customers set region = %s where customer_id = %s", (region + "-moved", customer_id))
    try:
        runs_before = p.runs()
        output = p.cycle().stdout
        new_runs = p.runs()[len(runs_before):]
        assert [run[2] for run in new_runs] == ["ok"], output
        assert "master data changed" in new_runs[0][3]
        assert p.query(f"select region from iceberg.{p.staging}.stg_customers where customer_id = '{customer_id}'") == [
            (region + "-moved",)]
    finally:
        with psycopg2.connect(**p.settings.postgres_connect_kwargs(role="admin")) as conn, conn.cursor() as cur:
            cur.execute("update customers set region = %s where customer_id = %s", (region, customer_id))


def test_a_reading_just_after_midnight_alone_in_its_batch_fills_the_day_before(state):
    """A reading stamped 4 minutes after local midnight belongs to the VEE interval that ends at
    midnight, on the day before; a batch holding only that reading re-validates that day too."""
    p = state.pipeline
    device_id, customer_id = first_devices(state.device_customers, 1)[0]
    zone = p.device_zones().get(device_id, "Europe/Berlin")
    day = FIRST_DAY - timedelta(days=2)
    midnight = datetime.combine(day + timedelta(days=1), datetime.min.time(), ZoneInfo(zone)).astimezone(UTC)
    readings = generate_local_days([(device_id, customer_id, zone)], [day, day + timedelta(days=1)], seed=12)

    state.send([(key, text) for key, text in readings if message_reading_at(text) < midnight])
    p.catch_up()
    late = json.loads(next(text for _, text in readings if message_reading_at(text) > midnight))
    late["timestamp"] = (midnight + timedelta(minutes=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    state.send([(device_id, json.dumps(late))])
    p.catch_up()
    [(count, reading_date, rule_codes)] = p.query(
        f"select reading_count, reading_date, rule_codes from iceberg.{p.marts}.device_intervals "
        f"where device_id = '{device_id}' and interval_end_at = from_iso8601_timestamp('{midnight.isoformat()}')"
    )
    assert (count, reading_date) == (1, day), (count, reading_date)
    assert "MISALIGNED" in rule_codes
    assert_matches_oracle(state)


def test_a_long_gaps_estimate_survives_the_next_batch(state):
    """A 6-hour dropout is estimated in the batch that holds its end; the next batch
    re-validates a window that starts inside the dropout, and widens it to the reading before,
    so the estimate stays whole (not cut where the window's context ends)."""
    p = state.pipeline
    device_id, customer_id = first_devices(state.device_customers, 2)[1]
    zone = ZoneInfo(p.device_zones().get(device_id, "Europe/Berlin"))
    day = FIRST_DAY - timedelta(days=4)
    midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
    readings = generate_local_days([(device_id, customer_id, str(zone))], [day], seed=15)

    # The dropout is 08:15 to 14:00 local; the first batch ends at 15:00, the next one fills hours
    # 15 and 16, whose window (2 h before the reading before them) starts at 13:00.
    dropout = [(k, t) for k, t in readings if 8 < local_hours(t, day, zone) <= 14]
    state.send([(k, t) for k, t in readings if local_hours(t, day, zone) <= 15 and (k, t) not in dropout])
    p.catch_up()
    state.send([(k, t) for k, t in readings if 15 < local_hours(t, day, zone) <= 17])
    p.catch_up()
    gap = p.query(
        f"select interval_end_at, is_estimated from iceberg.{p.marts}.device_intervals "
        f"where device_id = '{device_id}' and reading_date = date '{day}' and reading_count = 0 "
        f"and interval_end_at <= from_iso8601_timestamp('{(midnight + timedelta(hours=14)).isoformat()}')"
    )
    assert len(gap) == len(dropout) and all(is_estimated for _, is_estimated in gap), sorted(gap)
    assert_matches_oracle(state)


def assert_day_restated(p, logged: list[dict], reason: str, customer_id: str, day: date, zone: ZoneInfo,
                        day_total_kwh: tuple[float, float], change_kwh: float) -> None:
    """`logged` restates the customer's day (and its month's bill, if that month had been
    published) for `reason`, with the day's total energy as it was and is, and every restated
    energy changed by `change_kwh`."""
    [total] = [r for r in logged if r["mart_name"] == "customer_usage_summary"]
    month = day.replace(day=1)
    is_month_published = month_published(month, str(zone), total["published_at"],
                                          p.scoped_settings().restatement_grace_minutes)
    assert {(r["mart_name"], r["customer_id"], r["period_date"]) for r in logged} == {
        ("customer_usage_summary", customer_id, day), ("customer_billing_daily", customer_id, day),
        *([("customer_billing_monthly", customer_id, month)] if is_month_published else [])}
    assert {r["change_reason"] for r in logged} == {reason}
    assert (total["measure_name"], total["old_value"], total["new_value"]) == ("total_energy_kwh", *day_total_kwh)
    assert math.isclose(total["new_value"] - total["old_value"], change_kwh, abs_tol=1e-9)
    for mart in ["customer_billing_daily"] + (["customer_billing_monthly"] if is_month_published else []):
        assert math.isclose(restated_change(logged, mart, "energy_kwh"), change_kwh, abs_tol=1e-9), mart


def test_late_readings_for_a_published_day_are_restated_and_today_is_not(state):
    """Readings that arrive after their day was published restate it and its month's bill
    (LATE_DATA, in the restatement log with old and new values); today's numbers change with
    every batch and are not restatements, since the day has not ended."""
    p = state.pipeline
    device_id, customer_id = first_devices(state.device_customers, 3)[2]
    zone = ZoneInfo(p.device_zones().get(device_id, "Europe/Berlin"))
    today = datetime.now(zone).date()
    # Before the module's days, and in a month that has ended.
    past = min(FIRST_DAY - timedelta(days=3), today.replace(day=1) - timedelta(days=1))
    readings = generate_local_days([(device_id, customer_id, str(zone))], [past, today], seed=14)
    now = datetime.now(UTC)

    def past_hours(text: str) -> float:
        # Hours from the past day's local midnight to the end of the interval the reading closes.
        at = message_reading_at(text)
        if (at - timedelta(seconds=1)).astimezone(zone).date() != past:
            return -1
        return local_hours(text, past, zone)

    # The past day's last 6 hours (a gap with no reading after it, so not estimated), and the last
    # 2 hours of today, come later.
    held = [(k, t) for k, t in readings if past_hours(t) > 18]
    today_later = [(k, t) for k, t in readings if now - timedelta(hours=2) < message_reading_at(t) <= now]
    first = [(k, t) for k, t in readings if (k, t) not in held and (k, t) not in today_later and message_reading_at(t) <= now]
    state.send(first)
    p.catch_up()
    logged_before = p.restatement_rows()
    usage = f"select reading_date, total_energy_kwh from iceberg.{p.marts}.customer_usage_summary " \
            f"where customer_id = '{customer_id}'"
    before = dict(p.query(usage))
    state.send(held + today_later)
    p.catch_up()
    after = dict(p.query(usage))
    assert_matches_oracle(state)

    held_kwh = sum(json.loads(t)["metrics"]["energy_kwh"] for _, t in held)
    assert_day_restated(p, p.restatements_since(logged_before), "LATE_DATA", customer_id, past, zone,
                        (before[past], after[past]), held_kwh)
    if today_later and today in before:
        assert after[today] > before[today], "today's numbers changed, and that is no restatement"


def test_a_new_meters_long_gap_follows_its_segments_profile(state):
    """A meter with no history of its own estimates a 6-hour dropout from its segment's profile:
    here one other meter of the segment, a week earlier (the same day type). The estimate keeps
    that meter's shape per local hour and sums to what the newcomer's register counted."""
    p = state.pipeline
    segments = p.device_segments()
    zones = {device_id: ZoneInfo(zone) for device_id, zone in p.device_zones().items()}
    veteran, newcomer = next(
        (a, b) for a, b in combinations(first_devices(state.device_customers, 10)[6:], 2)
        if segments.get(a[0]) is not None and segments.get(a[0]) == segments.get(b[0]))
    veteran_zone, zone = (zones.get(device_id, ZoneInfo("Europe/Berlin")) for device_id, _ in (veteran, newcomer))
    # Long before the module's other days, so no other meter of the segment has a profile here;
    # neither it nor a week before a public holiday, so both have the same day type.
    holidays = load_master_data(p.settings).holidays
    country = calendar.ZONE_COUNTRIES.get(str(zone))
    day = next(day for day in (FIRST_DAY - timedelta(days=40 + n) for n in range(30))
               if not {(country, day), (country, day - timedelta(days=7))} & holidays)
    history = generate_local_days([(*veteran, str(veteran_zone))], [day - timedelta(days=7)], seed=16)
    readings = generate_local_days([(*newcomer, str(zone))], [day], seed=17)
    dropout = [(k, t) for k, t in readings if 8 < local_hours(t, day, zone) <= 14]
    state.send(history)
    p.catch_up()
    state.send([(k, t) for k, t in readings if (k, t) not in dropout])
    p.catch_up()
    assert_matches_oracle(state)

    gap = p.query(
        f"select interval_end_at, estimation_method, energy_kwh from iceberg.{p.marts}.device_intervals "
        f"where device_id = '{newcomer[0]}' and reading_date = date '{day}' and reading_count = 0")
    assert len(gap) == len(dropout) and {method for _, method, _ in gap} == {"REGISTER_SEGMENT_PROFILE"}, gap
    dropout_kwh = sum(json.loads(t)["metrics"]["energy_kwh"] for _, t in dropout)
    assert math.isclose(sum(kwh for *_, kwh in gap), dropout_kwh, abs_tol=1e-9)

    def local_hour(end: datetime, tz: ZoneInfo) -> int:
        return (end - timedelta(seconds=1)).astimezone(tz).hour

    # Each estimate is the veteran's mean energy per reading in the same local hour, times one factor.
    hourly = defaultdict(list)
    for _, text in history:
        hourly[local_hour(message_reading_at(text), veteran_zone)].append(json.loads(text)["metrics"]["energy_kwh"])
    factors = [kwh / fmean(hourly[local_hour(end, zone)]) for end, _, kwh in gap]
    assert max(factors) - min(factors) < 1e-9 * max(factors), factors


def test_a_day_with_only_fault_log_events_is_not_revalidated_for_a_profile_change(state):
    """A change to a meter's hours re-validates its later days that can hold a long gap, since
    their profile estimates read those hours; a later day with fault-log events but no reading
    has no gap to estimate (a backfill lands a week of logs before the readings), so it is not."""
    p = state.pipeline
    # The seed sample has 10 meters; this one's days are before every other day of the module.
    device_id, customer_id = first_devices(state.device_customers, 10)[9]
    zone = ZoneInfo(p.device_zones().get(device_id, "Europe/Berlin"))
    day = FIRST_DAY - timedelta(days=100)
    gap_day, events_day = day + timedelta(days=1), day + timedelta(days=3)
    readings = generate_local_days([(device_id, customer_id, str(zone))], [day, gap_day], seed=18)

    # The first day's 08:15 to 12:00 come later; the next day misses 08:15 to 14:00 for good.
    held = [(k, t) for k, t in readings if 8 < local_hours(t, day, zone) <= 12]
    dropout = [(k, t) for k, t in readings if 8 < local_hours(t, gap_day, zone) <= 14]
    event_at = datetime(events_day.year, events_day.month, events_day.day, 12, tzinfo=zone).astimezone(UTC)
    state.send([(k, t) for k, t in readings if (k, t) not in held + dropout],
               [(device_id, fault_line("ELX", device_id, event_at, "C301"))])
    p.catch_up()
    validated_by = f"select reading_date, max(batch_id), count(*), count_if(reading_count > 0) " \
                   f"from iceberg.{p.marts}.device_intervals where device_id = '{device_id}' " \
                   f"and reading_date in (date '{gap_day}', date '{events_day}') group by 1"
    before = {row[0]: row[1:] for row in p.query(validated_by)}
    assert before[events_day][1] >= 92 and before[events_day][2] == 0, f"a grid with no reading: {before}"
    state.send(held)
    p.catch_up()
    after = {row[0]: row[1:] for row in p.query(validated_by)}
    assert after[gap_day][0] > before[gap_day][0], "the day with a long gap reads the changed hours: re-validated"
    assert after[events_day] == before[events_day], "the day with only an event has no gap to estimate"
    assert_matches_oracle(state)


def test_a_corrected_reading_replaces_the_published_one_and_is_restated(state):
    """A reading sent wrong, then corrected (`"is_correction": true`) after its day was
    published: the correction replaces it (a plain copy sent with it does not), the marts follow,
    and the restatement log has the change as CORRECTION with its old and new values."""
    p = state.pipeline
    device_id, customer_id = first_devices(state.device_customers, 5)[4]
    zone = ZoneInfo(p.device_zones().get(device_id, "Europe/Berlin"))
    # No other test of this module writes this day.
    day = FIRST_DAY - timedelta(days=30)
    readings = generate_local_days([(device_id, customer_id, str(zone))], [day], seed=18)
    key, text = readings[40]
    genuine = json.loads(text)
    wrong = json.loads(text)
    wrong["metrics"]["energy_kwh"] = round(genuine["metrics"]["energy_kwh"] + 0.25, 3)
    state.send([(k, t) for k, t in readings if t != text] + [(key, json.dumps(wrong))])
    p.catch_up()
    logged_before = p.restatement_rows()
    usage = f"select reading_date, total_energy_kwh from iceberg.{p.marts}.customer_usage_summary " \
            f"where customer_id = '{customer_id}' and reading_date = date '{day}'"
    [(_, before_kwh)] = p.query(usage)

    plain_copy = json.loads(text)
    plain_copy["metrics"]["energy_kwh"] = 9.0
    state.send([(key, json.dumps(plain_copy)), (key, json.dumps({**genuine, "is_correction": True}))])
    p.catch_up()
    reading_at = message_reading_at(text)
    stored = p.query(
        f"select energy_kwh, is_correction from iceberg.{p.staging}.stg_telemetry_raw "
        f"where device_id = '{device_id}' and reading_at = from_iso8601_timestamp('{reading_at.isoformat()}')")
    assert stored == [(genuine["metrics"]["energy_kwh"], True)]
    [(_, after_kwh)] = p.query(usage)
    assert math.isclose(after_kwh - before_kwh, -0.25, abs_tol=1e-9), (before_kwh, after_kwh)
    assert_matches_oracle(state)
    assert_day_restated(p, p.restatements_since(logged_before), "CORRECTION", customer_id, day, zone,
                        (before_kwh, after_kwh), -0.25)


def test_zero_runs_across_batches_and_appended_readings(state):
    """A new meter's day opens with 3 h of zeros (judged by the day's maximum: it has no reference
    days), in batches of an hour or two: the first energy flags that whole run. A later zero run
    grows over two batches. Readings that only append energy re-validate from the reading before
    them: no earlier interval is rewritten."""
    p = state.pipeline
    device_id, customer_id = first_devices(state.device_customers, 6)[5]
    zone = ZoneInfo(p.device_zones().get(device_id, "Europe/Berlin"))
    # No other test of this module writes this meter within a week of this day.
    day = FIRST_DAY - timedelta(days=60)
    readings = generate_local_days([(device_id, customer_id, str(zone))], [day], seed=19)

    def zeroed(key: str, text: str) -> tuple[str, str]:
        doc = json.loads(text)
        if local_hours(text, day, zone) <= 3 or 4 < local_hours(text, day, zone) <= 6.25:
            doc["metrics"]["energy_kwh"] = 0.0
        return key, json.dumps(doc)

    readings = [zeroed(k, t) for k, t in readings]
    zero_ends = {message_reading_at(t) for _, t in readings if json.loads(t)["metrics"]["energy_kwh"] == 0}
    flagged = f"select interval_end_at from iceberg.{p.marts}.device_intervals where device_id = '{device_id}' " \
              f"and reading_date = date '{day}' and strpos(coalesce(rule_codes, ''), 'ZERO_RUN') > 0"
    batch_ids = f"select interval_end_at, batch_id from iceberg.{p.marts}.device_intervals " \
                f"where device_id = '{device_id}' and reading_date = date '{day}'"
    for first, last in [(0, 2), (2, 3), (3, 4), (4, 5), (5, 6.25)]:
        state.send([(k, t) for k, t in readings if first < local_hours(t, day, zone) <= last])
        p.catch_up()
        if last == 3:
            assert p.query(flagged) == [], "a day that used no energy yet has no zero run to flag"
    assert {at.astimezone(UTC) for (at,) in p.query(flagged)} == zero_ends

    before = dict(p.query(batch_ids))
    state.send([(k, t) for k, t in readings if local_hours(t, day, zone) > 6.25])
    p.catch_up()
    after = dict(p.query(batch_ids))
    last_zero_at = max(zero_ends)
    assert {at: b for at, b in after.items() if at < last_zero_at} == \
        {at: b for at, b in before.items() if at < last_zero_at}, "appended energy rewrote earlier intervals"
    assert {at.astimezone(UTC) for (at,) in p.query(flagged)} == zero_ends
    assert_matches_oracle(state)


def test_a_backlog_cycle_writes_no_day_with_only_events_ahead_of_its_readings(state):
    """A backfill lands its days of fault logs in its first batch, ahead of the readings. A cycle
    that leaves a backlog writes no VEE grid for such a day: its readings' first batch writes the
    day from its start, and a day that gets no reading is written whole by the cycle that passes it
    (here the last one). A day that came whole is not written again for its (empty) tail."""
    p = state.pipeline
    # No other test of this module writes this meter within 100 days of these days.
    device_id, customer_id = first_devices(state.device_customers, 4)[3]
    zone = ZoneInfo(p.device_zones().get(device_id, "Europe/Berlin"))
    day = FIRST_DAY - timedelta(days=200)
    later_read_day, silent_day = day + timedelta(days=2), day + timedelta(days=3)
    # 3 days of readings on one partition: more than two batches of BOUND.
    readings = generate_local_days([(device_id, customer_id, str(zone))], [day, day + timedelta(days=1), later_read_day],
                                   seed=20)
    events = [(device_id, fault_line("ELX", device_id, datetime(d.year, d.month, d.day, 12, tzinfo=zone).astimezone(UTC),
                                     "C301")) for d in (later_read_day, silent_day)]
    state.send(readings, events)
    grids = f"select reading_date, count(*), count(reading_at) from iceberg.{p.marts}.device_intervals " \
            f"where device_id = '{device_id}' and reading_date >= date '{day}' group by 1"
    p.cycle()
    first_run, *_, taken, behind = p.runs()[-1]
    assert taken and behind > 0, p.runs()[-1]
    written = {row[0]: row[1:] for row in p.query(grids)}
    assert day in written and later_read_day not in written and silent_day not in written, written
    p.catch_up()
    written = {row[0]: row[1:] for row in p.query(grids)}
    assert written[silent_day][0] >= 92 and written[silent_day][1] == 0, written
    assert written[later_read_day][1] == written[later_read_day][0] >= 92, written
    # The first day came whole, to its 24:00 reading, in the first batch: its tail is empty, so
    # no later cycle rewrites any of it.
    rewritten = p.query(f"select count(*) from iceberg.{p.marts}.device_intervals where device_id = '{device_id}' "
                        f"and reading_date = date '{day}' and batch_id != {first_run}")
    assert rewritten == [(0,)], rewritten
    assert_matches_oracle(state)


def test_a_column_the_table_lacks_is_added_without_running_the_model_for_it(state):
    """A run by hand checks each model's columns against its table (LAKEHOUSE_SCHEMA_CHECK). It
    describes the model's query through an empty subquery: describing the query itself ran the
    whole model and fetched every row into dbt (3 M rows took 167 s in the scale bench). Last in
    the module: the re-added column is null in the rows already published."""
    p = state.pipeline
    node = "model.smartmeter.customer_usage_summary"
    p.catch_up()
    [(started_at,)] = p.query("select current_timestamp")
    p.query(f"alter table iceberg.{p.marts}.customer_usage_summary drop column estimated_energy_share")
    p.lakehouse("dbt", "run", "--select", "customer_usage_summary")
    assert p.query(f"select data_type from iceberg.information_schema.columns where table_schema = '{p.marts}' "
                   "and table_name = 'customer_usage_summary' and column_name = 'estimated_energy_share'") == [("double",)]
    # Every statement of this scope's dbt that holds the model's query: the describe, and the MERGE.
    statements = [text for (text,) in p.query(
        "select query from system.runtime.queries "
        f"where created >= from_iso8601_timestamp('{started_at.isoformat()}') "
        f"and starts_with(query, '/* {{\"app\": \"dbt\"') and strpos(query, '\"node_id\": \"{node}\"') > 0 "
        f"and strpos(query, '_{p.suffix}\"') > 0 and strpos(query, 'customer_days as (') > 0")]
    described = [text for text in statements if "__dbt_sbq" in text]
    assert len(described) == 1 and "limit 0" in described[0], statements
    assert all("__dbt_sbq" in text or "merge into" in text for text in statements), statements
