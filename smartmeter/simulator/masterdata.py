"""Master data in PostgreSQL: load the active fleet, provision more of it, store fault labels.

Provisioned ids continue the seed sample's numbering (CUST-8000.., MTR-10000..) and device n
belongs to customer n * customers // devices, which for the sample's 5 customers and 10 devices
is the sample's own mapping (MTR-10000+n -> CUST-8000+n//2). Attributes are drawn from a random
generator seeded with the id itself, so a row never changes when the fleet grows, and rows that
already exist are left alone (ON CONFLICT DO NOTHING).

Customers have no zone of their own (`timezone` null: the utility's LAKEHOUSE_TIMEZONE) unless
provisioning is given a second zone: then a stable SECOND_ZONE_SHARE of the new customers, chosen
by id, live there.

Public holidays are master data too (`seed_calendar`): the `holidays` package's holidays of every
zone in use, written to `public_holidays` with the zone -> country map `timezone_countries`, so
the marts can join them.
"""

from __future__ import annotations

import io
import random
from collections import Counter
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, timedelta

from smartmeter import calendar
from smartmeter.errors import LakehouseError
from smartmeter.retry import with_retries
from smartmeter.simulator.model import Customer, Device

FIRST_CUSTOMER_NUMBER = 8000
FIRST_DEVICE_NUMBER = 10000
REGIONS = ("NORTH", "SOUTH", "EAST", "WEST")
# model -> firmware versions in the field; the firmware family decides the log dialect.
DEVICE_MODELS = {
    "LG-E450": ("ELX-4.2.1", "ELX-4.3.0"),
    "KM-AX2": ("KMF-2.7", "KMF-2.8.1"),
    "SG-S34": ("SGX-1.9.3", "SGX-2.0.0"),
}
_SEGMENT_WEIGHTS = (("residential", 0.85), ("commercial", 0.12), ("small_industrial", 0.03))
_FIRST_INSTALL = date(2018, 1, 1)
_INSTALL_SPAN_DAYS = (date(2025, 6, 30) - _FIRST_INSTALL).days
_INACTIVE_SHARE = 0.02
SECOND_ZONE_SHARE = 0.05
_NAMES = ("Alder", "Birch", "Cedar", "Dogwood", "Elm", "Fir", "Gorse", "Hazel", "Ivy", "Juniper",
          "Larch", "Maple", "Oak", "Pine", "Rowan", "Spruce", "Willow", "Yew", "Aspen", "Beech")
_BUSINESSES = {
    "residential": ("Household",),
    "commercial": ("Bakery", "Cafe", "Pharmacy", "Offices", "Grocery", "Salon", "Dental Practice"),
    "small_industrial": ("Metalworks", "Joinery", "Print Works", "Plastics", "Cold Store"),
}


def customer_id_of(number: int) -> str:
    return f"CUST-{FIRST_CUSTOMER_NUMBER + number}"


def device_id_of(number: int) -> str:
    return f"MTR-{FIRST_DEVICE_NUMBER + number}"


def synthetic_customer(number: int, second_zone: str | None = None) -> Customer:
    customer_id = customer_id_of(number)
    rng = random.Random(customer_id)
    draw = rng.random()
    segment = "small_industrial"
    for name, weight in _SEGMENT_WEIGHTS:
        if draw < weight:
            segment = name
            break
        draw -= weight
    if segment == "residential":
        tariff_id = "TOU-RES" if rng.random() < 0.6 else "FLAT-RES"
    else:
        tariff_id = "TOU-BUS"
    name = f"{rng.choice(_NAMES)} {rng.choice(_BUSINESSES[segment])}"
    region = rng.choice(REGIONS)
    in_second_zone = second_zone is not None and random.Random(f"{customer_id}:timezone").random() < SECOND_ZONE_SHARE
    return Customer(customer_id, name, segment, region, tariff_id, second_zone if in_second_zone else None)


def synthetic_device(number: int, customer: Customer) -> Device:
    device_id = device_id_of(number)
    rng = random.Random(device_id)
    model = rng.choice(sorted(DEVICE_MODELS))
    return Device(
        device_id=device_id,
        customer_id=customer.customer_id,
        segment=customer.segment,
        device_model=model,
        firmware_version=rng.choice(DEVICE_MODELS[model]),
        install_date=_FIRST_INSTALL + timedelta(days=rng.randrange(_INSTALL_SPAN_DAYS)),
        region=customer.region,
        tariff_id=customer.tariff_id,
        is_active=rng.random() >= _INACTIVE_SHARE,
        timezone=customer.timezone,
    )


