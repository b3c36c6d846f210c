"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import subprocess
import sys

import pytest

from smartmeter.config import REPO_ROOT, TRINO_ADMIN_USER, Settings, load_settings


@pytest.fixture(scope="session")
def settings() -> Settings:
    """As the Trino admin: tests inspect every catalog and clean up their own schemas."""
    return load_settings().as_trino(TRINO_ADMIN_USER)


def run_lakehouse(*args: str, timeout_s: float = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ./lakehouse's CLI in this interpreter's venv (in `env`, else ours), capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "smartmeter", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout_s,
        env=env,
    )
