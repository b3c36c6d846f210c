"""docker-compose.yml validated by a real Compose implementation (Docker Compose v2's `config`).

`./lakehouse test` installs it first (`python -m smartmeter.compose_check --install`); without it
these tests fail rather than skip.
"""

from __future__ import annotations

import pytest

from smartmeter import compose_check


@pytest.fixture(scope="module")
def compose():
    found = compose_check.find_compose()
    if found is None:
        pytest.fail("no Docker Compose v2 here; install it with: python -m smartmeter.compose_check --install")
    return found


def test_compose_file_is_valid_for_every_profile(compose):
    assert compose_check.profiles_of() == ["cluster"]
    assert compose_check.validate(compose) == []


def test_the_validator_rejects_a_broken_compose_file(compose, tmp_path):
    """Proof that validation bites: an unknown dependency and a bad healthcheck are errors."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        "services:\n"
        "  app:\n"
        "    image: busybox:1.37.0\n"
        "    depends_on:\n"
        "      nosuch:\n"
        "        condition: service_healthy\n"
    )
    (tmp_path / ".env.example").write_text("")
    result = compose.run("config", "-q", compose_file=broken, env_file=tmp_path / ".env.example")
    assert result.returncode != 0 and "nosuch" in result.stderr
    broken.write_text("services:\n  app:\n    image: busybox:1.37.0\n    healthcheck:\n      interval: soon\n")
    assert compose.run("config", "-q", compose_file=broken, env_file=tmp_path / ".env.example").returncode != 0


def test_missing_credentials_stop_compose_with_a_clear_message(compose, tmp_path):
    """Credentials come only from .env: without them compose refuses to start and says what to do."""
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = compose.run("config", "-q", env_file=empty)
    assert result.returncode != 0
    assert "./lakehouse setup --docker writes .env" in result.stderr
