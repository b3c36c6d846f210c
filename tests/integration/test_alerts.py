"""Health alerts out, against the native stack: each meter's move into or out of ACTION_REQUIRED
appears exactly once on the scope's alerts topic, also when a cycle is SIGKILLed while it
publishes, and when a run dies after publishing but before recording what it published.

Three meters send clean, complete local days; a reading at 5 % battery (BATTERY_FAILURE, so
UNHEALTHY) is planted on chosen days. The expected messages follow from those days alone:
  day 1: B fails                  -> B ACTION_REQUIRED since day 1
  day 2: B clean, C fails         -> B CLEARED since day 2, C ACTION_REQUIRED since day 2
  day 3: A fails, C clean         -> A ACTION_REQUIRED since day 3, C CLEARED since day 3
Every other active meter sends nothing, so it is UNHEALTHY (no readings) from day 1 on: one
ACTION_REQUIRED each, never repeated.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from smartmeter.config import REPO_ROOT
from smartmeter.pipeline.alerts import AlertPublisher
from smartmeter.trino_sql import TrinoSession
from tests.helpers.pipeline import (
    TELEMETRY_TEST_TOPIC,
    consume_all,
    first_devices,
    isolated_state,
    produce,
)

pytestmark = pytest.mark.integration

TODAY = datetime.now(UTC).date()
DAYS = [TODAY - timedelta(days=5), TODAY - timedelta(days=4), TODAY - timedelta(days=3)]
# Which of the three meters fails on which day (index into DAYS).
FAILING = {0: "B", 1: "C", 2: "A"}


def _local_day(device_id: str, customer_id: str, zone: str, day: date, fails: bool, register: float) -> tuple[list, float]:
    tz = ZoneInfo(zone)
    at = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC) + timedelta(minutes=15)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tz).astimezone(UTC)
    messages, index = [], 0
    while at <= end:
        register = round(register + 0.25, 3)
        battery = 5 if fails and index == 40 else 80
        doc = {"device_id": device_id, "customer_id": customer_id, "timestamp": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
               "metrics": {"energy_kwh": 0.25, "voltage": 230.0, "battery_pct": battery, "register_kwh": register},
               "status": "OK" if battery >= 20 else "WARNING", "interval_minutes": 15}
        messages.append((device_id, json.dumps(doc)))
        at += timedelta(minutes=15)
        index += 1
    return messages, register


class Meters:
    def __init__(self, state) -> None:
        zones = state.pipeline.device_zones()
        picked = first_devices(state.device_customers, 3)
        self.by_name = {name: (device_id, customer_id, zones[device_id])
                        for name, (device_id, customer_id) in zip("ABC", picked, strict=True)}
        self.registers = {name: 1000.0 for name in self.by_name}

    def day(self, index: int) -> list:
        out = []
        for name, (device_id, customer_id, zone) in self.by_name.items():
            messages, self.registers[name] = _local_day(device_id, customer_id, zone, DAYS[index],
                                                         FAILING[index] == name, self.registers[name])
            out += messages
        return out


def _published(state) -> list[dict]:
    messages = consume_all(state.pipeline.settings, state.pipeline.alerts_topic)
    return [json.loads(m.value) for m in sorted(messages, key=lambda m: (m.partition, m.offset))]


def _ours(state, messages: list[dict]) -> list[tuple]:
    names = {device_id: name for name, (device_id, _, _) in state.meters.by_name.items()}
    return sorted((names[m["device_id"]], m["status"], m["since_date"]) for m in messages if m["device_id"] in names)


def _assert_exactly_once(state, messages: list[dict]) -> None:
    ids = [m["alert_id"] for m in messages]
    assert len(ids) == len(set(ids)), "no alert is published twice"
    per_device = defaultdict(list)
    for m in messages:
        per_device[m["device_id"]].append(m["status"])
    ours = {device_id for device_id, _, _ in state.meters.by_name.values()}
    for device_id, statuses in per_device.items():
        expected = ["ACTION_REQUIRED", "CLEARED"] * len(statuses)
        assert statuses == expected[:len(statuses)], f"{device_id}: transitions alternate, starting into ACTION_REQUIRED"
        if device_id not in ours:
            assert statuses == ["ACTION_REQUIRED"], f"{device_id} sends nothing: one alert, never repeated"


@pytest.fixture(scope="module")
def state(settings):
    def fill(s):
        s.meters = Meters(s)
        s.telemetry = produce(settings, TELEMETRY_TEST_TOPIC, s.meters.day(0))

    with isolated_state(settings, fill) as s:
        s.pipeline.cycle()
        yield s


def test_a_meter_that_fails_is_announced_once(state):
    messages = _published(state)
    assert _ours(state, messages) == [("B", "ACTION_REQUIRED", DAYS[0].isoformat())]
    b = next(m for m in messages if m["device_id"] == state.meters.by_name["B"][0])
    assert b["customer_id"] == state.meters.by_name["B"][1]
    assert b["health_status"] == "UNHEALTHY" and "BATTERY_FAILURE" in b["reasons"]
    assert b["reading_date"] == DAYS[0].isoformat()
    silent = [m for m in messages if m["device_id"] not in {d for d, _, _ in state.meters.by_name.values()}]
    assert silent and all("MISSING_READINGS" in m["reasons"] for m in silent)
    _assert_exactly_once(state, messages)


def test_recovery_clears_also_after_a_run_with_alerts_off_and_a_run_without_news_publishes_nothing(state):
    produce(state.pipeline.settings, TELEMETRY_TEST_TOPIC, state.meters.day(1))
    published = len(_published(state))
    state.pipeline.lakehouse("pipeline", "cycle", extra_env={"LAKEHOUSE_ALERTS": "false"})
    assert len(_published(state)) == published, "LAKEHOUSE_ALERTS=false publishes nothing"
    # Turned back on, the next run publishes what changed meanwhile.
    state.pipeline.lakehouse("dbt", "run", "--select", "device_health")
    before = _published(state)
    assert _ours(state, before) == sorted([
        ("B", "ACTION_REQUIRED", DAYS[0].isoformat()),
        ("B", "CLEARED", DAYS[1].isoformat()),
        ("C", "ACTION_REQUIRED", DAYS[1].isoformat()),
    ])
    _assert_exactly_once(state, before)
    # A run that rescored every meter (new batch ids) but changed no status publishes nothing.
    state.pipeline.lakehouse("dbt", "run", "--select", "device_health")
    assert len(_published(state)) == len(before)


def test_killed_while_publishing_and_after_publishing_then_rerun_publishes_each_once(state):
    produce(state.pipeline.settings, TELEMETRY_TEST_TOPIC, state.meters.day(2))
    state.pipeline.run_and_kill(["pipeline", "cycle"], after_marker="alerts: publishing")
    # Whatever the kill left, now put the topic in the state of a run that died right after
    # producing: the transitions not yet on the topic go out without being recorded.
    scoped = state.pipeline.scoped_settings()
    publisher = AlertPublisher(scoped, progress=lambda _: None)
    publisher.sync()
    with TrinoSession(scoped) as trino:
        pending = publisher.transitions(trino, run_id=0, watermark=0)
    publisher.produce(pending)
    state.pipeline.cycle()
    state.pipeline.cycle()
    messages = _published(state)
    assert _ours(state, messages) == sorted([
        ("A", "ACTION_REQUIRED", DAYS[2].isoformat()),
        ("B", "ACTION_REQUIRED", DAYS[0].isoformat()),
        ("B", "CLEARED", DAYS[1].isoformat()),
        ("C", "ACTION_REQUIRED", DAYS[1].isoformat()),
        ("C", "CLEARED", DAYS[2].isoformat()),
    ])
    _assert_exactly_once(state, messages)


def test_the_consumer_shows_the_alerts(state):
    result = subprocess.run([sys.executable, "telemetry_consumer.py", "--topic", state.pipeline.alerts_topic,
                             "--from-beginning", "--max-messages", "1"], cwd=REPO_ROOT, env=state.pipeline.env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert '"status": "ACTION_REQUIRED"' in result.stdout, result.stdout
