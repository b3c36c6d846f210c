"""JSON encoding of readings for topic `telemetry_raw`, kept apart from the reading model.

The output is byte-for-byte what `json.dumps` gives for the same dict (default separators,
floats by `repr`), but built from per-device string templates, because json.dumps of a dict
costs several times more and backfill encodes millions of readings.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from smartmeter.simulator.model import Device, IntervalBatch, Reading, format_timestamp


def reading_document(reading: Reading) -> dict:
    """The contract's message as a dict (for chaos edits and tests)."""
    return {
        "device_id": reading.device_id,
        "customer_id": reading.customer_id,
        "timestamp": format_timestamp(reading.reading_at),
        "metrics": {
            "energy_kwh": reading.energy_kwh,
            "voltage": reading.voltage_v,
            "battery_pct": reading.battery_pct,
            "register_kwh": reading.register_kwh,
        },
        "status": reading.status,
        "interval_minutes": reading.interval_minutes,
    }


def encode_document(document: dict) -> str:
    return json.dumps(document)


class TelemetryEncoder:
    """Encodes interval batches of one fleet into (key, value) pairs."""

    def __init__(self, devices: Sequence[Device], interval_minutes: int) -> None:
        self.keys = [device.device_id.encode() for device in devices]
        self._prefixes = [
            f'{{"device_id": {json.dumps(device.device_id)}, '
            f'"customer_id": {json.dumps(device.customer_id)}, "timestamp": "'
            for device in devices
        ]
        self._suffix = f', "interval_minutes": {int(interval_minutes)}}}'

    def encode(self, batch: IntervalBatch) -> list[tuple[bytes, str]]:
        keys = self.keys
        prefixes = self._prefixes
        suffix = self._suffix
        return [
            (
                keys[index],
                f'{prefixes[index]}{timestamp}", "metrics": {{"energy_kwh": {energy_wh / 1000}, '
                f'"voltage": {voltage_dv / 10}, "battery_pct": {battery_pct}, '
                f'"register_kwh": {register_wh / 1000}}}, "status": "{status}"{suffix}',
            )
            for index, _, timestamp, energy_wh, voltage_dv, battery_pct, register_wh, status in batch.rows
        ]
