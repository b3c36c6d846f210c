"""The compose stack's tests run inside the compose test stage (`./lakehouse test --compose`).

The stage starts its own Podman engine, builds the stand-in images and runs
`./initial-setup.sh --docker`; these tests then talk to that stack through the same `docker`
commands and published host ports a user would. Run anywhere else, they fail rather than skip.
"""

from __future__ import annotations

import os

import pytest

from smartmeter import compose


@pytest.fixture(scope="session", autouse=True)
def compose_stack():
    if os.environ.get("LAKEHOUSE_MODE") != "docker" or "lakehouse-podman" not in os.environ.get("DOCKER_HOST", ""):
        pytest.fail("the compose tests run inside the compose test stage: ./lakehouse test --compose")
    if not compose.status():
        pytest.fail("the compose stack is not healthy (see the status above)")
