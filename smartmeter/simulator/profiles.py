"""Load profiles: a meter's relative power by local time of day, day type and season.

Shapes come from `reference_profiles.csv` (written by tools/make_reference_profiles.py): for each
profile, BDEW season and day type, 96 quarter-hour values of relative power on the local wall
clock, 1 being the profile's mean over a year. Households follow BDEW H25, business G25 and small
industry our two-shift profile (documented in the tool). Public holidays take the Sunday shape, as
in BDEW. On DST days the local clock skips or repeats an hour, and so does the shape.

A meter's scale is its annual energy: at relative power 1 it uses annual energy / 365 a day.
"""

from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from smartmeter import calendar
from smartmeter.simulator.model import SEGMENTS

DAY_S = 86_400
QUARTER_S = 900
QUARTERS_PER_DAY = 96
REFERENCE_PROFILES_CSV = Path(__file__).with_name("reference_profiles.csv")
PROFILE_OF_SEGMENT = {"residential": "H25", "commercial": "G25", "small_industrial": "TWO_SHIFT"}
SEASONS = ("WINTER", "TRANSITION", "SUMMER")
# BDEW: holidays use the Sunday shape.
_SHAPE_DAY_TYPE = {calendar.WEEKDAY: calendar.WEEKDAY, calendar.SATURDAY: calendar.SATURDAY,
                   calendar.SUNDAY: calendar.SUNDAY, calendar.HOLIDAY: calendar.SUNDAY}

# Annual energy, log-normal around the median: per household customer (split across its meters),
# per meter for business and industry.
MEDIAN_ANNUAL_KWH = {"residential": 3_200.0, "commercial": 35_000.0, "small_industrial": 260_000.0}
_ANNUAL_KWH_SIGMA = {"residential": 0.40, "commercial": 0.55, "small_industrial": 0.45}
_ANNUAL_KWH_BOUNDS = {"residential": (800.0, 12_000.0), "commercial": (5_000.0, 290_000.0),
                      "small_industrial": (37_000.0, 1_850_000.0)}

# Interval-to-interval randomness (appliances switching): households are spiky.
NOISE_SIGMA = {"residential": 0.45, "commercial": 0.15, "small_industrial": 0.20}

# Grid voltage drops a little when the whole neighbourhood draws power (decivolts by local hour).
_VOLTAGE_OFFSET_DV = (15, 18, 20, 20, 18, 12, 2, -8, -10, -6, -4, -4,
                      -4, -4, -4, -4, -8, -18, -28, -30, -24, -12, 0, 10)


def season_of(day: date) -> str:
    """BDEW seasons: WINTER 1 Nov - 20 Mar, SUMMER 15 May - 14 Sep, TRANSITION otherwise."""
    month_day = (day.month, day.day)
    if month_day >= (11, 1) or month_day <= (3, 20):
        return "WINTER"
    if (5, 15) <= month_day <= (9, 14):
        return "SUMMER"
    return "TRANSITION"


@cache
def reference_shapes() -> dict[tuple[str, str, str], tuple[float, ...]]:
    """(profile, season, day type) -> relative power per local quarter-hour."""
    values: dict[tuple[str, str, str], list[float]] = {}
    with REFERENCE_PROFILES_CSV.open(newline="") as handle:
        for row in csv.DictReader(handle):
            key = (row["profile"], row["season"], row["day_type"])
            values.setdefault(key, [0.0] * QUARTERS_PER_DAY)[int(row["quarter_hour"])] = float(row["relative_power"])
    return {key: tuple(quarters) for key, quarters in values.items()}


def day_shape(segment: str, season: str, day_type: str) -> tuple[float, ...]:
    return reference_shapes()[(PROFILE_OF_SEGMENT[segment], season, _SHAPE_DAY_TYPE[day_type])]


def _interpolate(hourly: tuple[int, ...], hour_of_day: float) -> float:
    position = hour_of_day - 0.5
    low = math.floor(position)
    weight = position - low
    return hourly[low % 24] * (1 - weight) + hourly[(low + 1) % 24] * weight


_VOLTAGE_OFFSET_DV_BY_QUARTER = tuple(
    round(_interpolate(_VOLTAGE_OFFSET_DV, (quarter + 0.5) / 4)) for quarter in range(QUARTERS_PER_DAY)
)


@dataclass(frozen=True, slots=True)
class LocalDay:
    """One local day of a zone, indexed by quarter-hours elapsed since local midnight."""

    day: date
    day_type: str
    start_at: int
    end_at: int
    factors: tuple[tuple[float, ...], ...]  # per elapsed quarter-hour: relative power per segment
    voltage_offsets_dv: tuple[int, ...]


class ZoneProfiles:
    """Relative power of every segment at any instant, on one zone's local clock.

    Shapes are looked up once per local day, not per reading.
    """

    def __init__(self, zone: str) -> None:
        self.zone = ZoneInfo(zone)
        self.country = calendar.country_of(zone)
        self._today: LocalDay | None = None

    def local_day(self, instant_at: int) -> LocalDay:
        today = self._today
        if today is None or not today.start_at <= instant_at < today.end_at:
            today = self._today = self._build(datetime.fromtimestamp(instant_at, self.zone).date())
        return today

    def _build(self, day: date) -> LocalDay:
        start_at = calendar.local_midnight_at(self.zone, day)
        end_at = calendar.local_midnight_at(self.zone, day + timedelta(days=1))
        day_type = calendar.day_type(day, self.country)
        season = season_of(day)
        shapes = [day_shape(segment, season, day_type) for segment in SEGMENTS]
        wall_quarters = []
        for quarter_at in range(start_at, end_at, QUARTER_S):
            wall = datetime.fromtimestamp(quarter_at, self.zone)
            wall_quarters.append(wall.hour * 4 + wall.minute // 15)
        return LocalDay(
            day, day_type, start_at, end_at,
            tuple(tuple(shape[quarter] for shape in shapes) for quarter in wall_quarters),
            tuple(_VOLTAGE_OFFSET_DV_BY_QUARTER[quarter] for quarter in wall_quarters),
        )

    def factors(self, instant_at: int) -> tuple[float, ...]:
        """Relative power per segment (in SEGMENTS order) at `instant_at` (UTC epoch seconds)."""
        today = self.local_day(instant_at)
        return today.factors[(instant_at - today.start_at) // QUARTER_S]

    def voltage_offset_dv(self, instant_at: int) -> int:
        today = self.local_day(instant_at)
        return today.voltage_offsets_dv[(instant_at - today.start_at) // QUARTER_S]


def draw_annual_kwh(segment: str, rng: random.Random) -> float:
    """Annual energy of a household customer, or of a business or industry meter."""
    low, high = _ANNUAL_KWH_BOUNDS[segment]
    value = MEDIAN_ANNUAL_KWH[segment] * math.exp(rng.gauss(0, _ANNUAL_KWH_SIGMA[segment]))
    return min(max(value, low), high)


def noise_table(segment: str, rng: random.Random, size: int) -> list[float]:
    """Log-normal multipliers with mean 1, drawn once so the hot path only indexes a list."""
    sigma = NOISE_SIGMA[segment]
    return [math.exp(rng.gauss(-sigma * sigma / 2, sigma)) for _ in range(size)]
