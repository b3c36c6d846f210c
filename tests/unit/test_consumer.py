"""telemetry_consumer.py: message formatting, rate summary and failure paths."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from smartmeter.config import REPO_ROOT
from smartmeter.consumer import RateSummary, format_message

READING = {"device_id": "MTR-10000", "customer_id": "CUST-8000", "timestamp": "2025-12-09T06:15:00Z",
           "metrics": {"energy_kwh": 0.42, "voltage": 229.6, "battery_pct": 78}, "status": "OK"}


def test_json_is_indented_under_a_header_with_partition_offset_and_key():
    text = format_message(1, 42, b"MTR-10000", json.dumps(READING).encode(), compact=False)
    header, body = text.split("\n", 1)
    assert header == "[partition 1 | offset 42 | key MTR-10000]"
    assert json.loads(body) == READING
    assert '\n  "metrics": {' in body


def test_text_lines_and_broken_json_are_shown_as_they_are():
    line = "1765261540|2|X601|MTR-10005|Meter cover opened"
    assert format_message(0, 7, b"MTR-10005", line.encode(), compact=False) == (
        f"[partition 0 | offset 7 | key MTR-10005] {line}")
    assert format_message(2, 3, None, b'{"device_id": "MTR', compact=False).endswith('] {"device_id": "MTR')
    compact = format_message(0, 1, b"k", json.dumps(READING).encode(), compact=True)
    assert "\n" not in compact and json.loads(compact.split("] ", 1)[1]) == READING


def test_rate_summary_counts_per_window():
    now = [100.0]
    summary = RateSummary(clock=lambda: now[0])
    for _ in range(50):
        summary.add()
    now[0] = 105.0
    assert summary.due()
    assert summary.line() == "-- 50 messages so far, 10.0 msg/s over the last 5s"
    assert not summary.due()
    now[0] = 110.0
    assert summary.final() == "Consumed 50 messages in 10.0s (5.0 msg/s)"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "telemetry_consumer.py", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60, env=dict(os.environ))


def test_bad_option_exits_2():
    result = _run("--max-messages", "-3")
    assert result.returncode == 2 and "usage: telemetry_consumer.py" in result.stderr


def test_unreachable_kafka_is_a_clear_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = _run("--bootstrap-servers", f"127.0.0.1:{port}", "--connect-retries", "1", "--connect-timeout", "1")
    assert result.returncode == 1
    assert f"cannot reach Kafka at 127.0.0.1:{port}" in result.stderr


def test_consumer_errors_are_reported_once_while_they_repeat_and_a_fatal_one_is_kept(capsys):
    from confluent_kafka import KafkaError

    from smartmeter.consumer import ErrorReporter

    report = ErrorReporter()
    refused = KafkaError(KafkaError._TRANSPORT, "Connection refused")
    report(refused)
    report(refused)
    assert report.fatal is None
    fatal = KafkaError(KafkaError._FENCED, "fenced", fatal=True)
    report(fatal)
    assert report.fatal is fatal
    assert capsys.readouterr().err.count("Connection refused") == 1


def test_top_level_scripts_run_with_a_python_that_lacks_the_dependencies(tmp_path):
    """A bare interpreter (no site-packages) re-runs the script in the project's environment."""
    result = subprocess.run([sys.executable, "-S", str(REPO_ROOT / "telemetry_consumer.py"), "--help"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--max-messages" in result.stdout
