"""Each chaos kind appears at its configured rate, recognised from the output alone."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from decimal import Decimal

import pytest

from smartmeter.calendar import reading_local_time
from smartmeter.simulator.chaos import ChaosRates, TelemetryChaos
from smartmeter.simulator.faultlogs import LINE_PATTERNS
from tests.unit.test_simulator_support import (
    START_DAY,
    TELEMETRY,
    backfill,
    contract_errors,
    epoch,
    parse_time,
    sample_devices,
)

DEVICES = sample_devices(200)
KNOWN = {device.device_id: device.customer_id for device in DEVICES}
DAYS = 3
READINGS = len(DEVICES) * DAYS * 96
RATE = 0.02
WINDOW_END_AT = epoch(START_DAY) + DAYS * 86400
# The far ends of the zones in use (UTC+14, UTC-12), and the usual ones.
ZONES = ("Pacific/Kiritimati", "Europe/Berlin", "UTC", "America/New_York", "Etc/GMT+12")


def _classify(value: str, seen: set[str], state: dict) -> str:
    """Which chaos kind produced `value`, judged only by the message and what came before it."""
    try:
        document = json.loads(value, parse_float=Decimal)
    except ValueError:
        return "malformed"
    metrics = document.get("metrics", {})
    required = [document.get(name) for name in ("device_id", "customer_id", "timestamp", "status")]
    required += [metrics.get(name) for name in ("energy_kwh", "voltage", "battery_pct")]
    if any(item is None for item in required):
        return "missing_field"
    numbers = [metrics[name] for name in ("energy_kwh", "voltage", "battery_pct")]
    if any(not isinstance(n, (int, Decimal)) or isinstance(n, bool) for n in numbers):
        return "wrong_type"
    try:
        reading_at = parse_time(document["timestamp"])
    except ValueError:
        return "wrong_type"
    energy, voltage, battery = numbers
    if energy < 0 or energy > 1000 or voltage <= 0 or voltage > 1000 or battery < 0 or battery > 100:
        return "out_of_range"
    if document["device_id"] not in KNOWN:
        return "unknown_device"
    if reading_at > WINDOW_END_AT + 86400:
        return "future"
    if document.get("is_correction") is True:
        return "correction"
    if value in seen:
        return "duplicate"
    if reading_at % 900:
        return "clock_skew"
    if reading_at < state["latest_at"]:
        return "late"
    state["latest_at"] = reading_at
    return "genuine"


RATES = ChaosRates(**{kind: RATE for kind in ChaosRates.kinds()})
CHAOTIC = backfill(DEVICES, seed=8, days=DAYS, rates=RATES, background_events=False)
CLEAN = backfill(DEVICES, seed=8, days=DAYS, background_events=False)


def _kinds() -> Counter:
    seen: set[str] = set()
    state = {"latest_at": 0}
    kinds = Counter()
    for _, value in CHAOTIC.producer.on(TELEMETRY):
        kinds[_classify(value, seen, state)] += 1
        seen.add(value)
    return kinds


KINDS = _kinds()


@pytest.mark.parametrize("kind", ChaosRates.kinds())
def test_each_chaos_kind_appears_at_its_rate(kind):
    expected = RATE * READINGS
    tolerance = 5 * math.sqrt(expected * (1 - RATE)) + 5
    assert abs(KINDS[kind] - expected) <= tolerance, (kind, KINDS[kind], expected)


def test_rejectable_copies_come_on_top_of_the_clean_stream():
    genuine = [value for _, value in CHAOTIC.producer.on(TELEMETRY) if not contract_errors(value, KNOWN)]
    clean = {value for _, value in CLEAN.producer.on(TELEMETRY)}
    valid_originals = {value for value in genuine if value in clean}
    # Every clean reading arrives once (late ones later), except those whose clock was skewed and
    # those sent wrong, then corrected.
    assert len(clean) - len(valid_originals) == KINDS["clock_skew"] + KINDS["correction"]


def test_a_corrected_reading_is_sent_wrong_first_and_right_later():
    clean = {value for _, value in CLEAN.producer.on(TELEMETRY)}
    energies_sent: dict[tuple[str, str], list] = {}
    corrections = 0
    for _, value in CHAOTIC.producer.on(TELEMETRY):
        if contract_errors(value, KNOWN):
            continue
        document = json.loads(value)
        key = (document["device_id"], document["timestamp"])
        if document.pop("is_correction", False) is True:
            corrections += 1
            assert json.dumps(document) in clean, "the correction carries the right reading"
            assert energies_sent.get(key), "a wrong copy came first"
            assert document["metrics"]["energy_kwh"] not in energies_sent[key]
        else:
            energies_sent.setdefault(key, []).append(document["metrics"]["energy_kwh"])
    assert corrections == KINDS["correction"] > 0


def _earlier_day_everywhere(reading_at: int, latest_at: int) -> bool:
    return all(reading_local_time(reading_at, zone).date() < reading_local_time(latest_at, zone).date() for zone in ZONES)


def test_late_readings_are_for_an_earlier_local_day_in_every_zone_or_sent_when_the_run_ends():
    messages = [value for _, value in CHAOTIC.producer.on(TELEMETRY)]
    waiting: list[tuple[int, int]] = []  # late readings not yet followed by a genuine one: (position, reading_at)
    same_day_positions, earlier_day = [], 0
    seen: set[str] = set()
    state = {"latest_at": 0}
    for position, value in enumerate(messages):
        kind = _classify(value, seen, state)
        seen.add(value)
        if kind == "genuine":
            # Late readings go out with the interval after them: compare with that interval's day.
            sent_at = parse_time(json.loads(value)["timestamp"])
            for late_position, reading_at in waiting:
                if _earlier_day_everywhere(reading_at, sent_at):
                    earlier_day += 1
                else:
                    same_day_positions.append(late_position)
            waiting = []
        elif kind == "late":
            waiting.append((position, parse_time(json.loads(value)["timestamp"])))
    same_day_positions += [late_position for late_position, _ in waiting]
    assert earlier_day > KINDS["late"] / 3
    # The rest were still held when the run ended: nothing newer is sent after the first of them.
    first = min(same_day_positions)
    newest_before_at = max(parse_time(json.loads(v)["timestamp"]) for v in messages[:first] if not contract_errors(v, KNOWN))
    for value in messages[first:]:
        if not contract_errors(value, KNOWN):
            assert parse_time(json.loads(value)["timestamp"]) <= newest_before_at


def test_no_chaos_means_no_extra_messages():
    assert len(CLEAN.producer.on(TELEMETRY)) == READINGS


def test_garbage_fault_log_lines_at_the_malformed_rate_match_no_dialect():
    chaos = TelemetryChaos(ChaosRates(malformed=0.05), seed=1, known_device_ids=set(), window_end_at=0)
    rng = random.Random(3)
    lines = [(b"MTR-10001", f"{1765261540 + n}|{rng.randrange(4)}|B101|MTR-10001|Battery at 12 percent")
             for n in range(20_000)]
    out = chaos.garble(lines)
    garbage = [line for _, line in out if not any(p.match(line) for p in LINE_PATTERNS.values())]
    assert len(out) - len(lines) == len(garbage) == chaos.garbage_lines
    assert abs(len(garbage) - 1000) <= 5 * math.sqrt(1000 * 0.95)


def test_rates_that_add_up_to_more_than_one_are_refused():
    with pytest.raises(ValueError, match="must not exceed 1"):
        ChaosRates(duplicate=0.6, late=0.6).validate()
