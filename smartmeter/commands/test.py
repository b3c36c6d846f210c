"""`./lakehouse test`: lint, unit and integration tests on the native stack (set up when it is not
healthy); `test --compose`: docker-compose.yml end to end on a private Podman engine."""

import os
import shutil
import subprocess
import sys

from smartmeter.config import REPO_ROOT
from smartmeter.errors import LakehouseError

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
    """Tools the test suite needs beyond the venv: shellcheck and a Docker Compose v2 to validate with."""
    if shutil.which("shellcheck") is None:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            raise LakehouseError("the tests need shellcheck: sudo apt-get install -y shellcheck")
        from smartmeter.native.install import apt_install

        print("installing shellcheck ...", flush=True)
        apt_install("shellcheck")
    from smartmeter import compose_check

    if compose_check.find_compose() is None:
        compose_check.install()
