"""Write smartmeter/simulator/reference_profiles.csv, the simulator's load shapes.

    pip install -r requirements-dev.txt          # demandlib (with pandas) is a dev/tool dependency only
    python tools/make_reference_profiles.py      # rewrite the table
    python tools/make_reference_profiles.py --check   # exit 1 if the committed table differs

Rows: profile, season, day_type, quarter_hour (0-95, local wall-clock quarter-hour of the day)
and relative_power (mean power in that quarter-hour; 1 is the profile's mean over the reference
year, so a meter's annual energy sets its scale). Seasons are BDEW's: WINTER 1 Nov - 20 Mar,
SUMMER 15 May - 14 Sep, TRANSITION otherwise. Day types are WEEKDAY, SATURDAY and SUNDAY; BDEW
gives public holidays the Sunday shape.

- H25 (households) and G25 (business) are the BDEW 2025 standard load profiles as demandlib ships
  them, H25 with its dynamisation. BDEW defines them per month; this table averages each season's
  days of the reference year (no holidays, so Sundays carry the Sunday/holiday shape).
- TWO_SHIFT (small industry) is ours, as BDEW has no industrial profile: on weekdays an early
  shift 06-14 and a late shift 14-22, with dips at breaks and at the shift change, and a night
  base load (compressors, IT, security lighting) of about a quarter of shift load; Saturday one
  early shift at lower load; Sundays and holidays base load only. Winter 6 % above the year (heat,
  light), summer 5 % below.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import warnings
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smartmeter.calendar import SATURDAY, SUNDAY, WEEKDAY
from smartmeter.simulator.profiles import REFERENCE_PROFILES_CSV, SEASONS, season_of

REFERENCE_YEAR = 2025
DAY_TYPES = (WEEKDAY, SATURDAY, SUNDAY)
_DAY_TYPE_OF_WEEKDAY = (WEEKDAY,) * 5 + (SATURDAY, SUNDAY)

_TWO_SHIFT_HOURLY = {
    WEEKDAY: (0.35, 0.35, 0.35, 0.35, 0.35, 0.60, 1.45, 1.45, 1.45, 1.35, 1.45, 1.45,
                1.30, 1.45, 1.25, 1.40, 1.40, 1.40, 1.25, 1.40, 1.40, 1.30, 0.55, 0.38),
    SATURDAY: (0.35, 0.35, 0.35, 0.35, 0.35, 0.50, 1.10, 1.10, 1.10, 1.00, 1.10, 1.10,
                 1.05, 1.05, 0.55, 0.38, 0.35, 0.35, 0.35, 0.35, 0.35, 0.35, 0.35, 0.35),
    SUNDAY: (0.32, 0.32, 0.32, 0.32, 0.32, 0.32, 0.32, 0.32, 0.36, 0.36, 0.36, 0.36,
               0.36, 0.36, 0.36, 0.36, 0.36, 0.36, 0.32, 0.32, 0.32, 0.32, 0.32, 0.32),
}
_TWO_SHIFT_SEASON_LEVEL = {"WINTER": 1.06, "TRANSITION": 1.0, "SUMMER": 0.95}


def _reference_days() -> list[tuple[str, str]]:
    """(season, day type) of each day of the reference year."""
    first = date(REFERENCE_YEAR, 1, 1)
    days = (first + timedelta(days=offset) for offset in range(366))
    return [(season_of(day), _DAY_TYPE_OF_WEEKDAY[day.weekday()]) for day in days if day.year == REFERENCE_YEAR]


def _averaged(quarter_values: list[float]) -> dict[tuple[str, str], list[float]]:
    """Mean per (season, day type) and quarter-hour of a year of quarter-hour values, scaled to mean 1."""
    year_mean = sum(quarter_values) / len(quarter_values)
    sums: dict[tuple[str, str], list[float]] = {}
    counts: dict[tuple[str, str], int] = {}
    for number, key in enumerate(_reference_days()):
        day_values = quarter_values[number * 96:(number + 1) * 96]
        total = sums.setdefault(key, [0.0] * 96)
        for quarter, value in enumerate(day_values):
            total[quarter] += value
        counts[key] = counts.get(key, 0) + 1
    return {key: [value / counts[key] / year_mean for value in total] for key, total in sums.items()}


def bdew_shapes() -> dict[str, dict[tuple[str, str], list[float]]]:
    import pandas as pd
    from demandlib import bdew

    index = pd.date_range(f"{REFERENCE_YEAR}-01-01", periods=len(_reference_days()) * 96, freq="15min")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # demandlib 0.2.2 on pandas 3
        return {name: _averaged(list(profile(index).to_numpy())) for name, profile in (("H25", bdew.H25), ("G25", bdew.G25))}


def two_shift_shapes() -> dict[tuple[str, str], list[float]]:
    values = []
    for season, day_type in _reference_days():
        level = _TWO_SHIFT_SEASON_LEVEL[season]
        values.extend(level * hourly for hourly in _TWO_SHIFT_HOURLY[day_type] for _ in range(4))
    return _averaged(values)


def render() -> str:
    shapes = {**bdew_shapes(), "TWO_SHIFT": two_shift_shapes()}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("profile", "season", "day_type", "quarter_hour", "relative_power"))
    for profile, by_key in shapes.items():
        for season in SEASONS:
            for day_type in DAY_TYPES:
                for quarter, value in enumerate(by_key[(season, day_type)]):
                    writer.writerow((profile, season, day_type, quarter, f"{value:.4f}"))
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed table instead of writing it")
    args = parser.parse_args()
    text = render()
    if args.check:
        if REFERENCE_PROFILES_CSV.read_text() != text:
            print(f"{REFERENCE_PROFILES_CSV} is out of date: run python tools/make_reference_profiles.py", file=sys.stderr)
            return 1
        print(f"{REFERENCE_PROFILES_CSV} is up to date")
        return 0
    REFERENCE_PROFILES_CSV.write_text(text)
    print(f"wrote {REFERENCE_PROFILES_CSV} ({text.count(chr(10)) - 1} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
