r"""Fault-log lines for topic `meter_fault_logs`, in the firmware dialects real fleets mix.

Each Kafka message is one UTF-8 line keyed by the device id. Times are UTC. Canonical
severities are INFO, WARNING, ERROR and CRITICAL; each dialect spells them its own way.
The patterns below are the parsing contract for dbt (`LINE_PATTERNS` holds them compiled).

1. ELX (firmware ELX-*, model LG-E450):
     2025-12-09T06:25:40Z WARN MTR-10001 B101 BATTERY_LOW Battery at 12 percent
     ^(?P<ts>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z) (?P<sev>INFO|WARN|ERROR|CRIT)
      (?P<device_id>MTR-\d+) (?P<code>[A-Z]\d{3}) (?P<event_type>[A-Z_]+) (?P<message>.*)$
   (one line, single spaces; INFO/WARN/ERROR/CRIT = INFO/WARNING/ERROR/CRITICAL)

2. KMF (firmware KMF-*, model KM-AX2), day/month/year:
     [09/12/2025 06:25:40] MTR-10003 <warning> code=V201 type=VOLTAGE_SAG msg="Voltage 198.2 V below limit"
     ^\[(?P<ts>\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2})\] (?P<device_id>MTR-\d+)
      <(?P<sev>info|warning|error|critical)> code=(?P<code>[A-Z]\d{3})
      type=(?P<event_type>[A-Z_]+) msg="(?P<message>[^"]*)"$

3. SGX (firmware SGX-*, model SG-S34), epoch seconds, numeric severity
   (0 info, 1 warning, 2 error, 3 critical), no event type (it follows from the code):
     1765261540|2|X601|MTR-10005|Meter cover opened
     ^(?P<epoch>\d{9,11})\|(?P<sev>[0-3])\|(?P<code>[A-Z]\d{3})\|(?P<device_id>MTR-\d+)\|(?P<message>[^|]*)$

4. NOTE, free text from operators or field technicians, any firmware (severity INFO, event
   type NOTE, no code):
     NOTE 2025-12-09 06:25:40 UTC MTR-10001 technician reports display flickering, no action taken
     ^NOTE (?P<ts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) UTC (?P<device_id>MTR-\d+) (?P<message>.+)$

Codes are the same in every dialect (`FAULT_CODES`, also dbt-project/seeds/fault_event_codes.csv).
Chaos adds garbage lines (cut inside the header) that match none of the patterns.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime

from smartmeter.simulator.model import FaultEvent

SEVERITIES = ("INFO", "WARNING", "ERROR", "CRITICAL")

# code -> (event type, default severity)
FAULT_CODES: dict[str, tuple[str, str]] = {
    "B101": ("BATTERY_LOW", "WARNING"),
    "B102": ("BATTERY_FAILURE", "ERROR"),
    "V201": ("VOLTAGE_SAG", "WARNING"),
    "V202": ("VOLTAGE_SWELL", "WARNING"),
    "C301": ("COMM_LOSS", "ERROR"),
    "C302": ("COMM_RESTORED", "INFO"),
    "R401": ("REGISTER_STUCK", "ERROR"),
    "T501": ("CLOCK_DRIFT", "WARNING"),
    "X601": ("TAMPER_COVER_OPEN", "CRITICAL"),
    "I001": ("REBOOT", "INFO"),
    "I002": ("SELF_TEST_OK", "INFO"),
}
NOTE_EVENT_TYPE = "NOTE"

_ELX_SEVERITY = {"INFO": "INFO", "WARNING": "WARN", "ERROR": "ERROR", "CRITICAL": "CRIT"}
_KMF_SEVERITY = {severity: severity.lower() for severity in SEVERITIES}
_SGX_SEVERITY = {severity: str(number) for number, severity in enumerate(SEVERITIES)}

LINE_PATTERNS: dict[str, re.Pattern[str]] = {
    "ELX": re.compile(
        r"^(?P<ts>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z) (?P<sev>INFO|WARN|ERROR|CRIT) "
        r"(?P<device_id>MTR-\d+) (?P<code>[A-Z]\d{3}) (?P<event_type>[A-Z_]+) (?P<message>.*)$"
    ),
    "KMF": re.compile(
        r"^\[(?P<ts>\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2})\] (?P<device_id>MTR-\d+) "
        r"<(?P<sev>info|warning|error|critical)> code=(?P<code>[A-Z]\d{3}) "
        r'type=(?P<event_type>[A-Z_]+) msg="(?P<message>[^"]*)"$'
    ),
    "SGX": re.compile(
        r"^(?P<epoch>\d{9,11})\|(?P<sev>[0-3])\|(?P<code>[A-Z]\d{3})\|(?P<device_id>MTR-\d+)\|"
        r"(?P<message>[^|]*)$"
    ),
    "NOTE": re.compile(
        r"^NOTE (?P<ts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) UTC (?P<device_id>MTR-\d+) "
        r"(?P<message>.+)$"
    ),
}

_DEVICE_ID = re.compile(r"MTR-\d+")

FIELD_NOTES = (
    "technician reports display flickering, no action taken",
    "customer called about high bill, reading verified on site",
    "meter seal checked during routine visit, intact",
    "access blocked by locked gate, visit rescheduled",
    "customer reports meter buzzing at night",
    "antenna repositioned to improve signal",
)


def dialect_for_firmware(firmware_version: str) -> str:
    prefix = firmware_version.split("-", 1)[0].upper()
    return prefix if prefix in ("ELX", "KMF", "SGX") else "ELX"


def _utc(event_at: int) -> datetime:
    return datetime.fromtimestamp(event_at, UTC)


def format_event(event: FaultEvent, dialect: str) -> str:
    """One log line for `event` in `dialect` (ELX, KMF or SGX)."""
    message = event.message.replace("\n", " ")
    if dialect == "KMF":
        return (
            f"[{_utc(event.event_at):%d/%m/%Y %H:%M:%S}] {event.device_id} "
            f"<{_KMF_SEVERITY[event.severity]}> code={event.code} "
            f'type={FAULT_CODES[event.code][0]} msg="{message.replace(chr(34), chr(39))}"'
        )
    if dialect == "SGX":
        return (
            f"{event.event_at}|{_SGX_SEVERITY[event.severity]}|{event.code}|{event.device_id}|"
            f"{message.replace('|', '/')}"
        )
    return (
        f"{_utc(event.event_at):%Y-%m-%dT%H:%M:%SZ} {_ELX_SEVERITY[event.severity]} "
        f"{event.device_id} {event.code} {FAULT_CODES[event.code][0]} {message}"
    )


def format_note(device_id: str, noted_at: int, text: str) -> str:
    return f"NOTE {_utc(noted_at):%Y-%m-%d %H:%M:%S} UTC {device_id} {text}"


def garbage_line(line: str, rng: random.Random) -> str:
    """A line cut off inside its header, as a flaky serial link or full buffer leaves it."""
    header_end = max(2, len(line) // 3)
    for _ in range(8):
        candidate = line[: rng.randrange(1, header_end)]
        if not any(pattern.match(candidate) for pattern in LINE_PATTERNS.values()):
            return candidate
    return "\ufffd" + line[:header_end]


def device_id_in(line: str) -> str | None:
    """The first device id in a free-form log line, used as the Kafka key when shipping files."""
    match = _DEVICE_ID.search(line)
    return match.group(0) if match else None

