"""Docker Compose mode: `./initial-setup.sh --docker`, and day-2 helpers for the compose stack.

Every step goes through the `docker compose` CLI (v2), never the Docker API, so the whole path
can be exercised without an engine by a stub `docker` on PATH (tests/unit/test_initial_setup_docker.py).

Fresh setup, in order:
  1. `docker compose down -v --remove-orphans` (containers and volumes of a previous run)
  2. `docker compose up -d --build`
  3. wait for every service's healthcheck (one-shot services: exit code 0), one progress line
     per service, and a timeout that names the services that never became healthy
  4. Kafka topics, Iceberg schemas, a check that postgres-init/ loaded the master data and
     the Iceberg catalog tables, and the public holidays of LAKEHOUSE_TIMEZONE's country
  5. the endpoints
A failing step prints `docker compose logs --tail 50 SERVICE` of the services involved and
setup() returns non-zero.
"""

from __future__ import annotations

import datetime
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_fixed

from smartmeter.config import ENV_FILE, REPO_ROOT, SETUP_TOPICS, TRINO_ADMIN_USER, env_bool, env_int, load_settings

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
ONE_SHOT_SERVICES = frozenset({"objectstore-init", "superset-init"})
"""Services that run once and exit; they are done when they exited 0 (no healthcheck)."""
DASHBOARD_SERVICES = frozenset({"superset-init", "superset"})
"""Left out when LAKEHOUSE_DASHBOARDS=false."""
ALL_PROFILES = ("cluster",)
"""Profiles `down` includes, so a fresh setup also removes Trino workers started with --profile cluster."""
MIN_COMPOSE_VERSION = (2, 20)
"""ps --format json as one object per line, service_completed_successfully, several --env-file."""
LOG_TAIL = 50


