"""Chaos: the imperfections of a real meter fleet, injected into the message stream.

Each kind has its own rate: the probability per genuine reading (at most one kind per reading,
so the rates must add up to at most 1). Invalid variants are sent as extra messages next to the
genuine reading, so the clean data stays complete and every reject is countable:

- duplicate: the reading's exact bytes are sent again (with the next interval).
- late: the reading is held back and sent on a later calendar day in every time zone (or when
  the run ends).
- clock_skew: the reading's timestamp is shifted by 1-5 minutes (in place, still valid).
- future: an extra copy stamped 2-30 days after the later of the reading and the end of the
  simulated window, so it is more than a day ahead of ingest time.
- malformed: an extra copy that is not JSON (cut short, or Python-style quotes).
- wrong_type: an extra copy with a non-numeric metric or an unparseable timestamp.
- out_of_range: an extra copy with energy < 0 or > 1000 kWh, voltage <= 0 or > 1000 V, or
  battery outside 0-100 %.
- missing_field: an extra copy without one required field.
- unknown_device: an extra copy from a device id that is not in master data (MTR-99xxxx).
- correction: the reading is sent with a wrong energy, and the right one follows with
  `"is_correction": true` as late as a late reading (or when the run ends).

Fault logs get garbage lines (cut inside the header) at the malformed rate.
"""

from __future__ import annotations

import heapq
import json
import random
from collections.abc import Collection
from dataclasses import dataclass, fields
from datetime import UTC, datetime

from smartmeter.simulator.faultlogs import garbage_line
from smartmeter.simulator.model import TIMESTAMP_FORMAT, format_timestamp
from smartmeter.simulator.serializer import encode_document

DAY_S = 86_400
# A local day lasts at most 25 hours, so a reading held this long is sent on a later day in any zone.
_LATE_MIN_DELAY_S = 25 * 3600
_LATE_EXTRA_DELAY_S = 12 * 3600
REQUIRED_FIELDS = (
    ("device_id",), ("customer_id",), ("timestamp",), ("status",),
    ("metrics", "energy_kwh"), ("metrics", "voltage"), ("metrics", "battery_pct"),
)

Message = tuple[bytes, str]


@dataclass(frozen=True)
class ChaosRates:
    duplicate: float = 0.0
    late: float = 0.0
    clock_skew: float = 0.0
    future: float = 0.0
    malformed: float = 0.0
    wrong_type: float = 0.0
    out_of_range: float = 0.0
    missing_field: float = 0.0
    unknown_device: float = 0.0
    correction: float = 0.0

    @classmethod
    def defaults(cls) -> ChaosRates:
        """What `--chaos` turns on: 1 % each, and the rarer far-future clock."""
        rates = {kind: 0.01 for kind in cls.kinds()}
        rates["future"] = 0.001
        return cls(**rates)

    @classmethod
    def kinds(cls) -> tuple[str, ...]:
        return tuple(field.name for field in fields(cls))

    def total(self) -> float:
        return sum(getattr(self, kind) for kind in self.kinds())

    def validate(self) -> None:
        for kind in self.kinds():
            if not 0 <= getattr(self, kind) <= 1:
                raise ValueError(f"chaos {kind} rate must be between 0 and 1")
        if self.total() > 1:
            raise ValueError(f"chaos rates add up to {self.total():.3f}; they must not exceed 1")


def _parse_timestamp(text: str) -> int:
    return int(datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=UTC).timestamp())


