"""Reading model: plain dataclasses, no I/O and no encoding.

Quantities are held as integers in small units (Wh, decivolts) so that sums are exact and the
register always equals the sum of the intervals; the serializer turns them into the contract's
kWh and V. Instants are UTC epoch seconds in fields ending in `_at`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

SEGMENTS = ("residential", "commercial", "small_industrial")

# EN 50160: supply voltage within ±10 % of 230 V is normal; beyond ±15 % is a serious fault.
VOLTAGE_OK_MIN_DV, VOLTAGE_OK_MAX_DV = 2070, 2530
VOLTAGE_WARN_MIN_DV, VOLTAGE_WARN_MAX_DV = 1955, 2645
BATTERY_WARNING_PCT = 20
BATTERY_ERROR_PCT = 5

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def format_timestamp(instant_at: int) -> str:
    return datetime.fromtimestamp(instant_at, UTC).strftime(TIMESTAMP_FORMAT)


def epoch_of_date(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def status_for(voltage_dv: int, battery_pct: int) -> str:
    """Device status from supply voltage and battery; faults may raise it further."""
    if (
        not VOLTAGE_WARN_MIN_DV <= voltage_dv <= VOLTAGE_WARN_MAX_DV
        or battery_pct < BATTERY_ERROR_PCT
    ):
        return "ERROR"
    if not VOLTAGE_OK_MIN_DV <= voltage_dv <= VOLTAGE_OK_MAX_DV or battery_pct < BATTERY_WARNING_PCT:
        return "WARNING"
    return "OK"


@dataclass(frozen=True, slots=True)
class Customer:
    customer_id: str
    customer_name: str
    segment: str
    region: str
    tariff_id: str
    timezone: str | None = None  # IANA name; None: the utility's zone


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    customer_id: str
    segment: str
    device_model: str
    firmware_version: str
    install_date: date
    region: str = ""
    tariff_id: str = ""
    is_active: bool = True
    timezone: str | None = None  # the customer's zone; None: the utility's zone
    customer_meter_count: int = 1  # a household's energy is split across its active meters


@dataclass(frozen=True, slots=True)
class Reading:
    """One meter reading: energy used in the interval that ends at `reading_at`."""

    device_id: str
    customer_id: str
    reading_at: int
    energy_wh: int
    voltage_dv: int
    battery_pct: int
    register_wh: int
    status: str
    interval_minutes: int

    @property
    def energy_kwh(self) -> float:
        return self.energy_wh / 1000

    @property
    def voltage_v(self) -> float:
        return self.voltage_dv / 10

    @property
    def register_kwh(self) -> float:
        return self.register_wh / 1000


# One reading of an interval batch, as a tuple because the hot path builds millions of them:
# (device_index, reading_at, timestamp, energy_wh, voltage_dv, battery_pct, register_wh, status)
ReadingRow = tuple[int, int, str, int, int, int, int, str]


@dataclass(slots=True)
class IntervalBatch:
    """Everything the fleet produced for the interval ending at `interval_end_at`.

    `device_index` in a row points into the fleet's device list. Devices without a reading this
    interval (communication dropout) have no row.
    """

    interval_end_at: int
    rows: list[ReadingRow] = field(default_factory=list)
    events: list[FaultEvent] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True, slots=True)
class FaultEpisode:
    """Ground truth: `device_id` had `fault_type` from `started_at` until `ended_at` (exclusive)."""

    device_id: str
    fault_type: str
    started_at: int
    ended_at: int


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """One fault-log event, before it is written in a firmware dialect."""

    device_id: str
    event_at: int
    code: str
    severity: str
    message: str
