"""Helpers for the simulator tests: an in-memory producer, fleets and an independent validator."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from smartmeter.simulator.chaos import ChaosRates, TelemetryChaos
from smartmeter.simulator.fleet import BackfillWindow, Fleet, fleet_zones
from smartmeter.simulator.masterdata import synthetic_fleet
from smartmeter.simulator.model import Device
from smartmeter.simulator.producer import ProducerStats
from smartmeter.simulator.runner import Simulation

TELEMETRY = "telemetry_raw"
LOGS = "meter_fault_logs"
START_DAY = date(2025, 12, 1)  # a Monday
ZONE = "Europe/Berlin"  # the utility's zone in tests, whatever LAKEHOUSE_TIMEZONE says
NO_CHAOS = ChaosRates()
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


class MemoryProducer:
    """Collects (topic, key, value) in send order, like --record does."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, str]] = []
        self.stats = ProducerStats()

    def send_many(self, topic, messages) -> None:
        for key, value in messages:
            self.sent.append((topic, key, value))

    def send(self, topic, key, value, on_delivery) -> None:
        self.sent.append((topic, key, value))
        on_delivery(0, None)

    def poll(self, timeout_s: float = 0) -> None:
        pass

    def flush(self, timeout_s: float) -> int:
        return 0

    def on(self, topic: str) -> list[tuple[bytes | None, str]]:
        return [(key, value) for sent_topic, key, value in self.sent if sent_topic == topic]


def epoch(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def local_midnight(day: date, zone: str = ZONE) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)).timestamp())


def sample_devices(count: int = 40) -> list[Device]:
    _, devices = synthetic_fleet(max(1, count // 2), count)
    return devices


def segment_devices(per_segment: int) -> list[Device]:
    """`per_segment` meters of each segment, with ids that do not depend on the synthetic mix."""
    models = (("LG-E450", "ELX-4.2.1"), ("KM-AX2", "KMF-2.7"), ("SG-S34", "SGX-1.9.3"))
    devices = []
    for segment_number, segment in enumerate(("residential", "commercial", "small_industrial")):
        for n in range(per_segment):
            number = segment_number * per_segment + n
            model, firmware = models[number % 3]
            devices.append(Device(f"MTR-{20000 + number}", f"CUST-{9000 + number}", segment, model, firmware,
                                  date(2022, 1, 1) + timedelta(days=number)))
    return devices


@dataclass
class Run:
    producer: MemoryProducer
    simulation: Simulation


def backfill(
    devices, *, seed=1, days=1, start_day=START_DAY, episodes=(), rates=NO_CHAOS,
    interval_minutes=15, max_readings=None, background_events=True, timezone=ZONE,
) -> Run:
    """`days` whole local days from `start_day`, as `telemetry_simulator.py --backfill-days` runs them."""
    window = BackfillWindow.local_days(fleet_zones(devices, timezone), start_day, days)
    start_at = window.start_at
    intervals = (window.end_at - start_at) // (interval_minutes * 60)
    fleet = Fleet(devices, seed=seed, interval_minutes=interval_minutes, start_at=start_at, timezone=timezone,
                  episodes=episodes, background_events=background_events, window=window)
    chaos = TelemetryChaos(rates, seed=seed, known_device_ids={d.device_id for d in devices},
                           window_end_at=window.end_at)
    producer = MemoryProducer()
    simulation = Simulation(fleet, producer, topic=TELEMETRY, log_topic=LOGS, chaos=chaos)
    simulation.backfill(start_at, intervals, max_readings=max_readings)
    return Run(producer, simulation)


def _shape_errors(document: dict) -> list[str]:
    errors = [f"missing {name}" for name in ("device_id", "customer_id", "timestamp", "metrics", "status")
              if name not in document]
    metrics = document.get("metrics")
    if not isinstance(metrics, dict):
        return errors + ["metrics not an object"]
    for name in ("energy_kwh", "voltage", "battery_pct", "register_kwh"):
        if name not in metrics:
            errors.append(f"missing metrics.{name}")
        elif isinstance(metrics[name], bool) or not isinstance(metrics[name], (int, Decimal)):
            errors.append(f"metrics.{name} not a number")
    return errors


def _value_errors(document: dict, known: dict[str, str]) -> list[str]:
    metrics = document["metrics"]
    energy, voltage, battery = metrics["energy_kwh"], metrics["voltage"], metrics["battery_pct"]
    checks = [
        (not isinstance(document["timestamp"], str) or not TIMESTAMP.match(document["timestamp"]), "bad timestamp"),
        (not 0 <= energy <= 1000 or energy != round(energy, 3), "energy out of range or more than 3 decimals"),
        (not 0 < voltage <= 1000 or voltage != round(voltage, 1), "voltage out of range or more than 1 decimal"),
        (not isinstance(battery, int) or not 0 <= battery <= 100, "battery out of range"),
        (document["status"] not in ("OK", "WARNING", "ERROR"), "bad status"),
        (known.get(document["device_id"]) != document["customer_id"], "unknown device or wrong customer"),
    ]
    return [error for failed, error in checks if failed]


def contract_errors(value: str, known: dict[str, str]) -> list[str]:
    """Why `value` breaks the telemetry contract (empty when it is a valid reading)."""
    try:
        document = json.loads(value, parse_float=Decimal)
    except ValueError:
        return ["not JSON"]
    if not isinstance(document, dict):
        return ["not an object"]
    return _shape_errors(document) or _value_errors(document, known)


def parse_time(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())
