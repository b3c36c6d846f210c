"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import subprocess
import sys

import pytest

from smartmeter.config import REPO_ROOT, Settings, load_settings


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings()


def run_lakehouse(*args: str, timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ./lakehouse's CLI in this interpreter's venv, capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "smartmeter", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout_s
    )
