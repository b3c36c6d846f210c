"""Settings from the environment, with working defaults: the one place every default is defined.

Values come from the process environment, then a local `.env` (the file docker compose reads;
setup writes it with random secrets, smartmeter/security.py). `.env.example` documents the
settings and is never read as configuration. Credentials are never literals in code.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from smartmeter.errors import LakehouseError

REPO_ROOT = Path(__file__).resolve().parents[1]
# The utility's zone: local days, hours and time-of-use periods are read in it (LAKEHOUSE_TIMEZONE).
DEFAULT_TIMEZONE = "Europe/Berlin"
# Host ports by the variable that moves them. docker-compose.yml publishes the same defaults and
# the README lists them (tests/unit/test_compose_structure.py keeps the three in step).
DEFAULT_PORTS = {
    "KAFKA_PORT": 19092, "KAFKA_CONTROLLER_PORT": 19093, "KAFKA_UI_PORT": 8080, "TRINO_PORT": 8081,
    "POSTGRES_PORT": 5432, "S3_PORT": 9000, "SUPERSET_PORT": 8088,
}
# `./lakehouse docs` serves on the host only (no compose service publishes it).
DEFAULT_DOCS_PORT = 8580
# Kafka topics the pipeline loads (Trino's Kafka catalog describes each): its two, and a pair the
# integration tests and benchmarks fill, so they never touch the data a user produced.
TELEMETRY_TOPIC, FAULT_LOG_TOPIC = "telemetry_raw", "meter_fault_logs"
TEST_TOPICS = (f"{TELEMETRY_TOPIC}_test", f"{FAULT_LOG_TOPIC}_test")
TOPICS = (TELEMETRY_TOPIC, FAULT_LOG_TOPIC, *TEST_TOPICS)
# Health alerts out (smartmeter/pipeline/alerts.py): written by the pipeline, not loaded by it.
ALERTS_TOPIC = "meter_alerts"
# What both modes create at setup.
SETUP_TOPICS = (*TOPICS, ALERTS_TOPIC)


ENV_FILE = REPO_ROOT / ".env"
# Interfaces the stack listens on; anything but loopback exposes it (smartmeter/security.py checks).
LOOPBACK = "127.0.0.1"
# Trino user names the access rules (trino-config/etc/rules.json) grant to: the pipeline's dbt
# runs write the lakehouse schemas, the admin runs maintenance and worker shutdown. Any other
# name (TRINO_USER, default analyst) is an analyst.
TRINO_DBT_USER = "dbt"
TRINO_ADMIN_USER = "admin"
# The PostgreSQL roles of the stack (postgres-init/05-roles.sql): the admin (the bootstrap
# superuser, POSTGRES_USER) runs setup only; the others are what the services log in as
# (superset: the dashboards' metadata database, postgres-init/07-superset.sql).
POSTGRES_ROLES = ("admin", "trino", "iceberg", "simulator", "pipeline", "superset")
# Databases of the lakehouse besides POSTGRES_DB; SUPERSET_DB must be none of them.
RESERVED_DATABASES = ("postgres", "template0", "template1", "iceberg_catalog")


def environment() -> dict[str, str]:
    """`.env` < os.environ."""
    merged: dict[str, str] = {}
    if ENV_FILE.is_file():
        merged.update({k: v for k, v in dotenv_values(ENV_FILE).items() if v is not None})
    merged.update(os.environ)
    return merged


# Names the compose file needs from .env that are not secret: setup writes these defaults there
# with the secrets (smartmeter/security.py), and native mode falls back to them.
IDENTITY_DEFAULTS = {"POSTGRES_USER": "lakehouse", "S3_ACCESS_KEY": "lakehouse"}


def env(name: str, default: str = "") -> str:
    return environment().get(name) or default


def env_int(name: str, default: int) -> int:
    raw = env(name, str(default))
    try:
        return int(raw)
    except ValueError as exc:
        raise LakehouseError(f"{name}={raw!r} is not a whole number") from exc


def env_bool(name: str, default: bool) -> bool:
    raw = env(name, "true" if default else "false").strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise LakehouseError(f"{name}={raw!r} is not true or false")


def env_identifier(name: str, default: str, *, allow_empty: bool = False) -> str:
    """A value that becomes part of a SQL name (a schema suffix, a Kafka table): lower-case
    letters, digits and _, so it needs no quoting anywhere and the Trino access rules match it."""
    raw = env(name, default)
    if not re.fullmatch(r"[a-z0-9_]+", raw) and not (allow_empty and raw == ""):
        raise LakehouseError(f"{name}={raw!r} may hold only lower-case letters, digits and _ (it becomes part of a SQL name)")
    return raw


def env_timezone(name: str, default: str) -> str:
    raw = env(name, default)
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise LakehouseError(f"{name}={raw!r} is not an IANA time zone name (e.g. Europe/Berlin, America/New_York)") from exc
    return raw


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str
    # Where the password comes from, for the error when it is missing.
    password_env: str


@dataclass(frozen=True)
class Settings:
    home: Path
    kafka_port: int
    kafka_controller_port: int
    kafka_ui_port: int
    kafka_bootstrap_servers: str
    trino_host: str
    trino_port: int
    trino_user: str
    trino_password: str
    trino_auth: str
    trino_passwords: dict[str, str]
    trino_internal_secret: str
    bind_address: str
    postgres_host: str
    postgres_port: int
    postgres_user: str
    postgres_password: str
    postgres_roles: dict[str, Credentials]
    postgres_db: str
    s3_port: int
    s3_endpoint: str
    s3_access_key: str
    s3_secret_key: str
    s3_bucket: str
    s3_region: str
    timezone: str
    telemetry_topic: str
    fault_log_topic: str
    alerts_topic: str
    alerts: bool
    dbt_schema_suffix: str
    max_messages_per_partition: int
    dbt_auto_run: bool
    dbt_run_interval_s: int
    full_tests_interval_s: int
    maintenance_interval_s: int
    snapshot_retention: str
    restatement_grace_minutes: int
    disk_warn_free_pct: int
    # Dashboards (Apache Superset, smartmeter/dashboards.py).
    dashboards: bool
    superset_port: int
    superset_workers: int
    superset_admin_user: str
    superset_admin_password: str
    superset_secret_key: str
    superset_db: str
    # dbt's documentation site (`./lakehouse docs`).
    docs_port: int

    @property
    def trino_scheme(self) -> str:
        return "https" if self.trino_auth == "password" else "http"

    @property
    def trino_url(self) -> str:
        return f"{self.trino_scheme}://{self.trino_host}:{self.trino_port}"

    @property
    def trino_certificate(self) -> Path:
        """The certificate of Trino's HTTPS (TRINO_AUTH=password), made at setup, which clients trust."""
        return self.home / "conf" / "trino" / "trino.pem"

    @property
    def exposed(self) -> bool:
        return self.bind_address != LOOPBACK

    def as_trino(self, user: str) -> Settings:
        """These settings as another Trino user (TRINO_DBT_USER, TRINO_ADMIN_USER): the clients
        that write or maintain the lakehouse pick their user here."""
        return replace(self, trino_user=user, trino_password=self.trino_passwords.get(user, ""))

    def postgres_credentials(self, role: str) -> Credentials:
        credentials = self.postgres_roles[role]
        if not credentials.password:
            raise LakehouseError(f"{credentials.password_env} is not set: ./lakehouse up (or ./initial-setup.sh) "
                                 f"writes it to {ENV_FILE} with the other secrets")
        return credentials

    def postgres_connect_kwargs(self, *, role: str, database: str | None = None) -> dict[str, object]:
        """libpq keyword arguments (never a DSN string built from values) for one of POSTGRES_ROLES."""
        credentials = self.postgres_credentials(role)
        return {
            "host": self.postgres_host, "port": self.postgres_port, "dbname": database or self.postgres_db,
            "user": credentials.user, "password": credentials.password, "connect_timeout": 5,
        }

    def schema(self, base: str) -> str:
        """A dbt schema (staging, intermediate, marts) with DBT_SCHEMA_SUFFIX applied."""
        return f"{base}_{self.dbt_schema_suffix}" if self.dbt_schema_suffix else base


