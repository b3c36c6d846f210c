"""Local time: the utility's zone setting, the day convention, day types and public holidays."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import holidays
import pytest
from dotenv import dotenv_values

from smartmeter import calendar
from smartmeter.config import DEFAULT_TIMEZONE, REPO_ROOT, load_settings
from smartmeter.errors import LakehouseError


def test_the_utility_zone_defaults_to_the_one_in_env_example_and_can_be_set(monkeypatch):
    assert dotenv_values(REPO_ROOT / ".env.example")["LAKEHOUSE_TIMEZONE"] == DEFAULT_TIMEZONE
    monkeypatch.setenv("LAKEHOUSE_TIMEZONE", "America/New_York")
    assert load_settings().timezone == "America/New_York"


@pytest.mark.parametrize("name", ["Mars/Olympus", "../etc/passwd", "CEST"])
def test_a_zone_that_is_not_an_iana_name_is_a_clear_error(monkeypatch, name):
    monkeypatch.setenv("LAKEHOUSE_TIMEZONE", name)
    with pytest.raises(LakehouseError, match="LAKEHOUSE_TIMEZONE=.* is not an IANA time zone name"):
        load_settings()


def test_every_mapped_zone_exists_and_its_country_has_holidays():
    supported = holidays.list_supported_countries()
    for zone, country in calendar.ZONE_COUNTRIES.items():
        ZoneInfo(zone)
        assert country is None or country in supported, zone
    with pytest.raises(ValueError, match="add it to ZONE_COUNTRIES"):
        calendar.country_of("Asia/Tokyo")


def test_day_types_put_a_public_holiday_before_the_weekday():
    assert calendar.day_type(date(2025, 12, 18), "DE") == calendar.WEEKDAY
    assert calendar.day_type(date(2025, 12, 20), "DE") == calendar.SATURDAY
    assert calendar.day_type(date(2025, 12, 21), "DE") == calendar.SUNDAY
    assert calendar.day_type(date(2025, 12, 25), "DE") == calendar.HOLIDAY  # a Thursday
    assert calendar.day_type(date(2025, 7, 4), "DE") == calendar.WEEKDAY
    assert calendar.day_type(date(2025, 7, 4), "US") == calendar.HOLIDAY
    assert calendar.day_type(date(2025, 12, 25), None) == calendar.WEEKDAY
    assert calendar.day_type(date(2025, 3, 8), "DE") == calendar.SATURDAY, "nationwide holidays only (not Berlin's)"


def test_holiday_rows_list_each_public_holiday_of_the_years_once_in_date_order():
    rows = calendar.holiday_rows("DE", 2025, 2026)
    assert ("DE", date(2025, 12, 25), "Christmas Day") in rows
    assert ("DE", date(2026, 4, 3), "Good Friday") in rows
    days = [day for _, day, _ in rows]
    assert days == sorted(set(days))
    assert {day.year for day in days} == {2025, 2026}
    assert len(rows) == 18
    assert all(calendar.day_type(day, "DE") == calendar.HOLIDAY for day in days)


@pytest.mark.parametrize(("day", "hours"), [(date(2025, 3, 30), 23), (date(2025, 10, 26), 25), (date(2025, 12, 1), 24)])
def test_local_days_last_23_24_or_25_hours(day, hours):
    start_at, end_at = calendar.local_days_window("Europe/Berlin", day, 1)
    assert end_at - start_at == hours * 3600
    assert datetime.fromtimestamp(start_at, ZoneInfo("Europe/Berlin")).replace(tzinfo=None) == datetime(day.year, day.month, day.day)


def test_a_reading_belongs_to_the_local_day_and_hour_that_hold_the_second_before_it():
    zone = "Europe/Berlin"
    midnight_at, _ = calendar.local_days_window(zone, date(2025, 12, 2), 1)
    assert calendar.reading_local_time(midnight_at, zone).date() == date(2025, 12, 1), "00:00 closes the day before"
    assert calendar.reading_local_time(midnight_at + 900, zone).date() == date(2025, 12, 2)
    assert calendar.reading_local_time(midnight_at + 3600, zone).hour == 0
    assert calendar.reading_local_time(midnight_at + 3601, zone).hour == 1