class ComposeError(RuntimeError):
    """A failed step; `services` are the ones whose logs explain it."""

    def __init__(self, message: str, services: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.services = tuple(services)


def _say(message: str) -> None:
    print(message, flush=True)


def compose_command(*args: str) -> list[str]:
    """`docker compose` for this checkout, with .env < the environment, as native mode (never
    .env.example: it documents, it does not configure)."""
    command = ["docker", "compose", "--project-directory", str(REPO_ROOT), "-f", str(COMPOSE_FILE)]
    if ENV_FILE.is_file():
        command += ["--env-file", str(ENV_FILE)]
    return command + list(args)


def _compose(*args: str, capture: bool = True, timeout_s: float | None = 120,
             input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(compose_command(*args), cwd=REPO_ROOT, text=True, capture_output=capture, timeout=timeout_s,
                              input=input_text)
    except subprocess.TimeoutExpired as exc:
        raise ComposeError(f"`docker compose {' '.join(args)}` did not finish within {timeout_s:.0f}s") from exc


def _check(result: subprocess.CompletedProcess[str], what: str, services: Iterable[str] = ()) -> str:
    if result.returncode != 0:
        detail = ((result.stdout or "") + (result.stderr or "")).strip()
        raise ComposeError(f"{what} failed (exit {result.returncode})" + (f":\n{detail}" if detail else ""), services)
    return result.stdout or ""


# --------------------------------------------------------------------------- preflight

def _parse_version(text: str) -> tuple[int, ...] | None:
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    return tuple(int(part) for part in match.groups() if part is not None) if match else None


def preflight() -> None:
    if shutil.which("docker") is None:
        raise ComposeError("the `docker` command was not found. Install Docker (with the compose plugin), "
                           "or run ./initial-setup.sh --native, which needs no Docker.")
    info = subprocess.run(["docker", "info"], capture_output=True, text=True)
    if info.returncode != 0:
        raise ComposeError("the Docker engine does not answer (`docker info` failed). Start Docker, "
                           "or run ./initial-setup.sh --native.\n" + info.stderr.strip())
    version = subprocess.run(["docker", "compose", "version", "--short"], capture_output=True, text=True)
    found = _parse_version(version.stdout) if version.returncode == 0 else None
    if found is None:
        raise ComposeError("Docker Compose v2 (`docker compose`) is not installed: install the docker-compose-plugin package, "
                           "or run ./initial-setup.sh --native.")
    if found[:2] < MIN_COMPOSE_VERSION:
        wanted = ".".join(map(str, MIN_COMPOSE_VERSION))
        raise ComposeError(f"Docker Compose {version.stdout.strip()} is too old: {wanted} or newer is needed.")


# --------------------------------------------------------------------------- state of the stack

def parse_ps(text: str) -> list[dict]:
    """`docker compose ps --format json`: one object per line (2.21+) or one JSON array (older)."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        return list(json.loads(text))
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@dataclass(frozen=True)
class ServiceState:
    service: str
    state: str  # healthy, done (one-shot exited 0), starting, running, created, restarting, unhealthy, exited, missing
    detail: str = ""

    @property
    def ready(self) -> bool:
        return self.state in ("healthy", "done")

    @property
    def failed(self) -> bool:
        return self.state in ("unhealthy", "exited", "dead")


def service_state(service: str, containers: Sequence[dict]) -> ServiceState:
    mine = [c for c in containers if c.get("Service") == service]
    if not mine:
        return ServiceState(service, "missing", "no container yet")
    states = []
    for c in mine:
        state = str(c.get("State", "")).lower()
        health = str(c.get("Health", "")).lower()
        exit_code = int(c.get("ExitCode") or 0)
        if service in ONE_SHOT_SERVICES:
            if state == "exited":
                states.append(("done", "") if exit_code == 0 else ("exited", f"exit code {exit_code}"))
            else:
                states.append((state or "created", ""))
        elif state in ("exited", "dead"):
            states.append(("exited", f"exit code {exit_code}"))
        elif health in ("healthy", "unhealthy", "starting"):
            states.append((health, ""))
        else:
            states.append((state or "created", "no healthcheck result yet" if state == "running" else ""))
    order = ["exited", "dead", "unhealthy", "restarting", "created", "starting", "running", "missing", "healthy", "done"]
    worst = min(states, key=lambda s: order.index(s[0]) if s[0] in order else 0)
    count = f"{len(mine)} containers" if len(mine) > 1 else ""
    return ServiceState(service, worst[0], ", ".join(part for part in (worst[1], count) if part))


def expected_services(*flags: str, dashboards: bool = True) -> list[str]:
    """The services of the active profiles (COMPOSE_PROFILES is honoured by compose itself), without
    Superset's when dashboards are off."""
    out = _check(_compose(*flags, "config", "--services"), "docker compose config --services")
    dashboards = dashboards and env_bool("LAKEHOUSE_DASHBOARDS", True)
    return [name for line in out.splitlines() if (name := line.strip()) and (dashboards or name not in DASHBOARD_SERVICES)]


def containers() -> list[dict]:
    return parse_ps(_check(_compose("ps", "-a", "--format", "json"), "docker compose ps"))


def wait_healthy(services: Sequence[str], timeout_s: float, poll_s: float = 2.0) -> None:
    """Poll until every service is healthy (one-shots: exited 0); a progress line on every change."""
    started = time.monotonic()
    last: dict[str, str] = {}
    last_summary = started
    while True:
        elapsed = time.monotonic() - started
        current = containers()
        states = {s: service_state(s, current) for s in services}
        for name, st in states.items():
            if last.get(name) != st.state:
                last[name] = st.state
                mark = "✓" if st.ready else ("✗" if st.failed else "…")
                _say(f"  {mark} {name:<22} {st.state}{f' ({st.detail})' if st.detail else ''}  [{elapsed:.0f}s]")
        failed = [st for st in states.values() if st.failed]
        if failed:
            names = [st.service for st in failed]
            raise ComposeError(f"{', '.join(names)} failed: "
                               + "; ".join(f"{st.service} {st.state}{f' ({st.detail})' if st.detail else ''}" for st in failed), names)
        pending = [st for st in states.values() if not st.ready]
        if not pending:
            return
        if elapsed > timeout_s:
            names = [st.service for st in pending]
            raise ComposeError(
                f"timed out after {timeout_s:.0f}s: never became healthy: "
                + ", ".join(f"{st.service} ({st.state})" for st in pending)
                + ". Raise LAKEHOUSE_HEALTH_TIMEOUT on a slow machine.",
                names,
            )
        if time.monotonic() - last_summary >= 15:
            last_summary = time.monotonic()
            _say(f"    waiting for {', '.join(f'{st.service} ({st.state})' for st in pending)}  [{elapsed:.0f}s]")
        time.sleep(poll_s)


def print_logs(services: Iterable[str], tail: int = LOG_TAIL) -> None:
    for service in services:
        print(f"\n----- docker compose logs --tail {tail} {service} -----", file=sys.stderr, flush=True)
        result = _compose("logs", "--no-color", "--tail", str(tail), service, timeout_s=60)
        sys.stderr.write((result.stdout or "") + (result.stderr or ""))
        sys.stderr.flush()


def _unready(services: Sequence[str]) -> list[str]:
    try:
        current = containers()
    except ComposeError:
        return list(services)
    return [s for s in services if not service_state(s, current).ready]


# --------------------------------------------------------------------------- initialisation

def create_topics() -> None:
    partitions = env_int("KAFKA_TOPIC_PARTITIONS", 3)
    script = "set -e\n" + "".join(
        f"/opt/kafka/bin/kafka-topics.sh --bootstrap-server localhost:9092 --create --if-not-exists "
        f"--topic {topic} --partitions {partitions} --replication-factor 1\n"
        for topic in SETUP_TOPICS
    )
    _check(_compose("exec", "-T", "kafka-kraft", "bash", "-c", script, timeout_s=300), "creating Kafka topics", ["kafka-kraft"])
    listed = _check(
        _compose("exec", "-T", "kafka-kraft", "/opt/kafka/bin/kafka-topics.sh", "--bootstrap-server", "localhost:9092", "--list"),
        "listing Kafka topics", ["kafka-kraft"],
    )
    missing = sorted(set(SETUP_TOPICS) - {line.strip() for line in listed.splitlines()})
    if missing:
        raise ComposeError(f"Kafka topics missing after creation: {', '.join(missing)}", ["kafka-kraft"])


def create_schemas(attempts: int = 6, pause_s: float = 5.0) -> None:
    user = TRINO_ADMIN_USER
    statements = "CREATE SCHEMA IF NOT EXISTS iceberg.staging; CREATE SCHEMA IF NOT EXISTS iceberg.marts"
    command = ("exec", "-T", "trino-coordinator", "trino", "--server", "http://localhost:8080", f"--user={user}", "--execute", statements)
    # Trino may still be loading its catalogs just after its healthcheck passed.
    retrying = Retrying(stop=stop_after_attempt(attempts), wait=wait_fixed(pause_s),
                        retry=retry_if_result(lambda result: result.returncode != 0),
                        retry_error_callback=lambda state: state.outcome.result())  # the last result, for _check
    result = retrying(_compose, *command, timeout_s=180)
    _check(result, "creating the Iceberg schemas iceberg.staging and iceberg.marts", ["trino-coordinator", "postgres", "objectstore"])


MASTER_DATA_SQL = (
    "select (select count(*) from tariffs) || ' ' || (select count(*) from customers) || ' ' || (select count(*) from devices)"
)
CATALOG_SQL = (
    "select count(*) from information_schema.tables "
    "where table_name in ('iceberg_tables', 'iceberg_namespace_properties')"
)


def _psql(database_expr: str, sql: str, what: str) -> str:
    script = f'psql -v ON_ERROR_STOP=1 -X -tA -U "$POSTGRES_USER" -d "{database_expr}" -c "{sql}"'
    return _check(_compose("exec", "-T", "postgres", "sh", "-c", script), what, ["postgres"]).strip()


def verify_master_data() -> str:
    """postgres-init/ ran in the image's docker-entrypoint-initdb.d: check what it left behind."""
    counts = _psql("$POSTGRES_DB", MASTER_DATA_SQL, "reading the master data counts").split()
    if len(counts) != 3 or not all(c.isdigit() and int(c) > 0 for c in counts):
        raise ComposeError(f"master data not loaded by postgres-init/ (tariffs, customers, devices = {counts})", ["postgres"])
    tables = _psql("iceberg_catalog", CATALOG_SQL, "checking the Iceberg catalog tables")
    if tables != "2":
        raise ComposeError(f"Iceberg JDBC catalog tables missing in database iceberg_catalog (found {tables} of 2)", ["postgres"])
    return f"{counts[0]} tariffs, {counts[1]} customers, {counts[2]} devices; Iceberg catalog tables present"


def seed_calendar() -> str:
    """Public holidays of the utility's zone (a fresh setup has no customer zones yet), computed
    here because postgres-init/ is plain SQL; piped to psql in the container."""
    from smartmeter.simulator import masterdata

    zone = load_settings().timezone
    first_year, last_year = masterdata.default_holiday_years(datetime.date.today())
    try:
        sql, written = masterdata.calendar_sql([zone], first_year, last_year)
    except ValueError as exc:
        raise ComposeError(f"LAKEHOUSE_TIMEZONE: {exc}") from exc
    script = 'psql -v ON_ERROR_STOP=1 -X -q -U "$POSTGRES_USER" -d "$POSTGRES_DB"'
    _check(_compose("exec", "-T", "postgres", "sh", "-c", script, input_text=sql), "writing public holidays", ["postgres"])
    return f"{written} public holidays {first_year}-{last_year} for {zone}"


# --------------------------------------------------------------------------- endpoints

def endpoints() -> list[tuple[str, str]]:
    s = load_settings()
    return [
        ("Kafka UI", f"http://localhost:{s.kafka_ui_port}"),
        ("Trino web UI", f"http://localhost:{s.trino_port}"),
        ("Kafka (host)", f"localhost:{s.kafka_port}"),
        ("PostgreSQL", f"postgresql://{s.postgres_user}@localhost:{s.postgres_port}/{s.postgres_db}"),
        ("S3 API", f"http://localhost:{s.s3_port} (bucket {s.s3_bucket}; S3Proxy has no web console)"),
        ("dbt loop", "docker logs -f dbt-transformations"),
        ("Dashboards", f"http://localhost:{s.superset_port} (Superset; user {s.superset_admin_user}, "
                       "password SUPERSET_ADMIN_PASSWORD in .env)"),
    ]


def _print_endpoints() -> None:
    _say("\nEndpoints:")
    for name, where in endpoints():
        _say(f"  {name:<14} {where}")


# --------------------------------------------------------------------------- commands

def _health_timeout() -> float:
    return float(env_int("LAKEHOUSE_HEALTH_TIMEOUT", 600))


def setup() -> int:
    """Fresh setup of the compose stack; 0 only when every service is healthy and initialised."""
    started = time.monotonic()
    step_services: list[str] = []
    try:
        preflight()
        _say(f"Docker Compose lakehouse setup ({COMPOSE_FILE.name})")
        _say("[1/5] removing containers and volumes of any previous run")
        profiles = [arg for p in ALL_PROFILES for arg in ("--profile", p)]
        _check(_compose(*profiles, "down", "-v", "--remove-orphans", capture=False, timeout_s=600), "docker compose down -v")

        _say("[2/5] starting services (the first run pulls images and builds the dbt image)")
        services = expected_services()
        step_services = services
        # On failure, the logs shown are those of the services that are not healthy (see below).
        _check(_compose("up", "-d", "--build", *services, capture=False, timeout_s=None), "docker compose up -d")

        _say(f"[3/5] waiting for healthchecks (timeout {_health_timeout():.0f}s)")
        wait_healthy(services, _health_timeout())

        _say("[4/5] creating Kafka topics and Iceberg schemas, checking master data")
        step_services = ["kafka-kraft"]
        create_topics()
        _say(f"  ✓ topics: {', '.join(SETUP_TOPICS)}")
        step_services = ["trino-coordinator"]
        create_schemas()
        _say("  ✓ schemas: iceberg.staging, iceberg.marts")
        step_services = ["postgres"]
        _say(f"  ✓ master data: {verify_master_data()}")
        _say(f"  ✓ calendar: {seed_calendar()}")
        _say("  ✓ bucket: created by objectstore-init")

        _say("[5/5] ready")
        _print_endpoints()
        _say(f"\nLakehouse ready in {time.monotonic() - started:.0f}s. Try:\n"
             "  docker exec -it trino-coordinator trino --user admin --execute 'select count(*) from postgresql.public.devices'")
        return 0
    except ComposeError as exc:
        print(f"\nerror: {exc}", file=sys.stderr, flush=True)
        involved = list(exc.services) or (_unready(step_services) if step_services else [])
        if involved and shutil.which("docker"):
            print_logs(involved)
        return 1
    except KeyboardInterrupt:
        return 130


ROLE_SCRIPTS = ("04-pipeline.sql", "05-roles.sql", "06-iceberg-owner.sql", "07-superset.sql")
"""postgres-init/ files that are idempotent and applied on every up (the rest create data)."""


def apply_roles() -> None:
    """The least-privilege roles (Superset's role and database included) on every up, as native
    mode does: the image runs postgres-init/ on an empty volume only, so this migrates a volume
    made before them (over the container's socket, which the image trusts). One psql per file:
    a file may \\connect to another database."""
    script = " && ".join(f'psql -v ON_ERROR_STOP=1 -q -X -U "$POSTGRES_USER" -d "$POSTGRES_DB" -f /docker-entrypoint-initdb.d/{name}'
                         for name in ROLE_SCRIPTS)
    _check(_compose("exec", "-T", "postgres", "sh", "-c", script), "applying PostgreSQL roles", ["postgres"])


def up(profiles: Sequence[str] = (), dashboards: bool = True) -> int:
    """Start, keeping data (volumes), and wait for the healthchecks."""
    services: list[str] = []
    try:
        preflight()
        flags = [arg for p in profiles for arg in ("--profile", p)]
        services = expected_services(*flags, dashboards=dashboards)
        # PostgreSQL and its roles first: the other services log in with those roles, and a volume
        # made before them (or before the dashboards) lacks some; superset-init would fail.
        _check(_compose(*flags, "up", "-d", "postgres", capture=False, timeout_s=None), "docker compose up -d postgres")
        wait_healthy(["postgres"], _health_timeout())
        apply_roles()
        _check(_compose(*flags, "up", "-d", *services, capture=False, timeout_s=None), "docker compose up -d")
        wait_healthy(services, _health_timeout())
        _print_endpoints()
        return 0
    except ComposeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        involved = list(exc.services) or (_unready(services) if services else [])
        if involved:
            print_logs(involved)
        return 1


def down() -> int:
    """Stop, keeping data: containers go, named volumes stay."""
    profiles = [arg for p in ALL_PROFILES for arg in ("--profile", p)]
    return _compose(*profiles, "down", "--remove-orphans", capture=False, timeout_s=600).returncode


def status() -> bool:
    """One line per service; True only when all are healthy (one-shots: exited 0)."""
    try:
        current = containers()
        services = expected_services()
    except ComposeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return False
    extra = sorted({c.get("Service", "") for c in current} - set(services) - {""})
    all_ready = True
    for service in services + extra:
        st = service_state(service, current)
        all_ready &= st.ready
        _say(f"{service:<22} {st.state:<10} {st.detail}")
    return all_ready


def run_once(service: str) -> int:
    """A one-shot service again (superset-init: migrations and the dashboards import)."""
    return subprocess.call(compose_command("run", "--rm", service), cwd=REPO_ROOT)


def logs(service: str, lines: int = 100, follow: bool = False) -> int:
    args = ["logs", "--no-color", "--tail", str(lines)] + (["--follow"] if follow else []) + [service]
    return subprocess.call(compose_command(*args), cwd=REPO_ROOT)

