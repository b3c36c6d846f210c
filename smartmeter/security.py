"""Secrets and exposure: the first setup writes `.env` with random secrets, and a stack exposed
beyond loopback (LAKEHOUSE_BIND_ADDRESS) refuses to start while example secrets or anonymous
Trino access remain."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values

from smartmeter.config import ENV_FILE, IDENTITY_DEFAULTS, REPO_ROOT, Settings, env
from smartmeter.errors import LakehouseError

EXAMPLE_FILE = REPO_ROOT / ".env.example"
# Every secret of the stack; `.env` gets a random value for each one neither it nor the
# environment sets.
SECRETS = (
    "POSTGRES_PASSWORD", "POSTGRES_TRINO_PASSWORD", "POSTGRES_ICEBERG_PASSWORD", "POSTGRES_SIMULATOR_PASSWORD",
    "POSTGRES_PIPELINE_PASSWORD", "POSTGRES_SUPERSET_PASSWORD", "S3_SECRET_KEY", "TRINO_PASSWORD", "TRINO_DBT_PASSWORD",
    "TRINO_ADMIN_PASSWORD", "TRINO_INTERNAL_SECRET", "SUPERSET_ADMIN_PASSWORD", "SUPERSET_SECRET_KEY",
)


def ensure_env_file(path: Path = ENV_FILE, environ: Mapping[str, str] = os.environ) -> list[str]:
    """Append to `path` (0600, created if missing) a random value for every secret, and the default
    for every identity the compose file needs (IDENTITY_DEFAULTS), that neither it nor `environ`
    sets; returns the names written. Ports and other settings are left alone."""
    existing = dotenv_values(path) if path.is_file() else {}

    def unset(name: str) -> bool:
        return not environ.get(name) and not existing.get(name)

    values = {name: secrets.token_urlsafe(24) for name in SECRETS if unset(name)}
    values.update({name: default for name, default in IDENTITY_DEFAULTS.items() if unset(name)})
    # Created 0600, and tightened if an older one is not: it holds credentials.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as out:
        os.fchmod(out.fileno(), 0o600)
        if values:
            text = path.read_text() if path.stat().st_size else ""
            if text and not text.endswith("\n"):
                out.write("\n")
            out.write("# Written by ./lakehouse setup/up (smartmeter/security.py): random secrets; change them here.\n")
            out.writelines(f"{name}={value}\n" for name, value in values.items())
    return list(values)


def example_values() -> dict[str, str]:
    """The documented example values (.env.example): known to everyone, so never secrets."""
    if not EXAMPLE_FILE.is_file():
        return {}
    return {k: v for k, v in dotenv_values(EXAMPLE_FILE).items() if v}


def exposure_problems(settings: Settings, values: Mapping[str, str] | None = None,
                      examples: Mapping[str, str] | None = None) -> list[str]:
    """What must change before the stack may listen beyond loopback; empty when it may."""
    if not settings.exposed:
        return []
    examples = example_values() if examples is None else examples
    problems = []
    for name in SECRETS:
        value = values.get(name, "") if values is not None else env(name)
        if not value:
            problems.append(f"{name} is not set")
        elif value == examples.get(name):
            problems.append(f"{name} is the example value from .env.example")
    if settings.trino_auth != "password":
        problems.append("Trino accepts anyone who names a user: set TRINO_AUTH=password")
    return problems


def refuse_unsafe_exposure(settings: Settings) -> None:
    problems = exposure_problems(settings)
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise LakehouseError(
            f"LAKEHOUSE_BIND_ADDRESS={settings.bind_address} would expose the stack beyond this machine, but:\n{listed}\n"
            f"Fix these in {ENV_FILE} (delete a secret's line and ./lakehouse up writes a random one), "
            "or unset LAKEHOUSE_BIND_ADDRESS to stay on loopback."
        )