def synthetic_fleet(
    customers: int, devices: int, second_zone: str | None = None,
) -> tuple[list[Customer], list[Device]]:
    """The rows provisioning inserts, without a database (benchmarks and tests use it); devices
    carry their customer's count of active meters, as `load_active_devices` gives them."""
    customer_rows = [synthetic_customer(number, second_zone) for number in range(customers)]
    if not customer_rows:
        return customer_rows, []
    device_rows = [synthetic_device(number, customer_rows[number * customers // devices]) for number in range(devices)]
    active = Counter(device.customer_id for device in device_rows if device.is_active)
    return customer_rows, [replace(device, customer_meter_count=max(1, active[device.customer_id])) for device in device_rows]


def connect(connect_kwargs: dict, address: str, attempts: int, backoff_s: float):
    import psycopg2

    return with_retries(
        lambda: psycopg2.connect(**connect_kwargs), service="PostgreSQL", address=address,
        attempts=attempts, backoff_s=backoff_s, retry_on=(psycopg2.OperationalError,),
    )


def _copy_rows(cursor, table: str, columns: Sequence[str], rows: Sequence[Sequence]) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join("\\N" if value is None else str(value) for value in row) + "\n")
    buffer.seek(0)
    cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)


@contextmanager
def _timezone_column_required():
    import psycopg2.errors

    try:
        yield
    except psycopg2.errors.UndefinedColumn as error:
        if "timezone" not in str(error):
            raise
        raise LakehouseError("column customers.timezone is missing (a database from before local time): "
                             "apply postgres-init/01-master-data.sql again with psql, which adds it, "
                             "or start afresh with ./initial-setup.sh") from error


@contextmanager
def _calendar_tables_required():
    import psycopg2.errors

    try:
        yield
    except psycopg2.errors.UndefinedTable as error:
        raise LakehouseError("table public_holidays or timezone_countries is missing (a database from "
                             "before public holidays): apply postgres-init/01-master-data.sql again with psql, "
                             "which adds them, or start afresh with ./initial-setup.sh") from error


def provision(connection, customers: int, devices: int, second_zone: str | None = None) -> tuple[int, int]:
    """Insert missing customers and devices; returns how many of each were new."""
    customer_rows, device_rows = synthetic_fleet(customers, devices, second_zone)
    customer_columns = ("customer_id", "customer_name", "segment", "region", "tariff_id", "timezone")
    device_columns = ("device_id", "customer_id", "device_model", "firmware_version",
                      "install_date", "is_active")
    with _timezone_column_required(), connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tariffs WHERE tariff_id IN ('TOU-RES', 'FLAT-RES', 'TOU-BUS')")
        if cursor.fetchone()[0] < 3:
            raise RuntimeError("tariffs TOU-RES, FLAT-RES and TOU-BUS are missing: load "
                               "postgres-init/02-seed-sample.sql first (./initial-setup.sh does)")
        cursor.execute("CREATE TEMP TABLE new_customers (LIKE customers INCLUDING DEFAULTS) ON COMMIT DROP")
        cursor.execute("CREATE TEMP TABLE new_devices (LIKE devices INCLUDING DEFAULTS) ON COMMIT DROP")
        _copy_rows(cursor, "new_customers", customer_columns, [
            (c.customer_id, c.customer_name, c.segment, c.region, c.tariff_id, c.timezone) for c in customer_rows
        ])
        _copy_rows(cursor, "new_devices", device_columns, [
            (d.device_id, d.customer_id, d.device_model, d.firmware_version,
             d.install_date.isoformat(), "t" if d.is_active else "f") for d in device_rows
        ])
        cursor.execute(
            f"INSERT INTO customers ({', '.join(customer_columns)}) "
            f"SELECT {', '.join(customer_columns)} FROM new_customers ORDER BY customer_id "
            "ON CONFLICT (customer_id) DO NOTHING"
        )
        new_customers = cursor.rowcount
        cursor.execute(
            f"INSERT INTO devices ({', '.join(device_columns)}) "
            f"SELECT {', '.join(device_columns)} FROM new_devices ORDER BY device_id "
            "ON CONFLICT (device_id) DO NOTHING"
        )
        new_devices = cursor.rowcount
    return new_customers, new_devices


def zones_in_use(connection, utility_zone: str, *extra: str | None) -> list[str]:
    """The utility's zone, every customer's zone and `extra` zones, utility zone first."""
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT timezone FROM customers WHERE timezone IS NOT NULL")
        zones = {row[0] for row in cursor.fetchall()} | {zone for zone in extra if zone}
    return [utility_zone, *sorted(zones - {utility_zone})]


def holiday_years(first_day: date, last_day: date) -> tuple[int, int]:
    """Years to seed for local days first_day..last_day; a day either side covers zones whose
    local date differs from the utility's at a year's edge."""
    return (first_day - timedelta(days=1)).year, (last_day + timedelta(days=1)).year


def default_holiday_years(today: date) -> tuple[int, int]:
    """Setup and provisioning: two years back (backfills), one ahead (the live simulator)."""
    return today.year - 2, today.year + 1


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def calendar_sql(zones: Sequence[str], first_year: int, last_year: int) -> tuple[str, int]:
    """SQL that writes the zone -> country map and the public holidays of `zones`' countries for
    the years (idempotent; names are refreshed from the package), and the number of holidays.

    Plain SQL with literals, so compose setup can pipe it to psql in the container. Raises
    ValueError for a zone that calendar.ZONE_COUNTRIES does not know.
    """
    countries = sorted({country for zone in zones if (country := calendar.country_of(zone))})
    rows = [row for country in countries for row in calendar.holiday_rows(country, first_year, last_year)]
    zone_values = ",\n".join(
        f"({_literal(zone)}, {_literal(country) if country else 'NULL'})"
        for zone, country in sorted(calendar.ZONE_COUNTRIES.items())
    )
    statements = [
        f"INSERT INTO timezone_countries (timezone, country_code) VALUES\n{zone_values}\n"
        "ON CONFLICT (timezone) DO UPDATE SET country_code = EXCLUDED.country_code;"
    ]
    if rows:
        holiday_values = ",\n".join(
            f"({_literal(country)}, DATE {_literal(day.isoformat())}, {_literal(name)})" for country, day, name in rows
        )
        statements.append(
            f"INSERT INTO public_holidays (country_code, holiday_date, holiday_name) VALUES\n{holiday_values}\n"
            "ON CONFLICT (country_code, holiday_date) DO UPDATE SET holiday_name = EXCLUDED.holiday_name;"
        )
    return "\n".join(statements) + "\n", len(rows)


def seed_calendar(connection, zones: Sequence[str], first_year: int, last_year: int) -> int:
    """Run calendar_sql in one transaction; returns the number of holiday rows written."""
    sql, written = calendar_sql(zones, first_year, last_year)
    with _calendar_tables_required(), connection, connection.cursor() as cursor:
        cursor.execute(sql)
    return written


def seed_setup_calendar(connection, utility_zone: str, today: date) -> str:
    """Setup's seeding: every zone in use, default years; a one-line summary."""
    first_year, last_year = default_holiday_years(today)
    zones = zones_in_use(connection, utility_zone)
    written = seed_calendar(connection, zones, first_year, last_year)
    countries = sorted({country for zone in zones if (country := calendar.country_of(zone))})
    return f"{written} public holidays {first_year}-{last_year} ({', '.join(countries) or 'no country'})"


def load_active_devices(
    connection, *, max_customers: int | None = None, max_devices: int | None = None,
) -> tuple[list[Device], int]:
    """Active devices with their customer's attributes, ordered by device number.

    With limits, only devices of the first `max_customers` customers (by id) are taken, then the
    first `max_devices` of those. Each device carries its customer's zone and count of active
    meters (over all of them, whatever the limits). Returns the devices and the number of active
    devices in total.
    """
    columns = ("device_id", "customer_id", "segment", "device_model", "firmware_version", "install_date",
               "region", "tariff_id", "timezone", "customer_meter_count")
    with _timezone_column_required(), connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM devices WHERE is_active")
        total = cursor.fetchone()[0]
        cursor.execute(
            """
            WITH active_devices AS (
                SELECT device_id, customer_id, device_model, firmware_version, install_date,
                       count(*) OVER (PARTITION BY customer_id) AS customer_meter_count
                FROM devices
                WHERE is_active
            ),
            chosen_customers AS (
                SELECT customer_id, segment, region, tariff_id, timezone
                FROM customers
                WHERE customer_id IN (SELECT customer_id FROM active_devices)
                ORDER BY length(customer_id), customer_id
                LIMIT %(max_customers)s
            )
            SELECT d.device_id, d.customer_id, c.segment, d.device_model, d.firmware_version,
                   d.install_date, c.region, c.tariff_id, c.timezone, d.customer_meter_count
            FROM active_devices AS d
            JOIN chosen_customers AS c USING (customer_id)
            ORDER BY length(d.device_id), d.device_id
            LIMIT %(max_devices)s
            """,
            {"max_customers": max_customers, "max_devices": max_devices},
        )
        devices = [Device(**dict(zip(columns, row, strict=True))) for row in cursor.fetchall()]
    return devices, total


def write_fault_labels(connection, labels: Sequence[tuple]) -> None:
    """Upsert ground-truth labels (epoch seconds) into fault_labels."""
    from psycopg2.extras import execute_values

    with connection, connection.cursor() as cursor:
        execute_values(
            cursor,
            "INSERT INTO fault_labels (device_id, fault_type, started_at, ended_at) VALUES %s "
            "ON CONFLICT (device_id, fault_type, started_at) DO UPDATE SET ended_at = EXCLUDED.ended_at",
            labels,
            template="(%s, %s, to_timestamp(%s), to_timestamp(%s))",
        )
