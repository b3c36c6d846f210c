"""Injected faults change the readings as their labels say, and emit matching log lines."""

from __future__ import annotations

import csv
import json
import random
from decimal import Decimal

import pytest

from smartmeter.simulator.faultlogs import LINE_PATTERNS
from smartmeter.simulator.faults import FAULT_TYPES, observed_labels, plan_faults, write_labels_csv
from smartmeter.simulator.model import FaultEpisode
from tests.unit.test_simulator_support import (
    LOGS,
    START_DAY,
    TELEMETRY,
    backfill,
    epoch,
    parse_time,
    segment_devices,
)

DEVICES = segment_devices(4)  # 12 meters, ELX/KMF/SGX firmware in turn
START_AT = epoch(START_DAY)
HOUR = 3600


def _episode(device_number: int, fault_type: str, start_hour: int, hours: int) -> FaultEpisode:
    return FaultEpisode(DEVICES[device_number].device_id, fault_type,
                        START_AT + start_hour * HOUR, START_AT + (start_hour + hours) * HOUR)


EPISODES = [
    _episode(0, "REGISTER_STUCK", 5, 10),
    _episode(1, "COMM_DROPOUT", 8, 6),
    _episode(2, "TAMPER", 12, 3),
    _episode(3, "BATTERY_FAILURE", 2, 40),
    _episode(4, "VOLTAGE_INSTABILITY", 6, 20),
    _episode(5, "CLOCK_DRIFT", 1, 40),
]
FAULTY = backfill(DEVICES, seed=4, days=2, episodes=EPISODES, background_events=False)
HEALTHY = backfill(DEVICES, seed=4, days=2, background_events=False)


def _readings(run, episode: FaultEpisode) -> list[dict]:
    out = []
    for _, value in run.producer.on(TELEMETRY):
        document = json.loads(value, parse_float=Decimal)
        if document["device_id"] == episode.device_id:
            out.append(document)
    return out


def _during(documents, episode, drift_s: int = 0) -> list[dict]:
    return [d for d in documents
            if episode.started_at < parse_time(d["timestamp"]) - drift_s <= episode.ended_at]


def _log_codes(run, episode) -> list[str]:
    codes = []
    for key, line in run.producer.on(LOGS):
        if key.decode() != episode.device_id:
            continue
        for pattern in LINE_PATTERNS.values():
            match = pattern.match(line)
            if match:
                codes.append(match.group("code"))
                break
        else:
            pytest.fail(f"log line matches no dialect: {line}")
    return codes


def test_stuck_register_reports_zero_energy_and_a_frozen_register():
    episode = EPISODES[0]
    during = _during(_readings(FAULTY, episode), episode)
    assert len(during) == 10 * 4
    assert {d["metrics"]["energy_kwh"] for d in during} == {0}
    assert len({d["metrics"]["register_kwh"] for d in during}) == 1
    assert {d["status"] for d in during} == {"ERROR"}
    assert "R401" in _log_codes(FAULTY, episode)


def test_comm_dropout_leaves_a_gap_the_register_still_counts():
    episode = EPISODES[1]
    faulty = _readings(FAULTY, episode)
    assert _during(faulty, episode) == []
    assert len(faulty) == 192 - 6 * 4
    healthy = _readings(HEALTHY, episode)
    missing = sum(d["metrics"]["energy_kwh"] for d in _during(healthy, episode))
    before = [d for d in faulty if parse_time(d["timestamp"]) <= episode.started_at][-1]
    after = [d for d in faulty if parse_time(d["timestamp"]) > episode.ended_at][0]
    jump = after["metrics"]["register_kwh"] - before["metrics"]["register_kwh"]
    assert jump == missing + after["metrics"]["energy_kwh"]
    assert missing > 0
    assert _log_codes(FAULTY, episode) == ["C301", "C302"]


