"""Local time against the native stack: DST days, a customer in a second zone, public holidays.

An isolated pipeline (own Iceberg schemas, the *_test topics) loads clean readings for whole
local days: the Saturday before the clocks go forward, the spring-forward day, the fall-back day
and a public holiday, in LAKEHOUSE_TIMEZONE for the seed sample's meters and in America/New_York
for a test customer that lives there. The marts are compared row by row with the oracle of
tests/helpers/pipeline.py (zoneinfo, the `holidays` package, tariffs read from PostgreSQL).

The simulator's part (it seeds the holidays it needs) runs against a database of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg2
import pytest

from smartmeter import calendar
from smartmeter.config import REPO_ROOT
from smartmeter.native.services import Postgres
from smartmeter.pipeline.topics import recreate_topics
from smartmeter.simulator import masterdata
from tests.helpers.pipeline import (
    FAULT_LOG_TEST_TOPIC,
    TELEMETRY_TEST_TOPIC,
    IsolatedPipeline,
    State,
    assert_matches_oracle,
    first_devices,
    generate_local_days,
    produce,
)

pytestmark = pytest.mark.integration

SECOND_ZONE = "America/New_York"
# A customer of its own in the second zone; ids far above what provisioning makes (100k meters included).
NY_CUSTOMER, NY_DEVICE = "CUST-9900001", "MTR-9900001"
YEAR = 2025  # a past year: readings more than a day ahead are rejected


def clock_changes(zone: str, year: int) -> tuple[date, date]:
    """The local days on which `zone` springs forward and falls back in `year`."""
    tz = ZoneInfo(zone)
    day, changes = date(year, 1, 1), []
    while day.year == year:
        start = datetime(day.year, day.month, day.day, tzinfo=tz)
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tz)
        hours = (end.timestamp() - start.timestamp()) / 3600
        if hours != 24:
            changes.append((hours, day))
        day += timedelta(days=1)
    spring = [d for h, d in changes if h == 23]
    fall = [d for h, d in changes if h == 25]
    assert len(spring) == len(fall) == 1, f"{zone} must change its clocks twice in {year} for this test: {changes}"
    return spring[0], fall[0]


def repeated_hour(zone: str, day: date) -> int:
    """The local hour that happens twice when `zone` falls back on `day`."""
    tz = ZoneInfo(zone)
    return next(h for h in range(24) if datetime(day.year, day.month, day.day, h, tzinfo=tz).utcoffset()
                != datetime(day.year, day.month, day.day, h, fold=1, tzinfo=tz).utcoffset())


def days_to_test(zone: str) -> dict[str, date]:
    spring, fall = clock_changes(zone, YEAR)
    country = calendar.country_of(zone)
    assert country, f"{zone} needs a holiday country for this test"
    holiday = next(day for _, day, _ in calendar.holiday_rows(country, YEAR, YEAR) if day > fall and day.weekday() < 5)
    saturday = spring - timedelta(days=(spring.weekday() - 5) % 7 or 7)
    return {"saturday": saturday, "spring": spring, "fall": fall, "holiday": holiday}


@pytest.fixture(scope="module")
def state(settings):
    s = State()
    s.pipeline = IsolatedPipeline(settings)
    s.zones = {"utility": settings.timezone, "second": SECOND_ZONE}
    s.days = {name: days_to_test(zone) for name, zone in s.zones.items()}
    connection = psycopg2.connect(**settings.postgres_connect_kwargs(role="admin"))
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("INSERT INTO customers (customer_id, customer_name, segment, region, tariff_id, timezone) "
                           "VALUES (%s, 'Hudson Household', 'residential', 'EAST', 'TOU-RES', %s) "
                           "ON CONFLICT (customer_id) DO NOTHING", (NY_CUSTOMER, SECOND_ZONE))
            cursor.execute("INSERT INTO devices (device_id, customer_id, device_model, firmware_version, install_date) "
                           "VALUES (%s, %s, 'LG-E450', 'ELX-4.2.1', DATE '2024-01-01') "
                           "ON CONFLICT (device_id) DO NOTHING", (NY_DEVICE, NY_CUSTOMER))
        # What the simulator does before a backfill: the holidays of every zone in use.
        masterdata.seed_calendar(connection, masterdata.zones_in_use(connection, settings.timezone), YEAR, YEAR)
        s.device_customers = dict(s.pipeline.query("select device_id, customer_id from postgresql.public.devices"))
        local_devices = [(d, c, settings.timezone) for d, c in first_devices(s.device_customers, 10)]
        recreate_topics(settings, [TELEMETRY_TEST_TOPIC, FAULT_LOG_TEST_TOPIC])
        readings = (generate_local_days(local_devices, sorted(s.days["utility"].values()), seed=11)
                    + generate_local_days([(NY_DEVICE, NY_CUSTOMER, SECOND_ZONE)], sorted(s.days["second"].values()), seed=12))
        s.telemetry = produce(settings, TELEMETRY_TEST_TOPIC, readings)
        s.fault_logs, s.held_back = [], []
        s.pipeline.wait_for_topic_count(TELEMETRY_TEST_TOPIC, len(s.telemetry))
        s.pipeline.catch_up()
        s.expected = assert_matches_oracle(s)
    except BaseException:
        s.pipeline.drop_schemas()
        _remove_test_customer(connection)
        connection.close()
        raise
    yield s
    s.pipeline.drop_schemas()
    _remove_test_customer(connection)
    connection.close()


def _remove_test_customer(connection) -> None:
    with connection, connection.cursor() as cursor:
        cursor.execute("DELETE FROM devices WHERE device_id = %s", (NY_DEVICE,))
        cursor.execute("DELETE FROM customers WHERE customer_id = %s", (NY_CUSTOMER,))


def hour_rows(expected, customer_id: str, day: date) -> list[tuple]:
    """(local hour, energy) of one customer-day in the oracle, in time order."""
    return [(v[1], v[3]) for (c, at), v in sorted(expected.customer_hours.items()) if c == customer_id and v[0] == day]


def test_marts_equal_the_local_time_oracle(state):
    # The fixture compared every hourly and billing row; here, that they cover what was sent.
    customers = {customer for customer, _ in state.expected.customer_hours}
    assert NY_CUSTOMER in customers and "CUST-8000" in customers
    assert {day for _, day, _ in state.expected.bills} == set(state.days["utility"].values()) | set(state.days["second"].values())


def test_dst_days_have_23_and_25_hourly_rows_that_add_up_to_the_day(state):
    p, expected = state.pipeline, state.expected
    for zone_key, customer_id in (("utility", "CUST-8000"), ("second", NY_CUSTOMER)):
        days, zone = state.days[zone_key], state.zones[zone_key]
        for name, hours in (("spring", 23), ("fall", 25), ("saturday", 24)):
            rows = hour_rows(expected, customer_id, days[name])
            assert len(rows) == hours, (customer_id, name, rows)
            local_hours = [hour for hour, _ in rows]
            if name == "spring":
                assert 2 not in local_hours  # 02:00-03:00 does not exist
            if name == "fall":  # the repeated hour (02:00 in Europe, 01:00 in the US), told apart by its UTC start
                assert [h for h in set(local_hours) if local_hours.count(h) == 2] == [repeated_hour(zone, days[name])]
            got = p.query(
                f"select count(*), sum(energy_kwh) from iceberg.{p.marts}.customer_usage_hourly "
                f"where customer_id = '{customer_id}' and usage_date = date '{days[name]}'"
            )[0]
            daily = p.query(
                f"select total_energy_kwh from iceberg.{p.marts}.customer_usage_summary "
                f"where customer_id = '{customer_id}' and reading_date = date '{days[name]}'"
            )[0][0]
            assert got[0] == hours
            assert abs(got[1] - sum(e for _, e in rows)) < 1e-9 and abs(daily - got[1]) < 1e-9


def test_time_of_use_energy_per_period_on_dst_days_is_billed_in_local_hours(state):
    expected = state.expected
    spring, fall = state.days["utility"]["spring"], state.days["utility"]["fall"]
    for day in (spring, fall):  # both Sundays: TOU-RES WEEKEND, off-peak before 07:00 local
        rows = hour_rows(expected, "CUST-8000", day)
        off_peak = sum(e for hour, e in rows if hour < 7)
        bill = expected.bills[("CUST-8000", day, "OFF_PEAK")]
        assert bill[0] == "WEEKEND" and bill[4] == (6 if day == spring else 8)
        assert abs(bill[2] - off_peak) < 1e-9


def test_a_customer_in_a_second_zone_is_billed_in_its_own_local_hours(state):
    p = state.pipeline
    day = state.days["second"]["fall"]
    rows = p.query(
        f"select usage_hour_at, local_hour, timezone from iceberg.{p.marts}.customer_usage_hourly "
        f"where customer_id = '{NY_CUSTOMER}' and usage_date = date '{day}' order by usage_hour_at"
    )
    assert {zone for _, _, zone in rows} == {SECOND_ZONE}
    assert [hour for _, hour, _ in rows] == [0, 1, 1, *range(2, 24)]
    assert [at.astimezone(ZoneInfo(SECOND_ZONE)).hour for at, _, _ in rows] == [hour for _, hour, _ in rows]
    # TOU-RES on a Sunday: 00:00-07:00 New York time is off-peak (8 hours on the fall-back day).
    hours = dict(p.query(
        f"select tou_period, billed_hour_count from iceberg.{p.marts}.customer_billing_daily "
        f"where customer_id = '{NY_CUSTOMER}' and billing_date = date '{day}'"
    ))
    assert hours == {"OFF_PEAK": 8, "SHOULDER": 17}


def test_a_public_holiday_is_priced_as_the_tariff_says(state):
    p = state.pipeline
    customers = dict(p.query("select customer_id, tariff_id from postgresql.public.customers"))
    for zone_key, customer_id in (("utility", "CUST-8000"), ("utility", "CUST-8002"), ("second", NY_CUSTOMER)):
        day = state.days[zone_key]["holiday"]
        rows = p.query(
            "select tou_period, day_type, is_holiday, energy_kwh, energy_cost "
            f"from iceberg.{p.marts}.customer_billing_daily where customer_id = '{customer_id}' and billing_date = date '{day}'"
        )
        assert {r[2] for r in rows} == {True}, (customer_id, day)
        if customers[customer_id] == "TOU-RES":  # its own HOLIDAY periods: off-peak all day at 0.15
            assert [(r[0], r[1]) for r in rows] == [("OFF_PEAK", "HOLIDAY")]
            assert abs(rows[0][4] - rows[0][3] * 0.15) < 1e-9
        else:  # TOU-BUS has no HOLIDAY or SUNDAY periods: a holiday is a WEEKEND day, off-peak at 0.12
            assert customers[customer_id] == "TOU-BUS"
            assert [(r[0], r[1]) for r in rows] == [("OFF_PEAK", "WEEKEND")]
            assert abs(rows[0][4] - rows[0][3] * 0.12) < 1e-9
    saturday = state.days["utility"]["saturday"]
    periods = {r[0]: r[1] for r in p.query(
        f"select tou_period, day_type from iceberg.{p.marts}.customer_billing_daily "
        f"where customer_id = 'CUST-8002' and billing_date = date '{saturday}'"
    )}
    assert periods == {"OFF_PEAK": "SATURDAY", "SHOULDER": "SATURDAY"}



def test_a_day_declared_a_holiday_later_is_billed_again_whole_when_a_late_reading_arrives(state, settings):
    """A weekday billed as OFF_PEAK, SHOULDER and PEAK becomes a holiday; a late reading makes the day
    be recomputed, and its bill must then be the holiday's alone: no weekday period left beside it,
    in the daily and in the monthly bill."""
    p, zone, customer_id = state.pipeline, state.zones["utility"], "CUST-8000"  # TOU-RES: HOLIDAY is OFF_PEAK all day
    country = calendar.country_of(zone)
    known = {day for _, day, _ in calendar.holiday_rows(country, YEAR, YEAR)}
    day = next(d for d in (state.days["utility"]["holiday"] + timedelta(days=n) for n in range(1, 60))
               if d.weekday() < 5 and d not in known)
    device_id = next(d for d, c in first_devices(state.device_customers, 10) if c == customer_id)
    readings = generate_local_days([(device_id, customer_id, zone)], [day], seed=13)
    late = readings.pop(len(readings) // 2)
    state.send(readings)
    p.catch_up()
    billed = f"from iceberg.{p.marts}.customer_billing_daily where customer_id = '{customer_id}' and billing_date = date '{day}'"
    assert dict(p.query(f"select tou_period, day_type {billed}")) == dict.fromkeys(("OFF_PEAK", "SHOULDER", "PEAK"), "WEEKDAY")

    connection = psycopg2.connect(**settings.postgres_connect_kwargs(role="admin"))
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("INSERT INTO public_holidays (country_code, holiday_date, holiday_name) "
                           "VALUES (%s, %s, 'Declared later')", (country, day))
        state.send([late])
        p.catch_up()
        assert p.query(f"select tou_period, day_type, is_holiday {billed}") == [("OFF_PEAK", "HOLIDAY", True)]
        assert_matches_oracle(state)  # every hourly, daily and monthly bill row, nothing more
    finally:
        with connection, connection.cursor() as cursor:
            cursor.execute("DELETE FROM public_holidays WHERE country_code = %s AND holiday_date = %s", (country, day))
        connection.close()


# -- the simulator seeds the holidays it needs ----------------------------------------------------


@pytest.fixture
def database(settings, native_stack):
    name = f"lt_it_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(**settings.postgres_connect_kwargs(role="admin"))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    connection = psycopg2.connect(**settings.postgres_connect_kwargs(role="admin", database=name))
    connection.autocommit = True
    with connection.cursor() as cursor:
        for script in ("01-master-data.sql", "02-seed-sample.sql", "01-master-data.sql"):  # twice: idempotent
            cursor.execute((REPO_ROOT / "postgres-init" / script).read_text())
    # The roles' grants, as setup applies them: the simulator provisions as its own role.
    for script in ("04-pipeline.sql", "05-roles.sql"):
        Postgres().run_script(native_stack, REPO_ROOT / "postgres-init" / script, database=name)
    yield name, connection
    connection.close()
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE {name} WITH (FORCE)")
    admin.close()


def test_provisioning_seeds_the_holidays_of_every_zone_in_use(settings, database):
    name, connection = database
    result = subprocess.run(
        [sys.executable, "telemetry_simulator.py", "--provision-customers", "200", "--provision-devices", "200",
         "--provision-second-zone", SECOND_ZONE],
        cwd=REPO_ROOT, env={**os.environ, "POSTGRES_DB": name}, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    first_year, last_year = masterdata.default_holiday_years(date.today())
    with connection.cursor() as cursor:
        cursor.execute("select country_code, count(*) from public_holidays group by 1")
        counts = dict(cursor.fetchall())
        cursor.execute("select country_code from timezone_countries where timezone = %s", (SECOND_ZONE,))
        assert cursor.fetchone() == ("US",)
        cursor.execute("select count(*) from customers where timezone = %s", (SECOND_ZONE,))
        assert cursor.fetchone()[0] > 0
    countries = {calendar.country_of(settings.timezone), "US"} - {None}
    assert counts == {c: len(calendar.holiday_rows(c, first_year, last_year)) for c in countries}
    assert "Public holidays" in result.stdout
