"""Realism: daily energy by segment, daily and weekly shape, seasons, voltage and battery."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from datetime import date

from tests.unit.test_simulator_support import TELEMETRY, backfill, parse_time, segment_devices

DEVICES = segment_devices(60)
SEGMENT_OF = {device.device_id: device.segment for device in DEVICES}


def _daily_kwh(run) -> dict[str, dict[tuple[str, str], float]]:
    """segment -> (device, day) -> kWh, summed from the messages."""
    totals: dict[str, dict[tuple[str, str], float]] = defaultdict(lambda: defaultdict(float))
    for _, value in run.producer.on(TELEMETRY):
        document = json.loads(value)
        segment = SEGMENT_OF[document["device_id"]]
        totals[segment][(document["device_id"], document["timestamp"][:10])] += document["metrics"]["energy_kwh"]
    return totals


def _hourly_mean(run, segment: str) -> dict[int, float]:
    sums, counts = defaultdict(float), defaultdict(int)
    for _, value in run.producer.on(TELEMETRY):
        document = json.loads(value)
        if SEGMENT_OF[document["device_id"]] == segment:
            hour = (parse_time(document["timestamp"]) - 1) // 3600 % 24
            sums[hour] += document["metrics"]["energy_kwh"]
            counts[hour] += 1
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


def test_household_day_has_morning_and_evening_peaks_and_commercial_business_hours():
    household = _hourly_mean(WEEK, "residential")
    night = statistics.mean(household[hour] for hour in (1, 2, 3))
    assert statistics.mean(household[hour] for hour in (7, 8)) > 1.8 * night
    assert statistics.mean(household[hour] for hour in (18, 19, 20)) > 2.5 * night
    commercial = _hourly_mean(WEEK, "commercial")
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
