"""Realism against an external reference: a simulated year next to the BDEW standard load profiles.

A year of 300 meters in Berlin is generated straight from the fleet (no encoding). Each segment's
mean energy per local hour, by day type, is compared with demandlib's H25 (households) and G25
(business) for the same year and German holidays, both normalised to a mean of 1 over the day.
"""

from __future__ import annotations

import statistics
import warnings
from collections import defaultdict
from datetime import date, timedelta

import pytest

from smartmeter import calendar
from smartmeter.simulator.fleet import BackfillWindow, Fleet
from smartmeter.simulator.model import SEGMENTS, Device
from smartmeter.simulator.profiles import SEASONS, season_of
from tests.unit.test_simulator_support import ZONE

YEAR = 2025
COUNTRY = calendar.country_of(ZONE)
HOUSEHOLD_CUSTOMERS_WITH_TWO_METERS = 30


def _devices() -> list[Device]:
    """130 households (30 of them with two meters), 100 businesses and 40 small industries."""
    devices = []
    for number in range(130):
        meters = 2 if number < HOUSEHOLD_CUSTOMERS_WITH_TWO_METERS else 1
        for _ in range(meters):
            devices.append(Device(f"MTR-{30000 + len(devices)}", f"CUST-{9000 + number}", "residential", "LG-E450",
                                  "ELX-4.2.1", date(2020, 1, 1), customer_meter_count=meters))
    for segment, count in (("commercial", 100), ("small_industrial", 40)):
        for _ in range(count):
            devices.append(Device(f"MTR-{30000 + len(devices)}", f"CUST-{9500 + len(devices)}", segment, "LG-E450",
                                  "ELX-4.2.1", date(2020, 1, 1)))
    return devices


def _simulate_year():
    """Energy per (segment, season, day type, local hour) with its reading count, and each meter's annual Wh."""
    devices = _devices()
    window = BackfillWindow.local_days([ZONE], date(YEAR, 1, 1), 365)
    fleet = Fleet(devices, seed=7, interval_minutes=15, start_at=window.start_at, timezone=ZONE,
                  background_events=False, window=window)
    register_at_start = list(fleet.register_wh)
    segment_ranges = []
    for segment in SEGMENTS:
        numbers = [n for n, device in enumerate(devices) if device.segment == segment]
        segment_ranges.append((segment, numbers[0], numbers[-1] + 1))
    energy_wh = defaultdict(int)
    readings = defaultdict(int)
    kinds = {}
    for reading_at in range(window.start_at + 900, window.end_at + 1, 900):
        rows = fleet.step(reading_at).rows
        local = calendar.reading_local_time(reading_at, ZONE)
        day = local.date()
        if day not in kinds:
            kinds[day] = (season_of(day), calendar.day_type(day, COUNTRY))
        for segment, first, end in segment_ranges:
            key = (segment, *kinds[day], local.hour)
            energy_wh[key] += sum(row[3] for row in rows[first:end])
            readings[key] += end - first
    annual_wh = [after - before for before, after in zip(register_at_start, fleet.register_wh, strict=True)]
    return devices, energy_wh, readings, annual_wh


DEVICES, ENERGY_WH, READINGS, ANNUAL_WH = _simulate_year()


def _normalised(hourly: list[float]) -> list[float]:
    mean = sum(hourly) / len(hourly)
    return [value / mean for value in hourly]


def _simulated_shape(segment: str, day_type: str, seasons=SEASONS) -> list[float]:
    hourly = []
    for hour in range(24):
        keys = [(segment, season, day_type, hour) for season in seasons]
        hourly.append(sum(ENERGY_WH[key] for key in keys) / sum(READINGS[key] for key in keys))
    return _normalised(hourly)


