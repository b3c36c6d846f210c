"""The failure paths of `./initial-setup.sh --docker`, against a stub `docker` that records every call.

The successful path runs for real in the compose test stage (tests/compose, on Podman). What it
can't provoke is tested here: no engine, a service that never gets healthy, a failing one-shot, a
failed `up`, and choosing Docker mode when no flag is given. The stub is a fake `docker` first on
PATH; it answers `docker info`, `docker compose version`, `config --services`, `ps --format json`
and the init `exec`s, and records each argv.

Safety: LAKEHOUSE_HOME is a temporary directory whose venv is a symlink to the running venv, so
the venv is reused but, should the script ever take the native path, it would find no state of
the shared native stack to stop or wipe (and the test checks it created none).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from smartmeter import compose
from smartmeter.config import REPO_ROOT

SERVICES = ["postgres", "objectstore", "objectstore-init", "kafka-kraft", "kafka-ui", "trino-coordinator", "dbt-transformations"]

STUB = textwrap.dedent('''\
    #!{python}
    """Stub docker: records argv as one JSON line, answers like Docker Compose v2 with an engine."""
    import json, os, sys
    from pathlib import Path

    args = sys.argv[1:]
    state = Path(os.environ["DOCKER_STUB_STATE"])
    scenario = os.environ.get("DOCKER_STUB_SCENARIO", "healthy")
    with open(state / "calls.jsonl", "a") as log:
        log.write(json.dumps(args) + "\\n")
    services = {services!r}

    if args[:1] == ["info"]:
        if scenario == "no-engine":
            print("Cannot connect to the Docker daemon", file=sys.stderr)
            sys.exit(1)
        print("Server Version: 28.2.2")
        sys.exit(0)
    if args[:1] != ["compose"]:
        sys.exit(0)
    rest = args[1:]
    while rest and rest[0] in ("--project-directory", "-f", "--env-file", "--profile", "-p"):
        rest = rest[2:]
    command = rest[0] if rest else ""
    if command == "version":
        print("2.40.3")
    elif command == "config":
        print("\\n".join(services))
    elif command == "up" and scenario == "up-fails":
        print("dependency failed to start: container trino-coordinator is unhealthy", file=sys.stderr)
        sys.exit(1)
    elif command == "ps":
        polls = state / "ps-count"
        count = int(polls.read_text()) + 1 if polls.exists() else 1
        polls.write_text(str(count))
        for service in services:
            row = {{"Name": service, "Service": service, "State": "running", "Health": "healthy", "ExitCode": 0}}
            if service == "objectstore-init":
                row.update(State="exited", Health="", ExitCode=1 if scenario == "init-fails" else 0)
            elif count < 3 and service in ("trino-coordinator", "dbt-transformations"):
                row.update(Health="starting")
            if scenario == "stuck" and service == "trino-coordinator":
                row.update(Health="starting")
            if scenario == "up-fails" and service in ("trino-coordinator", "dbt-transformations"):
                row.update(Health="unhealthy" if service == "trino-coordinator" else "", State="created"
                           if service == "dbt-transformations" else "running")
            print(json.dumps(row))
    elif command == "exec":
        rest = [a for a in rest[1:] if a != "-T"]
        service, script = rest[0], " ".join(rest[1:])
        if service == "kafka-kraft" and "--list" in script:
            print("\\n".join(["telemetry_raw", "meter_fault_logs", "telemetry_raw_test", "meter_fault_logs_test", "meter_alerts"]))
        elif service == "postgres":
            print("2" if "iceberg_catalog" in script else "3 5 10")
        elif service == "trino-coordinator":
            print("CREATE SCHEMA")
    elif command == "logs":
        print(f"stub logs of {{rest[-1]}}")
    sys.exit(0)
''')


@pytest.fixture
def stub(tmp_path):
    if sys.prefix == sys.base_prefix:
        pytest.skip("run inside the project venv (./lakehouse test) so initial-setup.sh can reuse it")
    bin_dir, state, home = tmp_path / "bin", tmp_path / "state", tmp_path / "home"
    for d in (bin_dir, state, home):
        d.mkdir()
    (home / "venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    docker = bin_dir / "docker"
    docker.write_text(STUB.format(python=sys.executable, services=SERVICES))
    docker.chmod(0o755)

    def run(*args: str, scenario: str = "healthy", timeout_s: int = 5) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
        env = {
            # Port overrides would change the printed endpoints this test checks against the defaults.
            **{k: v for k, v in os.environ.items()
               if not k.startswith(("DOCKER_", "COMPOSE_", "LAKEHOUSE_")) and not k.endswith("_PORT")},
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "LAKEHOUSE_HOME": str(home),
            "LAKEHOUSE_HEALTH_TIMEOUT": str(timeout_s),
            "DOCKER_STUB_STATE": str(state),
            "DOCKER_STUB_SCENARIO": scenario,
        }
        result = subprocess.run(["bash", str(REPO_ROOT / "initial-setup.sh"), *args], env=env, capture_output=True, text=True,
                                timeout=120, stdin=subprocess.DEVNULL)
        log = state / "calls.jsonl"
        calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        assert not (home / "data").exists() and not (home / "run").exists(), "the native path ran"
        assert "Native lakehouse setup" not in result.stdout
        return result, calls

    return run


def _compose_args(call: list[str]) -> list[str]:
    """The compose subcommand and its arguments, without the global options."""
    rest = call[1:]
    while rest and rest[0] in ("--project-directory", "-f", "--env-file", "--profile", "-p"):
        rest = rest[2:]
    return rest


def test_without_a_flag_a_docker_engine_that_answers_means_docker_mode(stub):
    result, calls = stub()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "using docker mode" in result.stderr
    assert calls[0] == ["info"]


def test_a_service_that_never_gets_healthy_is_named_and_its_logs_shown(stub):
    result, calls = stub("--docker", scenario="stuck", timeout_s=3)
    assert result.returncode != 0
    assert "never became healthy: trino-coordinator (starting)" in result.stderr
    assert "docker compose logs --tail 50 trino-coordinator" in result.stderr
    assert "stub logs of trino-coordinator" in result.stderr
    assert not any(_compose_args(c)[:1] == ["exec"] for c in calls if c[:1] == ["compose"]), "no init after a failed wait"


def test_a_failing_one_shot_stops_setup_at_once(stub):
    result, calls = stub("--docker", scenario="init-fails", timeout_s=600)
    assert result.returncode != 0
    assert "objectstore-init failed" in result.stderr and "exit code 1" in result.stderr
    assert "stub logs of objectstore-init" in result.stderr


def test_a_failed_up_shows_the_logs_of_the_services_that_are_not_healthy(stub):
    result, calls = stub("--docker", scenario="up-fails")
    assert result.returncode != 0
    assert "docker compose up -d failed" in result.stderr
    assert "stub logs of trino-coordinator" in result.stderr and "stub logs of dbt-transformations" in result.stderr
    assert "stub logs of postgres" not in result.stderr


def test_no_docker_engine_is_a_clear_error_before_anything_is_removed(stub):
    result, calls = stub("--docker", scenario="no-engine")
    assert result.returncode != 0
    assert "Docker engine does not answer" in result.stderr and "--native" in result.stderr
    assert calls == [["info"]], "nothing may be stopped or removed when the engine is not there"


# --------------------------------------------------------------------------- compose.py pieces

def test_ps_json_is_read_in_both_formats():
    rows = [{"Service": "postgres", "State": "running", "Health": "healthy"}]
    assert compose.parse_ps(json.dumps(rows)) == rows
    assert compose.parse_ps("\n".join(json.dumps(r) for r in rows) + "\n") == rows
    assert compose.parse_ps("") == []


def test_service_state_covers_replicas_and_one_shots():
    c = [
        {"Service": "trino-worker", "State": "running", "Health": "healthy"},
        {"Service": "trino-worker", "State": "running", "Health": "starting"},
        {"Service": "objectstore-init", "State": "exited", "ExitCode": 0},
        {"Service": "kafka-kraft", "State": "exited", "ExitCode": 137},
        {"Service": "kafka-ui", "State": "restarting", "Health": ""},
    ]
    worker = compose.service_state("trino-worker", c)
    assert worker.state == "starting" and not worker.ready and "2 containers" in worker.detail
    assert compose.service_state("objectstore-init", c).ready
    assert compose.service_state("kafka-kraft", c).failed
    assert compose.service_state("kafka-ui", c).state == "restarting"
    assert compose.service_state("postgres", c).state == "missing"