class TelemetryChaos:
    def __init__(
        self, rates: ChaosRates, *, seed: int, known_device_ids: Collection[str], window_end_at: int,
    ) -> None:
        rates.validate()
        self.rates = rates
        self.counts = dict.fromkeys(rates.kinds(), 0)
        self._rng = random.Random(f"{seed}:chaos")
        self._log_rng = random.Random(f"{seed}:chaos-logs")
        self._known = set(known_device_ids)
        self._window_end_at = window_end_at
        self._total = rates.total()
        cumulative = 0.0
        self._thresholds = []
        for kind in rates.kinds():
            if getattr(rates, kind) > 0:
                cumulative += getattr(rates, kind)
                self._thresholds.append((cumulative, kind))
        self._resend: list[Message] = []
        self._held: list[tuple[int, int, Message]] = []
        self._held_sequence = 0
        self.garbage_lines = 0

    def apply(self, messages: list[Message], now_at: int) -> list[Message]:
        """The messages to send for one interval, chaos included, in send order."""
        out: list[Message] = self._resend
        self._resend = []
        while self._held and self._held[0][0] <= now_at:
            out.append(heapq.heappop(self._held)[2])
        if not self._total:
            out.extend(messages)
            return out
        draw = self._rng.random
        total = self._total
        append = out.append
        for message in messages:
            chance = draw()
            if chance >= total:
                append(message)
                continue
            kind = next(kind for threshold, kind in self._thresholds if chance < threshold)
            self.counts[kind] += 1
            if kind == "duplicate":
                append(message)
                self._resend.append(message)
            elif kind == "late":
                self._hold(message, now_at)
            elif kind == "correction":
                append(self._miscounted(message))
                self._hold(self._corrected(message), now_at)
            elif kind == "clock_skew":
                append(self._skewed(message))
            else:
                append(message)
                append(getattr(self, f"_{kind}")(message))
        return out

    def _hold(self, message: Message, now_at: int) -> None:
        """Send `message` on a later calendar day than its own timestamp, local or UTC."""
        release_at = now_at + _LATE_MIN_DELAY_S + self._rng.randrange(_LATE_EXTRA_DELAY_S)
        self._held_sequence += 1
        heapq.heappush(self._held, (release_at, self._held_sequence, message))

    def drain(self) -> list[Message]:
        """Everything still held back; sent when the run ends."""
        out = self._resend + [entry[2] for entry in sorted(self._held)]
        self._resend, self._held = [], []
        return out

    def garble(self, lines: list[tuple[bytes | None, str]]) -> list[tuple[bytes | None, str]]:
        """Fault-log lines with garbage lines added at the malformed rate."""
        rate = self.rates.malformed
        if not rate:
            return lines
        out = []
        for key, line in lines:
            out.append((key, line))
            if self._log_rng.random() < rate:
                self.garbage_lines += 1
                out.append((key, garbage_line(line, self._log_rng)))
        return out

    # -- one function per kind, each returning the extra or replacement message ------------------

    def _skewed(self, message: Message) -> Message:
        document = json.loads(message[1])
        shift_s = self._rng.choice((-1, 1)) * self._rng.randint(60, 300)
        document["timestamp"] = format_timestamp(_parse_timestamp(document["timestamp"]) + shift_s)
        return message[0], encode_document(document)

    def _miscounted(self, message: Message) -> Message:
        document = json.loads(message[1])
        metrics = document["metrics"]
        metrics["energy_kwh"] = round(metrics["energy_kwh"] * self._rng.uniform(1.5, 3) + 0.01, 3)
        return message[0], encode_document(document)

    @staticmethod
    def _corrected(message: Message) -> Message:
        return message[0], encode_document({**json.loads(message[1]), "is_correction": True})

    def _future(self, message: Message) -> Message:
        document = json.loads(message[1])
        base_at = max(_parse_timestamp(document["timestamp"]), self._window_end_at)
        document["timestamp"] = format_timestamp(base_at + self._rng.randint(2 * DAY_S, 30 * DAY_S))
        return message[0], encode_document(document)

    def _malformed(self, message: Message) -> Message:
        value = message[1]
        if self._rng.random() < 0.8:
            return message[0], value[: self._rng.randrange(1, len(value) - 1)]
        return message[0], value.replace('"', "'")

    def _wrong_type(self, message: Message) -> Message:
        document = json.loads(message[1])
        metrics = document["metrics"]
        variant = self._rng.randrange(4)
        if variant == 0:
            metrics["energy_kwh"] = f"{metrics['energy_kwh']}abc"
        elif variant == 1:
            metrics["voltage"] = {"value": metrics["voltage"], "unit": "V"}
        elif variant == 2:
            metrics["battery_pct"] = "high"
        else:
            document["timestamp"] = "yesterday at noon"
        return message[0], encode_document(document)

    def _out_of_range(self, message: Message) -> Message:
        document = json.loads(message[1])
        metrics = document["metrics"]
        rng = self._rng
        variant = rng.randrange(6)
        if variant == 0:
            metrics["energy_kwh"] = -round(rng.uniform(0.001, 5), 3)
        elif variant == 1:
            metrics["energy_kwh"] = round(rng.uniform(1000.001, 99999), 3)
        elif variant == 2:
            metrics["voltage"] = -round(rng.uniform(0, 230), 1)
        elif variant == 3:
            metrics["voltage"] = round(rng.uniform(1000.1, 5000), 1)
        elif variant == 4:
            metrics["battery_pct"] = -rng.randint(1, 50)
        else:
            metrics["battery_pct"] = rng.randint(101, 255)
        return message[0], encode_document(document)

    def _missing_field(self, message: Message) -> Message:
        document = json.loads(message[1])
        path = self._rng.choice(REQUIRED_FIELDS)
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        del parent[path[-1]]
        return message[0], encode_document(document)

    def _unknown_device(self, message: Message) -> Message:
        document = json.loads(message[1])
        device_id = f"MTR-99{self._rng.randrange(10_000):04d}"
        while device_id in self._known:
            device_id = f"MTR-99{self._rng.randrange(10_000):04d}"
        document["device_id"] = device_id
        return device_id.encode(), encode_document(document)
