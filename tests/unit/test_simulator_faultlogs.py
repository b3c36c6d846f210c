"""Fault-log dialects: every line matches its documented pattern and round-trips its fields."""

from __future__ import annotations

import csv
import random
from datetime import UTC, datetime

import pytest

from smartmeter.config import REPO_ROOT
from smartmeter.simulator import faultlogs
from smartmeter.simulator.faultlogs import FAULT_CODES, LINE_PATTERNS, dialect_for_firmware, format_event, format_note
from smartmeter.simulator.model import FaultEvent

EVENT_AT = int(datetime(2025, 12, 9, 6, 25, 40, tzinfo=UTC).timestamp())
SEVERITY_WORDS = {
    "ELX": {"INFO": "INFO", "WARN": "WARNING", "ERROR": "ERROR", "CRIT": "CRITICAL"},
    "KMF": {"info": "INFO", "warning": "WARNING", "error": "ERROR", "critical": "CRITICAL"},
    "SGX": {"0": "INFO", "1": "WARNING", "2": "ERROR", "3": "CRITICAL"},
}
TIME_FORMATS = {"ELX": "%Y-%m-%dT%H:%M:%SZ", "KMF": "%d/%m/%Y %H:%M:%S"}


def _parsed_at(dialect: str, match) -> int:
    if dialect == "SGX":
        return int(match.group("epoch"))
    return int(datetime.strptime(match.group("ts"), TIME_FORMATS[dialect]).replace(tzinfo=UTC).timestamp())


@pytest.mark.parametrize("dialect", ["ELX", "KMF", "SGX"])
@pytest.mark.parametrize("code", sorted(FAULT_CODES))
def test_every_code_in_every_dialect_matches_and_round_trips(dialect, code):
    for severity in ("INFO", "WARNING", "ERROR", "CRITICAL"):
        event = FaultEvent("MTR-10001", EVENT_AT, code, severity, "Voltage 198.2 V below limit")
        line = format_event(event, dialect)
        match = LINE_PATTERNS[dialect].match(line)
        assert match, line
        assert sum(1 for pattern in LINE_PATTERNS.values() if pattern.match(line)) == 1
        assert match.group("device_id") == "MTR-10001"
        assert match.group("code") == code
        assert SEVERITY_WORDS[dialect][match.group("sev")] == severity
        assert _parsed_at(dialect, match) == EVENT_AT
        if dialect != "SGX":
            assert match.group("event_type") == FAULT_CODES[code][0]
        assert match.group("message") == "Voltage 198.2 V below limit"


@pytest.mark.parametrize("line, dialect", [
    ("2025-12-09T06:25:40Z WARN MTR-10001 B101 BATTERY_LOW Battery at 12 percent", "ELX"),
    ('[09/12/2025 06:25:40] MTR-10003 <warning> code=V201 type=VOLTAGE_SAG msg="Voltage 198.2 V below limit"', "KMF"),
    ("1765261540|2|X601|MTR-10005|Meter cover opened", "SGX"),
    ("NOTE 2025-12-09 06:25:40 UTC MTR-10001 technician reports display flickering, no action taken", "NOTE"),
])
def test_the_documented_example_lines_match_their_pattern(line, dialect):
    assert LINE_PATTERNS[dialect].match(line)
    assert line in faultlogs.__doc__


def test_messages_with_separator_characters_stay_parseable():
    event = FaultEvent("MTR-10005", EVENT_AT, "I001", "INFO", 'said "hi" | then left')
    for dialect in ("KMF", "SGX"):
        assert LINE_PATTERNS[dialect].match(format_event(event, dialect))


def test_note_lines():
    line = format_note("MTR-10001", EVENT_AT, "technician reports display flickering, no action taken")
    assert line == "NOTE 2025-12-09 06:25:40 UTC MTR-10001 technician reports display flickering, no action taken"


def test_firmware_decides_the_dialect():
    assert dialect_for_firmware("ELX-4.2.1") == "ELX"
    assert dialect_for_firmware("KMF-2.7") == "KMF"
    assert dialect_for_firmware("SGX-1.9.3") == "SGX"


def test_garbage_lines_match_no_pattern_and_device_ids_are_found_for_keys():
    rng = random.Random(1)
    event = FaultEvent("MTR-10001", EVENT_AT, "B101", "WARNING", "Battery at 12 percent")
    for dialect in ("ELX", "KMF", "SGX"):
        for _ in range(200):
            garbage = faultlogs.garbage_line(format_event(event, dialect), rng)
            assert not any(pattern.match(garbage) for pattern in LINE_PATTERNS.values())
    assert faultlogs.device_id_in("1765261540|2|X601|MTR-10005|Meter cover opened") == "MTR-10005"
    assert faultlogs.device_id_in("no device here") is None


def test_dbt_seed_csv_equals_the_code_table():
    path = REPO_ROOT / "dbt-project" / "seeds" / "fault_event_codes.csv"
    rows = list(csv.DictReader(path.open()))
    assert {row["event_code"]: (row["event_type"], row["default_severity"]) for row in rows} == FAULT_CODES
    assert [list(row) for row in rows][0] == ["event_code", "event_type", "default_severity"]
