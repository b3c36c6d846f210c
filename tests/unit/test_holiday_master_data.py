"""Public holidays and tariff day types as master data: the SQL that seeds them, the DDL, the sample."""

from __future__ import annotations

import re
from datetime import date

import pytest

from smartmeter import calendar
from smartmeter.config import REPO_ROOT
from smartmeter.simulator import masterdata

MASTER_DATA_SQL = (REPO_ROOT / "postgres-init" / "01-master-data.sql").read_text()
SAMPLE_SQL = (REPO_ROOT / "postgres-init" / "02-seed-sample.sql").read_text()
DAY_TYPES = {"WEEKDAY", "WEEKEND", "SATURDAY", "SUNDAY", "HOLIDAY"}


def _holiday_values(sql: str) -> list[tuple[str, str, str]]:
    return re.findall(r"\('([A-Z]{2})', DATE '([0-9-]{10})', '((?:[^']|'')*)'\)", sql)


def test_calendar_sql_writes_each_holiday_of_the_zones_countries_once():
    sql, written = masterdata.calendar_sql(["Europe/Berlin", "America/New_York", "America/Chicago", "UTC"], 2025, 2026)
    values = _holiday_values(sql)
    expected = calendar.holiday_rows("DE", 2025, 2026) + calendar.holiday_rows("US", 2025, 2026)
    assert written == len(values) == len(expected)
    assert {(c, date.fromisoformat(d), n.replace("''", "'")) for c, d, n in values} == set(expected)
    assert ("US", date(2026, 11, 26), "Thanksgiving Day") in expected
    # "New Year's Day": a quote inside a name stays one literal.
    assert "'New Year''s Day'" in sql
    assert "ON CONFLICT (country_code, holiday_date) DO UPDATE" in sql


def test_calendar_sql_maps_every_supported_zone_to_its_country():
    sql, written = masterdata.calendar_sql(["UTC"], 2026, 2026)
    assert written == 0 and "public_holidays" not in sql
    mapped = dict(re.findall(r"\('([A-Za-z_/]+)', (?:'([A-Z]{2})'|NULL)\)", sql))
    assert mapped == {zone: country or "" for zone, country in calendar.ZONE_COUNTRIES.items()}


def test_calendar_sql_rejects_a_zone_without_a_holiday_country():
    with pytest.raises(ValueError, match="Asia/Tokyo"):
        masterdata.calendar_sql(["Europe/Berlin", "Asia/Tokyo"], 2026, 2026)


def test_holiday_years_reach_a_day_past_each_end_of_the_window():
    assert masterdata.holiday_years(date(2026, 3, 1), date(2026, 3, 31)) == (2026, 2026)
    assert masterdata.holiday_years(date(2026, 1, 1), date(2026, 12, 31)) == (2025, 2027)
    assert masterdata.default_holiday_years(date(2026, 11, 28)) == (2024, 2027)


def test_tariff_day_types_allow_saturday_sunday_and_holiday():
    check = re.search(r"CONSTRAINT tariff_periods_day_type_check\s+CHECK \(day_type IN \(([^)]*)\)\)", MASTER_DATA_SQL)
    assert check and set(re.findall(r"'(\w+)'", check.group(1))) == DAY_TYPES
    # Applying the file again replaces the old two-value check of existing databases.
    assert "DROP CONSTRAINT IF EXISTS tariff_periods_day_type_check" in MASTER_DATA_SQL


def test_every_sample_tariff_prices_every_local_hour_of_every_day_once():
    periods: dict[tuple[str, str], list[range]] = {}
    for tariff, day_type, start, end in re.findall(r"\('([A-Z-]+)', '(\w+)', (\d+), (\d+), '\w+', [\d.]+\)", SAMPLE_SQL):
        assert day_type in DAY_TYPES
        periods.setdefault((tariff, day_type), []).append(range(int(start), int(end)))
    tariffs = {tariff for tariff, _ in periods}
    assert tariffs == {"TOU-RES", "FLAT-RES", "TOU-BUS"}
    for (tariff, day_type), hours in periods.items():
        assert sorted(h for r in hours for h in r) == list(range(24)), (tariff, day_type)
    for tariff in tariffs:
        # Fallbacks end at WEEKDAY and WEEKEND, so every calendar day finds periods.
        assert {(tariff, "WEEKDAY"), (tariff, "WEEKEND")} <= set(periods), tariff
    assert (("TOU-RES", "HOLIDAY") in periods) and (("TOU-BUS", "SATURDAY") in periods)
