"""Settings from the environment, with working defaults: the one place every default is defined.

Values come from the process environment, then a local `.env` (the file docker compose reads),
then the committed `.env.example`. Credentials are never literals in code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from smartmeter.errors import LakehouseError

REPO_ROOT = Path(__file__).resolve().parents[1]
# The utility's zone: local days, hours and time-of-use periods are read in it (LAKEHOUSE_TIMEZONE).
DEFAULT_TIMEZONE = "Europe/Berlin"


def environment() -> dict[str, str]:
    """`.env.example` < `.env` < os.environ."""
    merged: dict[str, str] = {}
    for path in (REPO_ROOT / ".env.example", REPO_ROOT / ".env"):
        if path.is_file():
            merged.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    merged.update(os.environ)
    return merged


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


def env_timezone(name: str, default: str) -> str:
    raw = env(name, default)
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise LakehouseError(f"{name}={raw!r} is not an IANA time zone name (e.g. Europe/Berlin, America/New_York)") from exc
    return raw


@dataclass(frozen=True)
class Settings:
    home: Path
    kafka_port: int
    kafka_controller_port: int
    kafka_bootstrap_servers: str
    trino_host: str
    trino_port: int
    trino_user: str
    postgres_host: str
    postgres_port: int
    postgres_user: str
    postgres_password: str
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
    dbt_schema_suffix: str
    max_messages_per_partition: int
    dbt_auto_run: bool
    dbt_run_interval_s: int
    full_tests_interval_s: int
    maintenance_interval_s: int
    snapshot_retention: str
    disk_warn_free_pct: int
    # Dashboards (Apache Superset, smartmeter/dashboards.py).
    dashboards: bool
    superset_port: int
    superset_workers: int
    superset_admin_user: str
    superset_admin_password: str
    superset_secret_key: str
    superset_db: str
    superset_db_user: str
    superset_db_password: str
    superset_trino_user: str

    @property
    def trino_url(self) -> str:
        return f"http://{self.trino_host}:{self.trino_port}"

    def postgres_connect_kwargs(self, database: str | None = None) -> dict[str, object]:
        """libpq keyword arguments (never a DSN string built from values)."""
        return {
            "host": self.postgres_host, "port": self.postgres_port, "dbname": database or self.postgres_db,
            "user": self.postgres_user, "password": self.postgres_password, "connect_timeout": 5,
        }

    def schema(self, base: str) -> str:
        """A dbt schema (staging, intermediate, marts) with DBT_SCHEMA_SUFFIX applied."""
        return f"{base}_{self.dbt_schema_suffix}" if self.dbt_schema_suffix else base


def load_settings() -> Settings:
    kafka_port = env_int("KAFKA_PORT", 19092)
    s3_port = env_int("S3_PORT", 9000)
    home = Path(env("LAKEHOUSE_HOME", str(REPO_ROOT / ".lakehouse"))).expanduser().resolve()
    return Settings(
        home=home,
        kafka_port=kafka_port,
        kafka_controller_port=env_int("KAFKA_CONTROLLER_PORT", 19093),
        kafka_bootstrap_servers=env("KAFKA_BOOTSTRAP_SERVERS", f"localhost:{kafka_port}"),
        trino_host=env("TRINO_HOST", "localhost"),
        trino_port=env_int("TRINO_PORT", 8081),
        trino_user=env("TRINO_USER", "lakehouse"),
        postgres_host=env("POSTGRES_HOST", "localhost"),
        postgres_port=env_int("POSTGRES_PORT", 5432),
        postgres_user=env("POSTGRES_USER", "lakehouse"),
        postgres_password=env("POSTGRES_PASSWORD"),
        postgres_db=env("POSTGRES_DB", "lakehouse"),
        s3_port=s3_port,
        s3_endpoint=env("S3_ENDPOINT", f"http://localhost:{s3_port}"),
        s3_access_key=env("S3_ACCESS_KEY"),
        s3_secret_key=env("S3_SECRET_KEY"),
        s3_bucket=env("S3_BUCKET", "lakehouse"),
        s3_region=env("S3_REGION", "us-east-1"),
        timezone=env_timezone("LAKEHOUSE_TIMEZONE", DEFAULT_TIMEZONE),
        telemetry_topic=env("TELEMETRY_TOPIC", "telemetry_raw"),
        fault_log_topic=env("FAULT_LOG_TOPIC", "meter_fault_logs"),
        dbt_schema_suffix=env("DBT_SCHEMA_SUFFIX", ""),
        max_messages_per_partition=env_int("PIPELINE_MAX_MESSAGES_PER_PARTITION", 1_000_000),
        dbt_auto_run=env_bool("DBT_AUTO_RUN", True),
        dbt_run_interval_s=env_int("DBT_RUN_INTERVAL", 600),
        full_tests_interval_s=env_int("PIPELINE_FULL_TESTS_INTERVAL", 6 * 3600),
        maintenance_interval_s=env_int("PIPELINE_MAINTENANCE_INTERVAL", 3600),
        snapshot_retention=env("ICEBERG_SNAPSHOT_RETENTION", "1d"),
        disk_warn_free_pct=env_int("DISK_WARN_FREE_PCT", 10),
        dashboards=env_bool("LAKEHOUSE_DASHBOARDS", True),
        superset_port=env_int("SUPERSET_PORT", 8088),
        superset_workers=env_int("SUPERSET_WORKERS", 2),
        superset_admin_user=env("SUPERSET_ADMIN_USER", "admin"),
        superset_admin_password=env("SUPERSET_ADMIN_PASSWORD"),
        superset_secret_key=env("SUPERSET_SECRET_KEY"),
        superset_db=env("SUPERSET_DB", "superset"),
        superset_db_user=env("SUPERSET_DB_USER", "superset"),
        superset_db_password=env("SUPERSET_DB_PASSWORD"),
        # The Trino user dashboards query as (Trino access control can scope it to the marts).
        superset_trino_user=env("SUPERSET_TRINO_USER", "superset"),
    )
