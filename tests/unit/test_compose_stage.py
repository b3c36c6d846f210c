"""The compose test stage's own safety and bookkeeping, without an engine (the stage itself runs in CI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.compose import images, stage
from tests.compose.engine import Engine, EngineError, refuse_foreign_docker_host

OWN = Path("/run/lakehouse-podman-test/podman.sock")


def test_a_docker_host_aimed_elsewhere_stops_the_stage(monkeypatch):
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    monkeypatch.setenv("DOCKER_HOST", "unix:///var/run/docker.sock")
    with pytest.raises(EngineError, match="unset DOCKER_HOST"):
        refuse_foreign_docker_host(OWN)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{OWN}")
    refuse_foreign_docker_host(OWN)
    monkeypatch.delenv("DOCKER_HOST")
    refuse_foreign_docker_host(OWN)
    monkeypatch.setenv("DOCKER_CONTEXT", "remote")
    with pytest.raises(EngineError, match="DOCKER_CONTEXT"):
        refuse_foreign_docker_host(OWN)


def test_the_engine_is_private_to_its_state_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONTEXT", "remote")
    engine = Engine(tmp_path / "compose-test")
    env = engine.env()
    assert env["DOCKER_HOST"] == f"unix://{engine.socket}" and "DOCKER_CONTEXT" not in env
    assert env["DOCKER_BUILDKIT"] == "0"
    assert Path(env["CONTAINERS_CONF"]).parent == Path(env["CONTAINERS_STORAGE_CONF"]).parent == engine.state
    assert Engine(tmp_path / "other").socket != engine.socket


def test_ports_are_taken_as_set_else_default_else_free(monkeypatch):
    for name in stage.PORTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(stage, "_free", lambda port: port != 8081)
    chosen = stage.choose_ports()
    assert chosen["TRINO_PORT"] != "8081", "a taken default is replaced by a free port"
    assert chosen["KAFKA_PORT"] == "19092"
    monkeypatch.setenv("POSTGRES_PORT", "8081")
    with pytest.raises(EngineError, match="POSTGRES_PORT=8081 is already in use"):
        stage.choose_ports()


def test_every_image_the_stack_uses_has_a_stand_in():
    wanted = images.wanted_images()
    assert "python:3.11.14-slim-bookworm" in wanted, "the dbt image's base is built too"
    for stand_in in wanted.values():
        assert (images.IMAGES_DIR / stand_in / "Dockerfile").is_file()
        assert stand_in in images.RECIPES


def test_image_names_are_qualified_as_the_docker_api_does():
    assert images.qualified("postgres:15.18-bookworm") == "docker.io/library/postgres:15.18-bookworm"
    assert images.qualified("apache/kafka:4.1.1") == "docker.io/apache/kafka:4.1.1"
    assert images.qualified("localhost/lakehouse-test/java:25") == "localhost/lakehouse-test/java:25"
    assert images.repository("docker.io/library/python:3.11") == "python"
