"""Generated secrets, the exposure check, Trino users per client, and the access rules' users."""

from __future__ import annotations

import json
import stat
from dataclasses import replace

import pytest
from dotenv import dotenv_values

from smartmeter import config
from smartmeter.config import IDENTITY_DEFAULTS, REPO_ROOT, TRINO_ADMIN_USER, TRINO_DBT_USER, load_settings
from smartmeter.security import SECRETS, ensure_env_file, example_values, exposure_problems


def test_first_setup_writes_every_secret_at_random_with_mode_0600(tmp_path):
    env_file = tmp_path / ".env"
    written = ensure_env_file(env_file, environ={})
    assert written == [*SECRETS, *IDENTITY_DEFAULTS]
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    values = dotenv_values(env_file)
    # The compose file requires these names too; they are not secret.
    assert {name: values[name] for name in IDENTITY_DEFAULTS} == IDENTITY_DEFAULTS
    assert all(len(values[name]) >= 24 for name in SECRETS)
    assert len({values[name] for name in SECRETS}) == len(SECRETS), "every secret is its own"
    again = ensure_env_file(env_file, environ={})
    assert again == [] and dotenv_values(env_file) == values, "a second run changes nothing"


def test_existing_values_and_the_environment_win_and_ports_stay(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("TRINO_PORT=38081\nPOSTGRES_PASSWORD=mine")
    env_file.chmod(0o644)
    written = ensure_env_file(env_file, environ={"S3_SECRET_KEY": "from-env"})
    assert "POSTGRES_PASSWORD" not in written and "S3_SECRET_KEY" not in written
    values = dotenv_values(env_file)
    assert values["TRINO_PORT"] == "38081" and values["POSTGRES_PASSWORD"] == "mine"
    assert "S3_SECRET_KEY" not in values
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600, "an older, readable .env is tightened"


def test_the_env_file_is_git_ignored():
    assert ".env" in (REPO_ROOT / ".gitignore").read_text().split()


@pytest.fixture
def exposed(monkeypatch, tmp_path):
    monkeypatch.setattr(config, "ENV_FILE", tmp_path / ".env")
    return replace(load_settings(), bind_address="0.0.0.0", trino_auth="password")


def test_loopback_needs_nothing():
    settings = replace(load_settings(), bind_address=config.LOOPBACK)
    assert exposure_problems(settings, values={}) == []


def test_exposing_names_each_example_or_missing_secret_and_anonymous_trino(exposed):
    examples = example_values()
    assert examples["POSTGRES_PASSWORD"], ".env.example documents the example values"
    values = {name: f"real-{name}" for name in SECRETS}
    assert exposure_problems(exposed, values=values) == []
    values["POSTGRES_PASSWORD"] = examples["POSTGRES_PASSWORD"]
    del values["S3_SECRET_KEY"]
    problems = exposure_problems(replace(exposed, trino_auth="none"), values=values)
    assert problems == ["POSTGRES_PASSWORD is the example value from .env.example", "S3_SECRET_KEY is not set",
                        "Trino accepts anyone who names a user: set TRINO_AUTH=password"]


def test_each_client_works_as_its_own_trino_user(monkeypatch):
    monkeypatch.setenv("TRINO_DBT_PASSWORD", "d")
    monkeypatch.setenv("TRINO_ADMIN_PASSWORD", "a")
    monkeypatch.setenv("TRINO_PASSWORD", "p")
    monkeypatch.delenv("TRINO_USER", raising=False)
    settings = load_settings()
    assert (settings.trino_user, settings.trino_password) == ("analyst", "p")
    assert settings.as_trino(TRINO_DBT_USER).trino_password == "d"
    assert settings.as_trino(TRINO_ADMIN_USER).trino_password == "a"
    from smartmeter.commands import catch_up, dbt, maintain, pipeline, sql, stop_service, trino
    assert {m.TRINO_AS for m in (catch_up, dbt, pipeline)} == {TRINO_DBT_USER}
    assert {m.TRINO_AS for m in (maintain, stop_service)} == {TRINO_ADMIN_USER}
    assert not hasattr(sql, "TRINO_AS") and not hasattr(trino, "TRINO_AS"), "interactive clients are analysts"


def test_dbt_always_runs_as_the_dbt_user(monkeypatch):
    from smartmeter.pipeline.dbt import dbt_environment

    assert dbt_environment(load_settings())["TRINO_USER"] == TRINO_DBT_USER


def test_access_rules_name_the_users_the_code_uses():
    rules = json.loads((REPO_ROOT / "trino-config" / "etc" / "rules.json").read_text())
    users = {rule.get("user") for section in rules.values() for rule in section}
    assert users == {TRINO_ADMIN_USER, TRINO_DBT_USER, None}
    assert rules["system_information"] == [{"user": TRINO_ADMIN_USER, "allow": ["read", "write"]}]


def _password_settings(monkeypatch, tmp_path):
    monkeypatch.setattr(config, "ENV_FILE", tmp_path / ".env")
    for name, value in (("TRINO_PASSWORD", "pa"), ("TRINO_DBT_PASSWORD", "pd"), ("TRINO_ADMIN_PASSWORD", "pz"),
                        ("TRINO_INTERNAL_SECRET", "shared"), ("TRINO_AUTH", "password"),
                        ("LAKEHOUSE_HOME", str(tmp_path / "home"))):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TRINO_USER", raising=False)
    return load_settings()


def test_password_auth_renders_a_0600_bcrypt_password_file_and_https(monkeypatch, tmp_path):
    import bcrypt

    from smartmeter.native.layout import Layout
    from smartmeter.native.services import Context, TrinoServer

    settings = _password_settings(monkeypatch, tmp_path)
    ctx = Context(settings=settings, layout=Layout(settings.home))
    conf = TrinoServer()._auth_config(ctx)
    text = conf.read_text()
    assert f"http-server.https.port={settings.trino_port}" in text
    assert "http-server.authentication.type=PASSWORD" in text and "internal-communication.shared-secret=shared" in text
    lines = (conf.parent / "password.db").read_text().split()
    users = dict(line.split(":", 1) for line in lines)
    assert set(users) == {"analyst", TRINO_DBT_USER, TRINO_ADMIN_USER}
    for user, password in (("analyst", "pa"), (TRINO_DBT_USER, "pd"), (TRINO_ADMIN_USER, "pz")):
        assert users[user].startswith("$2y$10$")
        assert bcrypt.checkpw(password.encode(), users[user].replace("$2y$", "$2b$", 1).encode())
    for path in conf.parent.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    # Nodes meet over plain HTTP on another port; a worker gets only the shared secret.
    assert TrinoServer().http_port(ctx) == settings.trino_port + 20
    worker = TrinoServer(1)._auth_config(ctx).read_text()
    assert "shared-secret=shared" in worker and "authentication.type" not in worker


def test_password_auth_clients_use_https_the_password_and_the_certificate(monkeypatch, tmp_path):
    from smartmeter.pipeline.dbt import dbt_environment
    from smartmeter.trino_sql import auth_kwargs

    settings = _password_settings(monkeypatch, tmp_path)
    kwargs = auth_kwargs(settings)
    assert kwargs["http_scheme"] == "https" and kwargs["http_session"].verify == str(settings.trino_certificate)
    assert not kwargs["http_session"].trust_env, "a CA bundle from the environment must not replace the certificate"
    assert settings.trino_url.startswith("https://")
    env = dbt_environment(settings)
    assert (env["DBT_TARGET"], env["TRINO_USER"], env["TRINO_PASSWORD"]) == ("native_password", TRINO_DBT_USER, "pd")
    assert auth_kwargs(replace(settings, trino_auth="none")) == {}


@pytest.mark.parametrize("name", ["DBT_SCHEMA_SUFFIX", "TELEMETRY_TOPIC", "FAULT_LOG_TOPIC"])
@pytest.mark.parametrize("value", ["x'; drop table y; --", 'a"b', "Marts", "a-b"])
def test_values_that_become_sql_names_are_plain_identifiers(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(config.LakehouseError, match=f"{name}=.* may hold only lower-case letters, digits and _"):
        load_settings()


def test_an_empty_schema_suffix_is_the_lakehouse_itself(monkeypatch):
    monkeypatch.setenv("DBT_SCHEMA_SUFFIX", "")
    assert load_settings().schema("marts") == "marts"
