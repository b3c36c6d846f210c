"""Native or Docker: which stack `./lakehouse` talks to."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from smartmeter.config import Settings


def mode(settings: Settings) -> str:
    """LAKEHOUSE_MODE=native|docker, else native when $LAKEHOUSE_HOME holds native state, else
    Docker when a Docker engine answers, else native."""
    chosen = os.environ.get("LAKEHOUSE_MODE", "auto")
    if chosen in ("native", "docker"):
        return chosen
    if (settings.home / "data").exists():
        return "native"
    if shutil.which("docker") and subprocess.call(["docker", "info"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0:
        return "docker"
    return "native"


def docker_exec(container: str, *command: str) -> int:
    """A command inside a compose container, interactive when we have a terminal."""
    interactive = ["-it"] if sys.stdin.isatty() else []
    return subprocess.call(["docker", "exec", *interactive, container, *command])
