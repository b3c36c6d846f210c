"""The shell scripts pass shellcheck (`./lakehouse test` installs it)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from smartmeter.config import REPO_ROOT

SCRIPTS = ["initial-setup.sh", "lakehouse", "smartmeter/bootstrap.sh", "dbt-project/entrypoint.sh", ".ci/run"]
# Entrypoints and tools of the compose test stage's stand-in images.
SCRIPTS += sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "tests" / "compose" / "images").rglob("*")
                  if p.is_file() and p.read_bytes().startswith(b"#!"))


def test_shell_scripts_pass_shellcheck():
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is not installed: apt-get install -y shellcheck")
    present = [script for script in SCRIPTS if (REPO_ROOT / script).is_file()]
    assert "initial-setup.sh" in present and "lakehouse" in present
    result = subprocess.run(["shellcheck", "-x", *present], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
