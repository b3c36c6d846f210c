"""The command line: argparse errors, environment defaults and clear errors when services are down."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from smartmeter.config import REPO_ROOT
from smartmeter.simulator.chaos import ChaosRates
from smartmeter.simulator.cli import build_parser, chaos_rates


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(*args: str, env: dict[str, str] | None = None, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "telemetry_simulator.py", *args], cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=timeout_s, env={**os.environ, **(env or {})},
    )


def test_unknown_option_is_an_argparse_error_with_exit_2():
    result = _run("--no-such-option")
    assert result.returncode == 2
    assert "usage: telemetry_simulator.py" in result.stderr
    assert "unrecognized arguments: --no-such-option" in result.stderr


def test_bad_values_and_bad_environment_exit_2():
    assert _run("--fault-rate", "1.5").returncode == 2
    assert _run("--interval-minutes", "7").returncode == 2
    assert _run("--start", "2025-12-01").returncode == 2
    assert _run("--chaos-late-rate", "0.7", "--chaos-duplicate-rate", "0.7").returncode == 2
    bad_env = _run("--help", env={"SIM_INTERVAL_SECONDS": "soon"})
    assert bad_env.returncode == 0  # --help wins before the environment is checked
    result = _run("--count", "1", env={"SIM_INTERVAL_SECONDS": "soon"})
    assert result.returncode == 2 and "SIM_INTERVAL_SECONDS" in result.stderr


def test_environment_sets_defaults_and_flags_win(monkeypatch):
    monkeypatch.setenv("SIM_TOPIC", "from_env")
    monkeypatch.setenv("SIM_INTERVAL_SECONDS", "0.5")
    monkeypatch.setenv("SIM_CHAOS_LATE_RATE", "0.2")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker:1234")
    parser, _ = build_parser()
    args = parser.parse_args([])
    assert (args.topic, args.interval, args.bootstrap_servers) == ("from_env", 0.5, "broker:1234")
    assert parser.parse_args(["--topic", "from_flag"]).topic == "from_flag"
    assert chaos_rates(args) == ChaosRates(late=0.2)
    chaos_on = chaos_rates(parser.parse_args(["--chaos"]))
    assert chaos_on.late == 0.2 and chaos_on.duplicate == ChaosRates.defaults().duplicate > 0


def test_unreachable_kafka_names_host_and_port_and_how_to_start_the_stack(tmp_path):
    log = tmp_path / "meter.log"
    log.write_text("1765261540|2|X601|MTR-10005|Meter cover opened\n")
    port = _free_port()
    result = _run("--ship-log", str(log), "--bootstrap-servers", f"127.0.0.1:{port}",
                  "--connect-retries", "2", "--connect-backoff", "0.1", "--connect-timeout", "1")
    assert result.returncode == 1
    assert f"cannot reach Kafka at 127.0.0.1:{port} after 2 attempt(s)" in result.stderr
    assert "./initial-setup.sh --native (or ./lakehouse up)" in result.stderr
    assert "attempt 1/2" in result.stderr


def test_unreachable_postgres_names_host_and_port():
    port = _free_port()
    result = _run("--count", "1", "--connect-retries", "1",
                  env={"POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": str(port)})
    assert result.returncode == 1
    assert f"cannot reach PostgreSQL at 127.0.0.1:{port}" in result.stderr
    assert "./initial-setup.sh --native" in result.stderr


def test_missing_log_file_is_a_clear_error(tmp_path):
    result = _run("--ship-log", str(tmp_path / "nope.log"))
    assert result.returncode == 1
    assert "nope.log does not exist" in result.stderr


def test_zones_are_checked_before_anything_connects():
    assert _run("--provision-second-zone", "Mars/Olympus", "--provision-customers", "10").returncode == 2
    alone = _run("--provision-second-zone", "America/New_York")
    assert alone.returncode == 2 and "needs --provision-customers" in alone.stderr
    unmapped = _run("--count", "1", env={"LAKEHOUSE_TIMEZONE": "Asia/Tokyo"})
    assert unmapped.returncode == 1 and "'Asia/Tokyo' has no holiday country" in unmapped.stderr
    unknown = _run("--count", "1", env={"LAKEHOUSE_TIMEZONE": "Mars/Olympus"})
    assert unknown.returncode == 1 and "is not an IANA time zone name" in unknown.stderr
