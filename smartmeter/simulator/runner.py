"""The simulation loops: live (one round per interval, printed) and backfill (as fast as possible).

Both turn fleet batches into telemetry messages (serializer), pass them through chaos, and hand
them to a producer; fault events become log lines in each meter's firmware dialect.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from smartmeter.simulator.chaos import TelemetryChaos
from smartmeter.simulator.faultlogs import NOTE_EVENT_TYPE, dialect_for_firmware, format_event, format_note
from smartmeter.simulator.fleet import Fleet
from smartmeter.simulator.model import FaultEvent
from smartmeter.simulator.serializer import TelemetryEncoder

RULE = "-" * 80


@dataclass
class RunTotals:
    readings: int = 0
    energy_wh: int = 0
    telemetry_messages: int = 0
    log_lines: int = 0
    started_monotonic: float = field(default_factory=time.monotonic)
    last_reading_at: int | None = None

    def elapsed_s(self) -> float:
        return max(time.monotonic() - self.started_monotonic, 1e-9)


class Simulation:
    """Wires fleet, encoder, chaos and producer together for one run."""

    def __init__(
        self, fleet: Fleet, producer, *, topic: str, log_topic: str, chaos: TelemetryChaos,
    ) -> None:
        self.fleet = fleet
        self.producer = producer
        self.topic = topic
        self.log_topic = log_topic
        self.chaos = chaos
        self.encoder = TelemetryEncoder(fleet.devices, fleet.interval_minutes)
        self._dialect = {
            device.device_id: dialect_for_firmware(device.firmware_version) for device in fleet.devices
        }
        self.totals = RunTotals()

    def log_lines(self, events: list[FaultEvent]) -> list[tuple[bytes, str]]:
        lines = []
        for event in events:
            if event.code == NOTE_EVENT_TYPE:
                line = format_note(event.device_id, event.event_at, event.message)
            else:
                line = format_event(event, self._dialect[event.device_id])
            lines.append((event.device_id.encode(), line))
        return self.chaos.garble(lines)

    def interval_messages(
        self, interval_end_at: int, max_readings: int | None,
    ) -> tuple[list[tuple[bytes, str]], list[tuple[bytes, str]]]:
        """Telemetry and log messages for one interval, at most `max_readings` readings."""
        batch = self.fleet.step(interval_end_at)
        if max_readings is not None and len(batch.rows) > max_readings:
            batch.rows = batch.rows[:max_readings]
        self.totals.readings += len(batch.rows)
        self.totals.energy_wh += sum(row[3] for row in batch.rows)
        if batch.rows:
            self.totals.last_reading_at = interval_end_at
        telemetry = self.chaos.apply(self.encoder.encode(batch), interval_end_at)
        return telemetry, self.log_lines(batch.events)

    def backfill(
        self, start_at: int, intervals: int, *, max_readings: int | None,
        progress: Callable[[RunTotals], None] | None = None,
    ) -> None:
        """The `intervals` intervals after `start_at`: the first reading closes the first interval,
        at `start_at` + one interval, so a window that starts at midnight has nothing of the day before."""
        step_s = self.fleet.interval_s
        send_many = self.producer.send_many
        totals = self.totals
        for number in range(intervals):
            remaining = None if max_readings is None else max_readings - totals.readings
            if remaining is not None and remaining <= 0:
                break
            telemetry, logs = self.interval_messages(start_at + (number + 1) * step_s, remaining)
            send_many(self.topic, telemetry)
            totals.telemetry_messages += len(telemetry)
            if logs:
                send_many(self.log_topic, logs)
                totals.log_lines += len(logs)
            if progress is not None:
                progress(totals)
        self.finish()

    def live(
        self, round_s: float, *, max_readings: int | None, quiet: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        totals = self.totals
        previous_at = None
        next_round = time.monotonic()
        while max_readings is None or totals.readings < max_readings:
            # Timestamps have whole seconds: rounds faster than 1 s advance the clock by 1 s.
            round_at = int(clock())
            if previous_at is not None and round_at <= previous_at:
                round_at = previous_at + 1
            previous_at = round_at
            remaining = None if max_readings is None else max_readings - totals.readings
            telemetry, logs = self.interval_messages(round_at, remaining)
            self._send_printed(self.topic, telemetry, quiet, log=False)
            self._send_printed(self.log_topic, logs, quiet, log=True)
            next_round += round_s
            while True:
                wait_s = next_round - time.monotonic()
                if wait_s <= 0:
                    break
                self.producer.poll(min(wait_s, 0.1))
        self.finish()

    def finish(self) -> None:
        """Send what chaos still holds back (late readings, pending duplicates)."""
        held = self.chaos.drain()
        if held:
            self.producer.send_many(self.topic, held)
            self.totals.telemetry_messages += len(held)

    def _send_printed(self, topic: str, messages, quiet: bool, *, log: bool) -> None:
        for key, value in messages:
            if quiet:
                self.producer.send_many(topic, [(key, value)])
            else:
                text = _describe_log(value) if log else _describe_reading(key, value)
                self.producer.send(topic, key, value, _printer(text))
            if log:
                self.totals.log_lines += 1
            else:
                self.totals.telemetry_messages += 1


def _printer(text: str) -> Callable[[int, str | None], None]:
    def on_delivery(partition: int, error: str | None) -> None:
        if error is None:
            print(f"✓ Sent: {text} | Partition: {partition}", flush=True)
        else:
            print(f"✗ Failed: {text} | {error}", flush=True)

    return on_delivery


def _describe_reading(key: bytes | None, value: str) -> str:
    try:
        document = json.loads(value)
        metrics = document["metrics"]
        return (f"{document['device_id']} | Energy: {metrics['energy_kwh']} kWh | "
                f"Voltage: {metrics['voltage']}V | Status: {document['status']}")
    except (ValueError, KeyError, TypeError):
        device = key.decode() if key else "?"
        return f"{device} | unreadable message ({len(value)} bytes)"


def _describe_log(line: str) -> str:
    return f"log line: {line}"