def env_port(name: str) -> int:
    return env_int(name, DEFAULT_PORTS[name])


def load_settings() -> Settings:
    kafka_port = env_port("KAFKA_PORT")
    s3_port = env_port("S3_PORT")
    home = Path(env("LAKEHOUSE_HOME", str(REPO_ROOT / ".lakehouse"))).expanduser().resolve()
    trino_user = env("TRINO_USER", "analyst")
    trino_passwords = {TRINO_DBT_USER: env("TRINO_DBT_PASSWORD"), TRINO_ADMIN_USER: env("TRINO_ADMIN_PASSWORD")}
    trino_passwords.setdefault(trino_user, env("TRINO_PASSWORD"))
    trino_auth = env("TRINO_AUTH", "none")
    if trino_auth not in ("none", "password"):
        raise LakehouseError(f"TRINO_AUTH={trino_auth!r} is not none or password")
    admin_user = env("POSTGRES_USER", IDENTITY_DEFAULTS["POSTGRES_USER"])
    postgres_roles = {"admin": Credentials(admin_user, env("POSTGRES_PASSWORD"), "POSTGRES_PASSWORD")}
    for role in POSTGRES_ROLES[1:]:
        prefix = f"POSTGRES_{role.upper()}"
        postgres_roles[role] = Credentials(env(f"{prefix}_USER", f"lakehouse_{role}"), env(f"{prefix}_PASSWORD"),
                                           f"{prefix}_PASSWORD")
    postgres_db = env("POSTGRES_DB", "lakehouse")
    # Superset's role owns this database and takes over what is in it (postgres-init/07-superset.sql).
    superset_db = env("SUPERSET_DB", "superset")
    if superset_db in (postgres_db, *RESERVED_DATABASES):
        raise LakehouseError(f"SUPERSET_DB={superset_db!r} is a database of the lakehouse: give Superset a database of its own")
    return Settings(
        home=home,
        kafka_port=kafka_port,
        kafka_controller_port=env_port("KAFKA_CONTROLLER_PORT"),
        kafka_ui_port=env_port("KAFKA_UI_PORT"),
        kafka_bootstrap_servers=env("KAFKA_BOOTSTRAP_SERVERS", f"localhost:{kafka_port}"),
        trino_host=env("TRINO_HOST", "localhost"),
        trino_port=env_port("TRINO_PORT"),
        trino_user=trino_user,
        trino_password=trino_passwords[trino_user],
        trino_auth=trino_auth,
        trino_passwords=trino_passwords,
        trino_internal_secret=env("TRINO_INTERNAL_SECRET"),
        bind_address=env("LAKEHOUSE_BIND_ADDRESS", LOOPBACK),
        postgres_host=env("POSTGRES_HOST", "localhost"),
        postgres_port=env_port("POSTGRES_PORT"),
        postgres_user=postgres_roles["admin"].user,
        postgres_password=postgres_roles["admin"].password,
        postgres_roles=postgres_roles,
        postgres_db=postgres_db,
        s3_port=s3_port,
        s3_endpoint=env("S3_ENDPOINT", f"http://localhost:{s3_port}"),
        s3_access_key=env("S3_ACCESS_KEY", IDENTITY_DEFAULTS["S3_ACCESS_KEY"]),
        s3_secret_key=env("S3_SECRET_KEY"),
        s3_bucket=env("S3_BUCKET", "lakehouse"),
        s3_region=env("S3_REGION", "us-east-1"),
        timezone=env_timezone("LAKEHOUSE_TIMEZONE", DEFAULT_TIMEZONE),
        telemetry_topic=env_identifier("TELEMETRY_TOPIC", TELEMETRY_TOPIC),
        fault_log_topic=env_identifier("FAULT_LOG_TOPIC", FAULT_LOG_TOPIC),
        alerts_topic=env_identifier("ALERTS_TOPIC", ALERTS_TOPIC),
        alerts=env_bool("LAKEHOUSE_ALERTS", True),
        dbt_schema_suffix=env_identifier("DBT_SCHEMA_SUFFIX", "", allow_empty=True),
        max_messages_per_partition=env_int("PIPELINE_MAX_MESSAGES_PER_PARTITION", 1_000_000),
        dbt_auto_run=env_bool("DBT_AUTO_RUN", True),
        dbt_run_interval_s=env_int("DBT_RUN_INTERVAL", 600),
        full_tests_interval_s=env_int("PIPELINE_FULL_TESTS_INTERVAL", 6 * 3600),
        maintenance_interval_s=env_int("PIPELINE_MAINTENANCE_INTERVAL", 3600),
        snapshot_retention=env("ICEBERG_SNAPSHOT_RETENTION", "1d"),
        restatement_grace_minutes=env_int("RESTATEMENT_GRACE_MINUTES", 60),
        disk_warn_free_pct=env_int("DISK_WARN_FREE_PCT", 10),
        dashboards=env_bool("LAKEHOUSE_DASHBOARDS", True),
        superset_port=env_port("SUPERSET_PORT"),
        docs_port=env_int("DOCS_PORT", DEFAULT_DOCS_PORT),
        superset_workers=env_int("SUPERSET_WORKERS", 2),
        superset_admin_user=env("SUPERSET_ADMIN_USER", "admin"),
        superset_admin_password=env("SUPERSET_ADMIN_PASSWORD"),
        superset_secret_key=env("SUPERSET_SECRET_KEY"),
        superset_db=superset_db,
    )
