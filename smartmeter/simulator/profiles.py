"""Load profiles: how a meter's power draw varies with time of day, weekday and season.

Shapes are hourly multipliers (mean 1 over the day), interpolated linearly between hour
centres. Profiles are applied in UTC: the simulated utility runs on UTC wall-clock time.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

DAY_S = 86_400

_SHAPES: dict[str, dict[str, tuple[float, ...]]] = {
    # Households: low at night, a morning peak, a higher evening peak.
    "residential": {
        "weekday": (0.45, 0.40, 0.38, 0.37, 0.38, 0.50, 0.95, 1.45, 1.35, 0.95, 0.80, 0.78,
                    0.82, 0.78, 0.75, 0.82, 1.05, 1.55, 1.95, 2.00, 1.80, 1.45, 1.05, 0.70),
        "weekend": (0.55, 0.45, 0.40, 0.38, 0.38, 0.42, 0.55, 0.80, 1.15, 1.35, 1.30, 1.25,
                    1.25, 1.15, 1.05, 1.05, 1.15, 1.45, 1.75, 1.80, 1.60, 1.35, 1.05, 0.75),
    },
    # Shops and offices: business hours 08-18, base load (fridges, servers) otherwise.
    "commercial": {
        "weekday": (0.35, 0.35, 0.35, 0.35, 0.35, 0.40, 0.60, 1.20, 1.85, 1.95, 1.95, 1.95,
                    1.90, 1.95, 1.95, 1.90, 1.80, 1.40, 0.85, 0.55, 0.45, 0.40, 0.35, 0.35),
        "weekend": (0.60, 0.60, 0.60, 0.60, 0.60, 0.60, 0.70, 0.90, 1.20, 1.45, 1.50, 1.50,
                    1.50, 1.45, 1.40, 1.30, 1.15, 0.95, 0.80, 0.70, 0.65, 0.60, 0.60, 0.60),
    },
    # Two shifts, 06-22, with a dip at each shift change; night base load.
    "small_industrial": {
        "weekday": (0.40, 0.40, 0.40, 0.40, 0.45, 0.75, 1.45, 1.55, 1.55, 1.55, 1.50, 1.35,
                    1.45, 1.55, 1.40, 1.50, 1.55, 1.55, 1.50, 1.45, 1.35, 1.10, 0.55, 0.40),
        "weekend": (0.70, 0.70, 0.70, 0.70, 0.70, 0.75, 0.90, 1.10, 1.25, 1.30, 1.30, 1.30,
                    1.30, 1.30, 1.25, 1.20, 1.15, 1.05, 1.00, 0.95, 0.90, 0.85, 0.75, 0.70),
    },
}

# Day-type level relative to a weekday: households use more at weekends, businesses far less.
_DAY_LEVEL = {
    "residential": (1.0, 1.12, 1.15),  # weekday, Saturday, Sunday
    "commercial": (1.0, 0.55, 0.30),
    "small_industrial": (1.0, 0.45, 0.25),
}

# Northern-hemisphere seasons: peak in mid-January (heating, lighting), trough in July.
_SEASONAL_AMPLITUDE = {"residential": 0.18, "commercial": 0.10, "small_industrial": 0.05}
_SEASON_PEAK_DAY_OF_YEAR = 15

# Per-meter mean daily energy on a weekday in an average season: log-normal around the median.
MEDIAN_DAILY_KWH = {"residential": 8.5, "commercial": 110.0, "small_industrial": 850.0}
_DAILY_KWH_SIGMA = {"residential": 0.28, "commercial": 0.55, "small_industrial": 0.45}
_DAILY_KWH_BOUNDS = {"residential": (3.0, 30.0), "commercial": (15.0, 900.0),
                     "small_industrial": (120.0, 6000.0)}

# Interval-to-interval randomness (appliances switching): households are spiky.
NOISE_SIGMA = {"residential": 0.45, "commercial": 0.15, "small_industrial": 0.20}

# Grid voltage drops a little when the whole neighbourhood draws power (decivolts by UTC hour).
_VOLTAGE_OFFSET_DV = (15, 18, 20, 20, 18, 12, 2, -8, -10, -6, -4, -4,
                      -4, -4, -4, -4, -8, -18, -28, -30, -24, -12, 0, 10)


def _normalised(shape: tuple[float, ...]) -> tuple[float, ...]:
    mean = sum(shape) / len(shape)
    return tuple(value / mean for value in shape)


_NORMALISED = {
    segment: {day_type: _normalised(shape) for day_type, shape in shapes.items()}
    for segment, shapes in _SHAPES.items()
}


def _interpolate(hourly: tuple[float, ...], hour_of_day: float) -> float:
    position = hour_of_day - 0.5
    low = math.floor(position)
    weight = position - low
    return hourly[low % 24] * (1 - weight) + hourly[(low + 1) % 24] * weight


def seasonal_factor(segment: str, instant_at: int) -> float:
    day_of_year = datetime.fromtimestamp(instant_at, UTC).timetuple().tm_yday
    angle = 2 * math.pi * (day_of_year - _SEASON_PEAK_DAY_OF_YEAR) / 365.25
    return 1 + _SEASONAL_AMPLITUDE[segment] * math.cos(angle)


def load_factor(segment: str, instant_at: int) -> float:
    """Multiplier of a meter's mean power at `instant_at` (UTC epoch seconds)."""
    moment = datetime.fromtimestamp(instant_at, UTC)
    weekday = moment.weekday()
    day_kind = 0 if weekday < 5 else weekday - 4
    shape = _NORMALISED[segment]["weekday" if day_kind == 0 else "weekend"]
    hour_of_day = moment.hour + moment.minute / 60 + moment.second / 3600
    return (
        _interpolate(shape, hour_of_day)
        * _DAY_LEVEL[segment][day_kind]
        * seasonal_factor(segment, instant_at)
    )


def voltage_offset_dv(instant_at: int) -> int:
    moment = datetime.fromtimestamp(instant_at, UTC)
    return round(_interpolate(_VOLTAGE_OFFSET_DV, moment.hour + moment.minute / 60))


def draw_daily_kwh(segment: str, rng: random.Random) -> float:
    """A meter's typical weekday consumption, drawn once per meter."""
    low, high = _DAILY_KWH_BOUNDS[segment]
    value = MEDIAN_DAILY_KWH[segment] * math.exp(rng.gauss(0, _DAILY_KWH_SIGMA[segment]))
    return min(max(value, low), high)


def noise_table(segment: str, rng: random.Random, size: int) -> list[float]:
    """Log-normal multipliers with mean 1, drawn once so the hot path only indexes a list."""
    sigma = NOISE_SIGMA[segment]
    return [math.exp(rng.gauss(-sigma * sigma / 2, sigma)) for _ in range(size)]
