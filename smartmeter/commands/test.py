"""`./lakehouse test`: lint, unit and integration tests on the native stack (set up when it is not
healthy); `test --compose`: docker-compose.yml end to end on a private Podman engine."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from smartmeter.config import REPO_ROOT
from smartmeter.errors import LakehouseError

# Debian's chromium: the browser tests/helpers/dashboards.py drives.
CHROMIUM = Path("/usr/bin/chromium")
NAME = "test"
# cli.py writes missing secrets to .env first: a fresh checkout (CI) sets the stack up here.
STARTS_STACK = True
HELP = "lint, unit and integration tests (sets the stack up if needed); --compose: the compose stage"
PASSTHROUGH = "--compose, or extra pytest arguments"


def run(args, settings) -> int:
    if args.args[:1] == ["--compose"]:
        return subprocess.call([sys.executable, "-m", "tests.compose.stage", *args.args[1:]], cwd=REPO_ROOT)
    from smartmeter.native import stack

    _ensure_test_tools()
    print("== lint", flush=True)
    for command in ([sys.executable, "-m", "ruff", "check", "."],
                    [sys.executable, "-m", "sqlfluff", "lint", "--disable-progress-bar", "dbt-project/models"]):
        if subprocess.call(command, cwd=REPO_ROOT) != 0:
            print(f"lint failed: {' '.join(command[2:])}", file=sys.stderr)
            return 1
    print("== stack", flush=True)
    if not stack.status(settings):
        print("stack not healthy: running a fresh native setup", flush=True)
        stack.setup(settings)
    print("== pytest", flush=True)
    code = subprocess.call([sys.executable, "-m", "pytest", "tests/unit", "tests/integration", *args.args], cwd=REPO_ROOT)
    if code == 5:
        print("pytest collected no tests: that is a failure", file=sys.stderr)
        return 1
    return code


def _ensure_test_tools() -> None:
    """Tools the test suite needs beyond the venv: shellcheck, Debian's chromium for the dashboards'
    browser tests (playwright drives it; it downloads no browser), and a Docker Compose v2 to
    validate with."""
    missing = [package for package, found in (("shellcheck", shutil.which("shellcheck")), ("chromium", CHROMIUM.exists()))
               if not found]
    if missing:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            raise LakehouseError(f"the tests need {' and '.join(missing)}: sudo apt-get install -y {' '.join(missing)}")
        from smartmeter.native.install import apt_install

        print(f"installing {', '.join(missing)} ...", flush=True)
        apt_install(*missing)
    from smartmeter import compose_check

    if compose_check.find_compose() is None:
        compose_check.install()
