"""The simulator on local time: whole local days, DST days, holidays and customers in a second zone."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import date

import pytest

from smartmeter import calendar
from smartmeter.config import REPO_ROOT
from smartmeter.simulator import masterdata, profiles
from smartmeter.simulator.fleet import BackfillWindow, Fleet, fleet_zones
from smartmeter.simulator.profiles import ZoneProfiles
from tests.unit.test_simulator_support import (
    TELEMETRY,
    ZONE,
    backfill,
    local_midnight,
    parse_time,
    segment_devices,
)

NEW_YORK = "America/New_York"


def _readings(run) -> list[dict]:
    return [json.loads(value) for _, value in run.producer.on(TELEMETRY)]


def _local_days(documents, zone: str = ZONE) -> Counter:
    """(device, local day) -> readings, by the day convention."""
    return Counter((d["device_id"], calendar.reading_local_time(parse_time(d["timestamp"]), zone).date()) for d in documents)


def _hourly_shape(documents, zone: str, *, local: bool = True) -> list[float]:
    """Normalised mean energy per hour of the day, local to `zone` (or UTC)."""
    sums, counts = defaultdict(float), defaultdict(int)
    for document in documents:
        reading_at = parse_time(document["timestamp"])
        hour = calendar.reading_local_time(reading_at, zone).hour if local else (reading_at - 1) // 3600 % 24
        sums[hour] += document["metrics"]["energy_kwh"]
        counts[hour] += 1
    hourly = [sums[hour] / counts[hour] for hour in range(24)]
    return [value / statistics.mean(hourly) for value in hourly]


def test_a_backfill_covers_whole_local_days_with_nothing_on_the_day_before():
    devices = segment_devices(3)
    documents = _readings(backfill(devices, days=2, start_day=date(2025, 12, 1), background_events=False))
    first_at = min(parse_time(d["timestamp"]) for d in documents)
    last_at = max(parse_time(d["timestamp"]) for d in documents)
    assert first_at == local_midnight(date(2025, 12, 1)) + 900, "00:15 local closes the first interval"
    assert last_at == local_midnight(date(2025, 12, 3)), "24:00 local closes the last day"
    days = _local_days(documents)
    assert {day for _, day in days} == {date(2025, 12, 1), date(2025, 12, 2)}
    assert set(days.values()) == {96}


@pytest.mark.parametrize(("day", "readings", "hours"), [(date(2025, 3, 30), 92, 23), (date(2025, 10, 26), 100, 25)])
def test_dst_days_have_92_or_100_readings_per_meter_all_on_their_local_day(day, readings, hours):
    devices = segment_devices(2)
    documents = _readings(backfill(devices, days=1, start_day=day, background_events=False))
    assert _local_days(documents) == Counter({(device.device_id, day): readings for device in devices})
    utc_hours = {(parse_time(d["timestamp"]) - 1) // 3600 for d in documents}
    assert len(utc_hours) == hours
    local_hours = Counter(calendar.reading_local_time(parse_time(d["timestamp"]), ZONE).hour for d in documents)
    if readings == 92:
        assert 2 not in local_hours, "02:00-03:00 does not exist on the spring-forward day"
    else:
        assert local_hours[2] == 2 * local_hours[1], "02:00-03:00 comes twice on the fall-back day"


def test_a_backfill_across_both_dst_changes_keeps_the_count_per_local_day():
    devices = segment_devices(1)
    documents = _readings(backfill(devices, days=3, start_day=date(2025, 3, 29), background_events=False))
    per_day = Counter(day for (_, day), count in _local_days(documents).items() for _ in range(count))
    assert per_day == Counter({date(2025, 3, 29): 3 * 96, date(2025, 3, 30): 3 * 92, date(2025, 3, 31): 3 * 96})


def test_the_fall_back_hour_uses_the_profile_of_02_00_twice():
    zone = ZoneProfiles(ZONE)
    first_at = local_midnight(date(2025, 10, 26)) + 2 * 3600  # 02:00 CEST
    second_at = first_at + 3600  # 02:00 CET
    assert zone.factors(first_at + 450) == zone.factors(second_at + 450)
    assert zone.local_day(first_at).day == zone.local_day(second_at).day == date(2025, 10, 26)


def test_a_holiday_uses_the_holiday_shape():
    zone = ZoneProfiles(ZONE)
    christmas = zone.local_day(local_midnight(date(2025, 12, 25)) + 43200)  # a Thursday
    thursday = zone.local_day(local_midnight(date(2025, 12, 18)) + 43200)
    sunday = zone.local_day(local_midnight(date(2025, 12, 21)) + 43200)
    assert (christmas.day_type, thursday.day_type, sunday.day_type) == (calendar.HOLIDAY, calendar.WEEKDAY, calendar.SUNDAY)
    assert christmas.factors == sunday.factors != thursday.factors
    # And in the readings: business on Christmas Day looks like a Sunday, not like a Thursday.
    devices = [device for device in segment_devices(40) if device.segment == "commercial"]
    shapes = {}
    for day in (date(2025, 12, 18), date(2025, 12, 21), date(2025, 12, 25)):
        shapes[day] = _hourly_shape(_readings(backfill(devices, start_day=day, background_events=False)), ZONE)
    assert statistics.correlation(shapes[date(2025, 12, 25)], shapes[date(2025, 12, 21)]) > 0.95
    assert statistics.correlation(shapes[date(2025, 12, 25)], shapes[date(2025, 12, 18)]) < 0.8


def test_a_customer_in_a_second_zone_gets_its_own_local_days_shape_and_holidays():
    households = [device for device in segment_devices(80) if device.segment == "residential"]
    devices = [replace(device, timezone=NEW_YORK) if number % 2 else device for number, device in enumerate(households)]
    in_new_york = {device.device_id for device in devices if device.timezone == NEW_YORK}
    # 24-30 November 2025: US Thanksgiving on Thursday the 27th.
    documents = _readings(backfill(devices, days=7, start_day=date(2025, 11, 24), background_events=False))
    new_york = [d for d in documents if d["device_id"] in in_new_york]
    berlin = [d for d in documents if d["device_id"] not in in_new_york]

    assert min(parse_time(d["timestamp"]) for d in new_york) == local_midnight(date(2025, 11, 24), NEW_YORK) + 900
    assert max(parse_time(d["timestamp"]) for d in new_york) == local_midnight(date(2025, 12, 1), NEW_YORK)
    assert set(_local_days(new_york, NEW_YORK).values()) == set(_local_days(berlin, ZONE).values()) == {96}

    def weekdays(group, zone):
        days = {date(2025, 11, 24), date(2025, 11, 25), date(2025, 11, 26), date(2025, 11, 28)}
        return [d for d in group if calendar.reading_local_time(parse_time(d["timestamp"]), zone).date() in days]

    local_new_york = _hourly_shape(weekdays(new_york, NEW_YORK), NEW_YORK)
    local_berlin = _hourly_shape(weekdays(berlin, ZONE), ZONE)
    assert statistics.correlation(local_new_york, local_berlin) > 0.95, "the same shape on each local clock"
    assert local_new_york.index(max(local_new_york)) in (18, 19, 20)
    utc_new_york = _hourly_shape(weekdays(new_york, NEW_YORK), NEW_YORK, local=False)
    utc_berlin = _hourly_shape(weekdays(berlin, ZONE), ZONE, local=False)
    assert statistics.correlation(utc_new_york, utc_berlin) < 0.5, "six hours apart in UTC"

    thanksgiving_at = local_midnight(date(2025, 11, 27), NEW_YORK) + 43200
    assert ZoneProfiles(NEW_YORK).local_day(thanksgiving_at).day_type == calendar.HOLIDAY
    assert ZoneProfiles(ZONE).local_day(thanksgiving_at).day_type == calendar.WEEKDAY


def test_a_household_s_energy_is_split_across_its_meters():
    one = segment_devices(1)[0]
    alone = backfill([one], days=7, background_events=False)
    pair = [replace(one, customer_meter_count=2), replace(one, device_id="MTR-29999", customer_meter_count=2)]
    split = backfill(pair, days=7, background_events=False)

    def total(run) -> float:
        return sum(d["metrics"]["energy_kwh"] for d in _readings(run))

    assert total(split) == pytest.approx(total(alone), rel=0.05)


def test_reference_profiles_are_whole_days_with_a_yearly_mean_of_one():
    shapes = profiles.reference_shapes()
    assert {profile for profile, _, _ in shapes} == set(profiles.PROFILE_OF_SEGMENT.values())
    assert len(shapes) == 3 * len(profiles.SEASONS) * 3
    assert all(len(values) == 96 and min(values) > 0 for values in shapes.values())
    for season_day, expected in ((date(2025, 3, 20), "WINTER"), (date(2025, 3, 21), "TRANSITION"),
                                 (date(2025, 5, 15), "SUMMER"), (date(2025, 9, 15), "TRANSITION"),
                                 (date(2025, 11, 1), "WINTER")):
        assert profiles.season_of(season_day) == expected


def test_the_reference_table_is_what_the_tool_generates():
    result = subprocess.run([sys.executable, "tools/make_reference_profiles.py", "--check"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_provisioning_leaves_customers_in_the_utility_zone_unless_given_a_second_zone():
    customers, devices = masterdata.synthetic_fleet(2000, 4000)
    assert {customer.timezone for customer in customers} == {None}
    assert {device.timezone for device in devices} == {None}
    customers, devices = masterdata.synthetic_fleet(2000, 4000, second_zone=NEW_YORK)
    share = sum(customer.timezone == NEW_YORK for customer in customers) / len(customers)
    assert abs(share - masterdata.SECOND_ZONE_SHARE) < 0.015
    zone_of = {customer.customer_id: customer.timezone for customer in customers}
    assert all(device.timezone == zone_of[device.customer_id] for device in devices)
    smaller, _ = masterdata.synthetic_fleet(500, 1000, second_zone=NEW_YORK)
    assert all(customer.timezone == zone_of[customer.customer_id] for customer in smaller), "stable as the fleet grows"
    others, _ = masterdata.synthetic_fleet(500, 1000)
    assert [(c.customer_name, c.segment, c.region, c.tariff_id) for c in smaller] == [
        (c.customer_name, c.segment, c.region, c.tariff_id) for c in others], "a zone changes nothing else"


def test_devices_carry_their_customer_s_count_of_active_meters():
    _, devices = masterdata.synthetic_fleet(100, 300)
    active = Counter(device.customer_id for device in devices if device.is_active)
    assert all(device.customer_meter_count == max(1, active[device.customer_id]) for device in devices)
    assert {device.customer_meter_count for device in devices} >= {2, 3}


def test_null_zones_are_copied_as_sql_null():
    class Cursor:
        def copy_expert(self, sql, buffer):
            self.sql, self.text = sql, buffer.read()

    cursor = Cursor()
    masterdata._copy_rows(cursor, "new_customers", ("customer_id", "timezone"), [("CUST-1", None), ("CUST-2", NEW_YORK)])
    assert cursor.text == "CUST-1\t\\N\nCUST-2\tAmerica/New_York\n"


def test_meters_in_a_second_zone_log_nothing_outside_their_own_days():
    devices = [replace(device, timezone=NEW_YORK) if number % 2 else device
               for number, device in enumerate(segment_devices(70))]
    window = BackfillWindow.local_days(fleet_zones(devices, ZONE), date(2025, 12, 1), 3)
    fleet = Fleet(devices, seed=3, interval_minutes=15, start_at=window.start_at, timezone=ZONE, window=window)
    events = []
    for reading_at in range(window.start_at + 900, window.end_at + 1, 900):
        events += fleet.step(reading_at).events
    zone_of = {device.device_id: device.timezone or ZONE for device in devices}
    assert {zone_of[event.device_id] for event in events} == {ZONE, NEW_YORK}
    for event in events:
        start_at, end_at = window.zone_windows[zone_of[event.device_id]]
        assert start_at < event.event_at <= end_at
