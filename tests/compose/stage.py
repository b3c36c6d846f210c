"""The compose test stage: docker-compose.yml run for real on Podman, end to end (`./lakehouse test --compose`,
which runs `python -m tests.compose.stage [pytest arguments]`).

1. a private Podman engine (tests/compose/engine.py), installed with apt when missing;
2. stand-in images tagged as docker-compose.yml names them (tests/compose/images.py), cached;
3. `./initial-setup.sh --docker`, unchanged, against that engine;
4. pytest tests/compose: simulator -> Kafka -> dbt in its container -> marts equal the oracle,
   the container's own loop, down/up keeps data, Trino workers;
5. everything removed again (containers, networks, volumes, firewall chains, the engine),
   whatever happened; only the image cache stays.

Host ports: KAFKA_PORT, TRINO_PORT, POSTGRES_PORT, S3_PORT, KAFKA_UI_PORT and SUPERSET_PORT are used as set; one
not set takes its default, or a free port when the default is taken (for example by the native
stack), and the stage says so.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

from smartmeter import compose
from smartmeter.config import DEFAULT_PORTS, REPO_ROOT, load_settings
from smartmeter.native.layout import Layout
from tests.compose.engine import Engine, EngineError
from tests.compose.images import build_all

# The host ports compose publishes (the controller's is native mode's only).
PORTS = {name: port for name, port in DEFAULT_PORTS.items() if name != "KAFKA_CONTROLLER_PORT"}


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("", port))
        except OSError:
            return False
    return True


def _any_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def choose_ports() -> dict[str, str]:
    chosen: dict[str, str] = {}
    for name, default in PORTS.items():
        if os.environ.get(name):
            port = int(os.environ[name])
            if not _free(port):
                raise EngineError(f"{name}={port} is already in use; choose another port or unset {name}")
        elif _free(default):
            port = default
        else:
            port = _any_free_port()
            print(f"  {name}: {default} is in use, publishing on {port}", flush=True)
        chosen[name] = str(port)
    return chosen


def stage_env(engine: Engine, ports: dict[str, str]) -> dict[str, str]:
    """What setup, the tests and compose commands run with: the engine, the ports, docker mode."""
    env = engine.env()
    env.update(ports)
    env.update({
        "LAKEHOUSE_MODE": "docker",
        # Manual mode first, as the seed README shows: the tests run `docker exec ... dbt build`
        # without a second writer, then switch the loop on themselves.
        "DBT_AUTO_RUN": "false",
        "KAFKA_BOOTSTRAP_SERVERS": f"localhost:{ports['KAFKA_PORT']}",
        "TRINO_HOST": "localhost",
        "POSTGRES_HOST": "localhost",
        "S3_ENDPOINT": f"http://localhost:{ports['S3_PORT']}",
        "PYTHONPATH": str(REPO_ROOT),
    })
    return env


def _remove_stack(env: dict[str, str]) -> str:
    command = compose.compose_command(*[a for p in compose.ALL_PROFILES for a in ("--profile", p)],
                                      "down", "--volumes", "--remove-orphans", "--timeout", "20")
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    return "" if result.returncode == 0 else f"docker compose down -v: {result.stderr.strip()[-2000:]}"


def main(pytest_args: list[str]) -> int:
    settings = load_settings()
    engine = Engine(settings.home / "compose-test")
    times: dict[str, float] = {}
    failed = ""
    started = time.monotonic()
    env: dict[str, str] | None = None
    try:
        print("== compose stage: engine", flush=True)
        ports = choose_ports()
        engine.start()
        env = stage_env(engine, ports)
        times["engine"] = time.monotonic() - started

        print("== compose stage: stand-in images", flush=True)
        mark = time.monotonic()
        built = build_all(engine, Layout(settings.home))
        times["images"] = time.monotonic() - mark
        times["images cached"] = sum(b.seconds for b in built if b.cached)

        print("== compose stage: ./initial-setup.sh --docker", flush=True)
        mark = time.monotonic()
        if subprocess.call(["./initial-setup.sh", "--docker"], cwd=REPO_ROOT, env=env) != 0:
            failed = "./initial-setup.sh --docker failed"
        times["setup (incl. dbt image)"] = time.monotonic() - mark

        if not failed:
            print("== compose stage: pytest tests/compose", flush=True)
            mark = time.monotonic()
            pytest = [sys.executable, "-m", "pytest", "-v", "--durations=0", "tests/compose", *pytest_args]
            code = subprocess.call(pytest, cwd=REPO_ROOT, env=env)
            times["tests"] = time.monotonic() - mark
            if code != 0:
                failed = "pytest collected no tests" if code == 5 else f"pytest tests/compose failed (exit {code})"
    except EngineError as exc:
        failed = str(exc)
    except KeyboardInterrupt:
        failed = "interrupted"
    finally:
        print("== compose stage: removing what it created", flush=True)
        mark = time.monotonic()
        problems = [p for p in ([_remove_stack(env)] if env else []) if p] + engine.teardown()
        times["teardown"] = time.monotonic() - mark
    times["total"] = time.monotonic() - started
    print("compose stage times: " + ", ".join(f"{name} {seconds:.0f}s" for name, seconds in times.items()), flush=True)
    (engine.state / "last-times.json").write_text(json.dumps(times, indent=1))
    for problem in problems:
        print(f"clean-up: {problem[:300]}", file=sys.stderr)
    if failed:
        print(f"compose stage FAILED: {failed}", file=sys.stderr)
    return 1 if failed or problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
