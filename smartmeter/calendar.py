"""Local time: the day convention, day types and public holidays, shared by simulator and marts.

Timestamps are UTC everywhere. A customer's local zone is `customers.timezone`, or the utility's
zone `LAKEHOUSE_TIMEZONE` when that is null.

**Day convention.** A reading at instant t carries the energy of the interval (t - interval, t].
It belongs to the local day and the local hour that contain t - 1 second. So the 00:00 reading
closes the previous day, and a day's readings run from 00:15 to 24:00 local time (at 15 minutes).
A local day has 96 readings, 92 on the spring-forward day (23 hours) and 100 on the fall-back
day (25 hours, whose repeated hour is told apart by its UTC offset). In Trino:
`date(at_timezone(reading_at - interval '1' second, zone))`.

**Day types**: WEEKDAY (Monday to Friday), SATURDAY, SUNDAY and HOLIDAY. A public holiday of the
zone's country is a HOLIDAY whatever weekday it falls on. Holidays are the nationwide public
holidays of the maintained `holidays` package; `ZONE_COUNTRIES` says which country a zone uses.
`holiday_rows` lists them for a table the marts can join.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays

WEEKDAY, SATURDAY, SUNDAY, HOLIDAY = "WEEKDAY", "SATURDAY", "SUNDAY", "HOLIDAY"
DAY_TYPES = (WEEKDAY, SATURDAY, SUNDAY, HOLIDAY)
_WEEKDAY_TYPES = (WEEKDAY,) * 5 + (SATURDAY, SUNDAY)
_HOLIDAY_LANGUAGE = "en_US"

# Zone -> ISO 3166 country whose public holidays apply (None: no holidays). Northern hemisphere
# only, because the load profiles' seasons are. Add a zone here to support it.
ZONE_COUNTRIES: dict[str, str | None] = {
    "UTC": None,
    "Etc/UTC": None,
    "Europe/Amsterdam": "NL",
    "Europe/Berlin": "DE",
    "Europe/Brussels": "BE",
    "Europe/Copenhagen": "DK",
    "Europe/Dublin": "IE",
    "Europe/Helsinki": "FI",
    "Europe/Lisbon": "PT",
    "Europe/London": "GB",
    "Europe/Luxembourg": "LU",
    "Europe/Madrid": "ES",
    "Europe/Oslo": "NO",
    "Europe/Paris": "FR",
    "Europe/Prague": "CZ",
    "Europe/Rome": "IT",
    "Europe/Stockholm": "SE",
    "Europe/Vienna": "AT",
    "Europe/Warsaw": "PL",
    "Europe/Zurich": "CH",
    "America/New_York": "US",
    "America/Chicago": "US",
    "America/Denver": "US",
    "America/Los_Angeles": "US",
    "America/Toronto": "CA",
    "America/Vancouver": "CA",
}


def country_of(zone: str) -> str | None:
    """The holiday country of an IANA zone; a clear ValueError for a zone that is not mapped."""
    try:
        return ZONE_COUNTRIES[zone]
    except KeyError:
        raise ValueError(
            f"time zone {zone!r} has no holiday country: use one of {', '.join(sorted(ZONE_COUNTRIES))}, "
            "or add it to ZONE_COUNTRIES in smartmeter/calendar.py"
        ) from None


def _holidays(country: str, years: range | None = None) -> holidays.HolidayBase:
    language = _HOLIDAY_LANGUAGE if _HOLIDAY_LANGUAGE in holidays.list_localized_countries().get(country, ()) else None
    return holidays.country_holidays(country, years=years, language=language)


@cache
def _holidays_of(country: str) -> holidays.HolidayBase:
    return _holidays(country)  # expands to each year on its first lookup


def holiday_name(day: date, country: str | None) -> str | None:
    return None if country is None else _holidays_of(country).get(day)


def day_type(day: date, country: str | None) -> str:
    if holiday_name(day, country) is not None:
        return HOLIDAY
    return _WEEKDAY_TYPES[day.weekday()]


def holiday_rows(country: str, first_year: int, last_year: int) -> list[tuple[str, date, str]]:
    """(country_code, holiday_date, holiday_name) for every public holiday of the years, by date.

    Two holidays on one date share a row, their names joined by "; ".
    """
    calendar = _holidays(country, years=range(first_year, last_year + 1))
    return [(country, day, name) for day, name in sorted(calendar.items())]


def local_midnight_at(zone: ZoneInfo, day: date) -> int:
    """UTC epoch seconds of 00:00 local time on `day`."""
    return int(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp())


def local_days_window(zone: str, first_day: date, days: int) -> tuple[int, int]:
    """UTC epoch seconds of the start of `first_day` and the end of its `days`-th day, locally."""
    tz = ZoneInfo(zone)
    return local_midnight_at(tz, first_day), local_midnight_at(tz, first_day + timedelta(days=days))


def reading_local_time(reading_at: int, zone: str) -> datetime:
    """The local time a reading is attributed to (t - 1 s): its `.date()` is the reading's day."""
    return datetime.fromtimestamp(reading_at - 1, UTC).astimezone(ZoneInfo(zone))
