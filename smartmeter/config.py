"""Settings from the environment, with working defaults.

Credentials are never literals in code: defaults come from the committed `.env.example`,
overridden by a local `.env` (the same file docker compose reads), overridden by the process
environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

REPO_ROOT = Path(__file__).resolve().parents[1]
# The utility's zone: local days, hours and time-of-use periods are read in it (LAKEHOUSE_TIMEZONE).
DEFAULT_TIMEZONE = "Europe/Berlin"


def _read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def environment() -> dict[str, str]:
    """`.env.example` < `.env` < os.environ."""
    merged = _read_env_file(REPO_ROOT / ".env.example")
    merged.update(_read_env_file(REPO_ROOT / ".env"))
    merged.update(os.environ)
    return merged


def env(name: str, default: str = "") -> str:
    return environment().get(name) or default


def env_int(name: str, default: int) -> int:
    raw = env(name, str(default))
    try:
        return int(raw)
    except ValueError as exc:
        raise SystemExit(f"error: {name}={raw!r} is not a whole number") from exc


def env_timezone(name: str, default: str) -> str:
    raw = env(name, default)
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SystemExit(f"error: {name}={raw!r} is not an IANA time zone name (e.g. Europe/Berlin, America/New_York)") from exc
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

    @property
    def trino_url(self) -> str:
        return f"http://{self.trino_host}:{self.trino_port}"

    def postgres_dsn(self, database: str | None = None) -> str:
        return (
            f"host={self.postgres_host} port={self.postgres_port} dbname={database or self.postgres_db} "
            f"user={self.postgres_user} password={self.postgres_password} connect_timeout=5"
        )


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
    )