def test_tamper_logs_cover_open_and_meters_less_with_a_warning():
    episode = EPISODES[2]
    faulty = _during(_readings(FAULTY, episode), episode)
    healthy = _during(_readings(HEALTHY, episode), episode)
    assert {d["status"] for d in faulty} <= {"WARNING", "ERROR"}
    assert sum(d["metrics"]["energy_kwh"] for d in faulty) < sum(d["metrics"]["energy_kwh"] for d in healthy) / 2
    codes = _log_codes(FAULTY, episode)
    assert codes[0] == "X601"
    x601 = [line for key, line in FAULTY.producer.on(LOGS) if "X601" in line]
    assert len(x601) == 1 and episode.device_id in x601[0]


def test_battery_failure_drains_to_error_logs_low_and_failure_then_replacement():
    episode = EPISODES[3]
    documents = _readings(FAULTY, episode)
    during = _during(documents, episode)
    assert min(d["metrics"]["battery_pct"] for d in during) < 5
    assert any(d["status"] == "ERROR" for d in during)
    after = [d for d in documents if parse_time(d["timestamp"]) > episode.ended_at]
    assert after and all(d["metrics"]["battery_pct"] == 100 for d in after)
    assert _log_codes(FAULTY, episode) == ["B101", "B102", "I001"]


def test_voltage_instability_pushes_many_readings_outside_en50160():
    episode = EPISODES[4]
    during = _during(_readings(FAULTY, episode), episode)
    outside = [d for d in during if not 207 <= d["metrics"]["voltage"] <= 253]
    assert len(outside) / len(during) > 0.2
    assert all(d["status"] != "OK" for d in outside)
    codes = _log_codes(FAULTY, episode)
    assert len(codes) == len(outside)
    assert set(codes) <= {"V201", "V202"}


def test_clock_drift_moves_timestamps_off_the_interval_grid():
    episode = EPISODES[5]
    documents = _readings(FAULTY, episode)
    off_grid = [d for d in documents if parse_time(d["timestamp"]) % 900]
    assert len(off_grid) > 0.8 * len(documents[4:-32])
    assert len({d["timestamp"] for d in documents}) == len(documents)
    assert "T501" in _log_codes(FAULTY, episode)
    assert any(d["status"] == "WARNING" for d in off_grid)


def test_faults_do_not_change_other_meters():
    faulty_ids = {episode.device_id for episode in EPISODES}
    def others(run):
        return [(key, value) for key, value in run.producer.on(TELEMETRY) if key.decode() not in faulty_ids]
    assert others(FAULTY) == others(HEALTHY)


def test_plan_gives_the_configured_share_of_meters_one_episode_inside_the_window():
    devices = segment_devices(100)
    window_end = START_AT + 7 * 86400
    episodes = plan_faults(devices, fault_rate=0.1, window_start_at=START_AT, window_end_at=window_end,
                           interval_s=900, rng=random.Random(1))
    assert len(episodes) == 30
    assert len({episode.device_id for episode in episodes}) == 30
    assert {episode.fault_type for episode in episodes} == set(FAULT_TYPES)
    for episode in episodes:
        assert START_AT <= episode.started_at < window_end
        assert episode.started_at % 900 == 0 and episode.ended_at > episode.started_at


def test_labels_show_only_what_the_stream_showed_and_are_written_as_csv(tmp_path):
    labels = observed_labels(EPISODES, START_AT + 20 * HOUR)
    by_type = {label[1]: label for label in labels}
    assert by_type["REGISTER_STUCK"][3] == EPISODES[0].ended_at
    assert by_type["BATTERY_FAILURE"][3] is None
    assert observed_labels(EPISODES, START_AT) == []
    path = tmp_path / "labels.csv"
    write_labels_csv(path, labels)
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == len(EPISODES)
    stuck = next(row for row in rows if row["fault_type"] == "REGISTER_STUCK")
    assert stuck == {"device_id": EPISODES[0].device_id, "fault_type": "REGISTER_STUCK",
                     "started_at": "2025-12-01T05:00:00Z", "ended_at": "2025-12-01T15:00:00Z"}