@pytest.fixture(scope="module")
def reference_shapes() -> dict[tuple[str, str], list[float]]:
    """(BDEW profile, day type) -> normalised mean power per local hour, from demandlib."""
    import pandas as pd
    from demandlib import bdew

    index = pd.date_range(f"{YEAR}-01-01", periods=365 * 96, freq="15min")
    holidays = [day for _, day, _ in calendar.holiday_rows(COUNTRY, YEAR, YEAR)]
    shapes = {}
    for name, profile in (("H25", bdew.H25), ("G25", bdew.G25)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # demandlib 0.2.2 on pandas 3
            values = profile(index, holidays=holidays).to_numpy()
        sums, counts = defaultdict(float), defaultdict(int)
        for number, value in enumerate(values):
            day = date(YEAR, 1, 1) + timedelta(days=number // 96)
            key = (calendar.day_type(day, COUNTRY), number % 96 // 4)
            sums[key] += value
            counts[key] += 1
        for day_type in calendar.DAY_TYPES:
            shapes[(name, day_type)] = _normalised([sums[(day_type, hour)] / counts[(day_type, hour)] for hour in range(24)])
    return shapes


@pytest.mark.parametrize(("segment", "profile", "minimum"), [("residential", "H25", 0.95), ("commercial", "G25", 0.9)])
@pytest.mark.parametrize("day_type", calendar.DAY_TYPES)
def test_each_day_type_correlates_with_the_standard_load_profile(reference_shapes, segment, profile, day_type, minimum):
    correlation = statistics.correlation(_simulated_shape(segment, day_type), reference_shapes[(profile, day_type)])
    print(f"{segment} {day_type}: r = {correlation:.4f} against {profile}")
    assert correlation >= minimum


def test_annual_household_energy_has_a_median_of_2500_to_4500_kwh_split_across_its_meters():
    per_customer = defaultdict(int)
    for device, wh in zip(DEVICES, ANNUAL_WH, strict=True):
        if device.segment == "residential":
            per_customer[device.customer_id] += wh
    median_kwh = statistics.median(per_customer.values()) / 1000
    print(f"annual household energy: median {median_kwh:,.0f} kWh over {len(per_customer)} households")
    assert 2_500 <= median_kwh <= 4_500
    two_meters = {device.customer_id for device in DEVICES if device.customer_meter_count == 2}
    median_two_meters_kwh = statistics.median(wh for customer, wh in per_customer.items() if customer in two_meters) / 1000
    assert 2_000 <= median_two_meters_kwh <= 5_500, "a household's energy is split across its meters, not doubled"


def test_households_have_a_flatter_evening_peak_and_weekends_differ_from_weekdays():
    weekday = _simulated_shape("residential", calendar.WEEKDAY)
    assert 1.3 <= max(weekday) <= 1.8, "peak / mean of the BDEW household day"
    assert weekday.index(max(weekday)) in (18, 19, 20)
    assert min(weekday[10:15]) > 0.8, "midday load"
    sunday = _simulated_shape("residential", calendar.SUNDAY)
    assert sunday.index(max(sunday)) in (11, 12), "Sunday lunch"


def test_household_winter_and_summer_differ_in_level_and_shape():
    def mean_wh(season: str) -> float:
        keys = [("residential", season, calendar.WEEKDAY, hour) for hour in range(24)]
        return sum(ENERGY_WH[key] for key in keys) / sum(READINGS[key] for key in keys)

    assert mean_wh("WINTER") > 1.2 * mean_wh("SUMMER")
    winter = _simulated_shape("residential", calendar.WEEKDAY, ["WINTER"])
    summer = _simulated_shape("residential", calendar.WEEKDAY, ["SUMMER"])
    assert statistics.correlation(winter, summer) < 0.99
    assert winter[17] > summer[17] + 0.15, "dark winter afternoons"


def test_two_shift_industry_runs_06_to_22_on_weekdays_and_one_shift_on_saturdays():
    weekday = _simulated_shape("small_industrial", calendar.WEEKDAY)
    assert min(weekday[6:22]) > 3 * max(weekday[0:5])
    saturday = _simulated_shape("small_industrial", calendar.SATURDAY)
    assert min(saturday[6:14]) > 2.5 * max(saturday[15:24])
    sunday = _simulated_shape("small_industrial", calendar.SUNDAY)
    assert max(sunday) < 1.3, "base load only"
