"""Realism over a week: daily energy by segment, daily and weekly shape in local time, seasons,
voltage and battery. (A year against the BDEW profiles is in test_simulator_realism.py.)"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from datetime import date

from smartmeter.calendar import reading_local_time
from tests.unit.test_simulator_support import TELEMETRY, ZONE, backfill, parse_time, segment_devices

DEVICES = segment_devices(60)
SEGMENT_OF = {device.device_id: device.segment for device in DEVICES}


def _local_time(document: dict):
    return reading_local_time(parse_time(document["timestamp"]), ZONE)


def _daily_kwh(run) -> dict[str, dict[tuple[str, str], float]]:
    """segment -> (device, local day) -> kWh, summed from the messages."""
    totals: dict[str, dict[tuple[str, str], float]] = defaultdict(lambda: defaultdict(float))
    for _, value in run.producer.on(TELEMETRY):
        document = json.loads(value)
        segment = SEGMENT_OF[document["device_id"]]
        day = _local_time(document).date().isoformat()
        totals[segment][(document["device_id"], day)] += document["metrics"]["energy_kwh"]
    return totals


def _weekday_hourly_mean(run, segment: str) -> dict[int, float]:
    """Mean reading energy per local hour, Monday to Friday."""
    sums, counts = defaultdict(float), defaultdict(int)
    for _, value in run.producer.on(TELEMETRY):
        document = json.loads(value)
        local = _local_time(document)
        if SEGMENT_OF[document["device_id"]] == segment and local.weekday() < 5:
            sums[local.hour] += document["metrics"]["energy_kwh"]
            counts[local.hour] += 1
    return {hour: sums[hour] / counts[hour] for hour in sums}


WEEK = backfill(DEVICES, seed=11, days=7, background_events=False)  # 2025-12-01 is a Monday
DAILY = _daily_kwh(WEEK)


def _values(segment: str, weekend: bool) -> list[float]:
    return [kwh for (_, day), kwh in DAILY[segment].items()
            if (date.fromisoformat(day).weekday() >= 5) == weekend]


def test_households_use_5_to_15_kwh_a_day():
    weekday = _values("residential", weekend=False)
    assert 5 <= statistics.median(weekday) <= 15
    within = sum(1 for kwh in weekday if 3 <= kwh <= 25) / len(weekday)
    assert within >= 0.9


def test_businesses_use_far_more_and_less_at_weekends():
    household = statistics.median(_values("residential", weekend=False))
    for segment, low, high in (("commercial", 30, 400), ("small_industrial", 250, 3000)):
        weekday = statistics.median(_values(segment, weekend=False))
        weekend = statistics.median(_values(segment, weekend=True))
        assert low <= weekday <= high
        assert weekday > 5 * household
        assert weekend < 0.75 * weekday
    assert statistics.median(_values("residential", weekend=True)) >= household


def test_household_day_has_morning_and_evening_peaks_and_commercial_business_hours_in_local_time():
    household = _weekday_hourly_mean(WEEK, "residential")
    night = statistics.mean(household[hour] for hour in (1, 2, 3))
    assert statistics.mean(household[hour] for hour in (7, 8)) > 1.3 * night
    assert statistics.mean(household[hour] for hour in (18, 19, 20)) > 2 * night
    assert max(household, key=household.get) in (18, 19, 20)
    commercial = _weekday_hourly_mean(WEEK, "commercial")
    assert statistics.mean(commercial[hour] for hour in range(9, 17)) > 2.5 * statistics.mean(
        commercial[hour] for hour in (0, 1, 2, 3, 22, 23))


def test_winter_uses_more_than_summer():
    summer = _daily_kwh(backfill(DEVICES, seed=11, days=7, start_day=date(2025, 7, 7), background_events=False))
    winter_median = statistics.median(DAILY["residential"].values())
    assert winter_median > 1.15 * statistics.median(summer["residential"].values())


def test_voltage_sits_near_230_within_en50160_with_rare_excursions_and_status_follows():
    voltages = []
    for _, value in WEEK.producer.on(TELEMETRY):
        document = json.loads(value)
        voltage = document["metrics"]["voltage"]
        voltages.append(voltage)
        expected = "OK" if 207 <= voltage <= 253 else ("WARNING" if 195.5 <= voltage <= 264.5 else "ERROR")
        assert document["status"] == expected
    assert 227 <= statistics.mean(voltages) <= 233
    outside = sum(1 for voltage in voltages if not 207 <= voltage <= 253) / len(voltages)
    assert 0 < outside < 0.01


def test_battery_drains_slowly_and_never_rises_without_a_replacement():
    last: dict[str, int] = {}
    for _, value in WEEK.producer.on(TELEMETRY):
        document = json.loads(value)
        battery = document["metrics"]["battery_pct"]
        assert 25 <= battery <= 100
        previous = last.get(document["device_id"])
        if previous is not None:
            assert previous - 1 <= battery <= previous
        last[document["device_id"]] = battery
