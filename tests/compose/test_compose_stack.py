"""docker-compose.yml end to end on a real container engine, as a user runs it (seed README).

The tests run in order on one stack, each building on the previous one's state:
1. every healthcheck is real (passes now, fails against a closed port);
2. the seed README's container commands work;
3. `telemetry_simulator.py --backfill-days 2 --chaos` into the published Kafka port, then
   `docker exec dbt-transformations dbt build`: the marts equal the Python oracle;
4. Superset (superset-init imported the dashboards) computes a dashboard figure as Trino does;
5. the dbt container's own loop (DBT_RUN_INTERVAL short) loads new data by itself;
6. `docker compose down` then `up` keeps every row, and a rebuild loads nothing twice;
7. `--profile cluster` starts Trino workers that run part of a query.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from smartmeter import compose
from smartmeter.config import REPO_ROOT, TRINO_ADMIN_USER
from smartmeter.trino_sql import query
from tests.helpers.dashboards import Api
from tests.helpers.pipeline import IsolatedPipeline, State, assert_matches_oracle, consume_all, consume_recorded, snapshot
from tests.helpers.trino import splits_per_node_of_a_scan

TELEMETRY = "telemetry_raw"
FAULT_LOGS = "meter_fault_logs"
LOOP_INTERVAL_S = 15


def run(*command: str, timeout_s: float = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout_s,
                          env={**os.environ, **(env or {})})


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args} exited {result.returncode}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result.stdout


def docker_compose(*args: str, env: dict[str, str] | None = None, timeout_s: float = 900) -> str:
    return ok(run(*compose.compose_command(*args), env=env, timeout_s=timeout_s))


def wait_healthy(*profiles: str) -> None:
    flags = [a for p in profiles for a in ("--profile", p)]
    services = docker_compose(*flags, "config", "--services").split()
    compose.wait_healthy(services, timeout_s=600)


class StackTables(IsolatedPipeline):
    """The oracle's view of the stack's own schemas and topics (no test suffix)."""

    def __init__(self, settings) -> None:
        super().__init__(settings, telemetry_topic=TELEMETRY, fault_log_topic=FAULT_LOGS)
        self.staging, self.intermediate, self.marts = "staging", "intermediate", "marts"

    def count(self, sql_from: str) -> int:
        return self.query(f"select count(*) from {sql_from}")[0][0]


def simulator(settings, *args: str) -> None:
    ok(run(sys.executable, str(REPO_ROOT / "telemetry_simulator.py"), "--bootstrap-servers", settings.kafka_bootstrap_servers,
           "--quiet", *args))


@pytest.fixture(scope="module")
def stack(settings, tmp_path_factory) -> State:
    """The simulator's seeded backfill with chaos, sent to the published Kafka port, read back from Kafka."""
    s = State()
    s.pipeline = StackTables(settings)
    s.device_customers = dict(s.pipeline.query("select device_id, customer_id from postgresql.public.devices"))
    record = tmp_path_factory.mktemp("sim") / "record.jsonl"
    simulator(settings, "--backfill-days", "2", "--seed", "20251209", "--chaos", "--fault-rate", "0.5", "--record", str(record))
    s.telemetry, s.fault_logs = consume_recorded(settings, record, [TELEMETRY, FAULT_LOGS])
    s.held_back = []
    s.pipeline.wait_for_topic_count(TELEMETRY, len(s.telemetry))
    return s


# --------------------------------------------------------------------------- 1. healthchecks

def test_every_healthcheck_is_real():
    """Each container's healthcheck passes when run by hand, and Trino's fails against a closed port:
    the CMD form of Podman 4.3 passed every check whatever it tested."""
    containers = run("docker", "ps", "--format", "{{.Names}}").stdout.split()
    assert {"kafka-kraft", "kafka-ui", "trino-coordinator", "dbt-transformations"} <= set(containers)
    for name in containers:
        check = json.loads(ok(run("docker", "inspect", "--format", "{{json .Config.Healthcheck}}", name)))
        assert check and check["Test"][0] == "CMD-SHELL", f"{name}: {check}"
        assert run("docker", "exec", name, "sh", "-c", check["Test"][1]).returncode == 0, f"{name}: {check['Test'][1]}"
        if name == "trino-coordinator":
            closed = check["Test"][1].replace("/8080", "/8099")
            assert run("docker", "exec", name, "sh", "-c", closed).returncode != 0, "a check against a closed port must fail"


# --------------------------------------------------------------------------- 2. README commands

def test_the_seed_readme_commands_work(settings, stack):
    topics = ok(run("docker", "exec", "kafka-kraft", "/opt/kafka/bin/kafka-topics.sh", "--list", "--bootstrap-server", "localhost:9092"))
    assert {TELEMETRY, FAULT_LOGS} <= set(topics.split())
    described = ok(run("docker", "exec", "kafka-kraft", "/opt/kafka/bin/kafka-topics.sh", "--describe", "--topic", TELEMETRY,
                       "--bootstrap-server", "localhost:9092"))
    assert "PartitionCount: 3" in described
    consumed = ok(run("docker", "exec", "kafka-kraft", "/opt/kafka/bin/kafka-console-consumer.sh", "--topic", TELEMETRY,
                      "--bootstrap-server", "localhost:9092", "--from-beginning", "--max-messages", "10"))
    assert len(consumed.splitlines()) == 10
    # Master data is the admin's to read (trino-config/etc/rules.json), as setup's hint says.
    devices = ok(run("docker", "exec", "trino-coordinator", "trino", "--user", TRINO_ADMIN_USER, "--execute",
                     "select count(*) from postgresql.public.devices"))
    assert devices.strip().strip('"') == str(len(stack.device_customers))
    info = json.loads(ok(run("curl", "-sf", f"http://localhost:{settings.trino_port}/v1/info")))
    assert info["starting"] is False
    ok(run("docker", "exec", "kafka-ui", "wget", "-q", "-O", "-", "http://127.0.0.1:8080/actuator/health"))


# --------------------------------------------------------------------------- 3. dbt build in the container

def test_dbt_build_in_the_container_matches_the_oracle(stack):
    ok(run("docker", "exec", "dbt-transformations", "dbt", "build", timeout_s=1800))
    expected = assert_matches_oracle(stack)
    assert sum(expected.rejected.values()) > 0, "--chaos produced rejects"
    listing = docker_compose("exec", "-T", "objectstore", "ls", "-R", "/data/lakehouse/warehouse")
    assert ".parquet" in listing, "Iceberg data files are in the object store's volume"


# --------------------------------------------------------------------------- 4. the container's own loop

def _loop_cycles(settings) -> list[tuple[str, datetime, int | None]]:
    """(status, started_at, messages_behind) of the loop's cycles, from the runner's record in PostgreSQL."""
    import psycopg2

    with psycopg2.connect(**settings.postgres_connect_kwargs(role="admin")) as conn, conn.cursor() as cur:
        cur.execute("select status, started_at, messages_behind from pipeline.runs where trigger = 'loop' and scope = '' order by run_id")
        return cur.fetchall()


def test_superset_shows_the_dashboards_with_the_figures_from_trino(settings, stack):
    api = Api(settings)
    slugs = {d["slug"] for d in api.get("/api/v1/dashboard/?q=(page_size:100)")["result"]}
    assert {"customer-usage", "meter-health", "pipeline"} <= slugs
    (dataset,) = [d for d in api.get("/api/v1/dataset/?q=(page_size:100)")["result"] if d["table_name"] == "customer_daily_usage"]
    shown = api.metric(dataset["id"], "energy_kwh")
    trino = stack.pipeline.query("select sum(total_energy_kwh) from iceberg.marts.customer_usage_summary")[0][0]
    assert abs(shown - trino) < 1e-6 * max(1.0, trino)


def test_the_containers_own_loop_loads_new_data(settings, stack):
    simulator(settings, "--count", "60", "--interval", "0.05", "--seed", "7")
    stack.telemetry = consume_all(settings, TELEMETRY)
    stack.fault_logs = consume_all(settings, FAULT_LOGS)
    stack.pipeline.wait_for_topic_count(TELEMETRY, len(stack.telemetry))
    landed_at = datetime.now(UTC).replace(microsecond=0)
    # From manual mode to the loop, as a user switches it on: the container is recreated.
    docker_compose("up", "-d", "dbt-transformations", env={"DBT_AUTO_RUN": "true", "DBT_RUN_INTERVAL": str(LOOP_INTERVAL_S)})
    try:
        deadline = time.monotonic() + 900
        # A cycle that started after the data landed and left nothing behind has loaded all of it.
        while not any(status == "ok" and started >= landed_at and not behind for status, started, behind in _loop_cycles(settings)):
            logs = run("docker", "logs", "dbt-transformations").stdout
            assert time.monotonic() < deadline, f"no successful loop cycle after {landed_at}:\n{logs[-3000:]}"
            time.sleep(5)
        print(f"loop cycles: {_loop_cycles(settings)}")
        assert stack.pipeline.count("iceberg.staging.stg_telemetry_messages") == len(stack.telemetry)
        assert_matches_oracle(stack)
    finally:
        docker_compose("up", "-d", "dbt-transformations")
        wait_healthy()


# --------------------------------------------------------------------------- 5. down, then up

def test_down_then_up_keeps_the_data(settings, stack):
    before = snapshot(stack)
    landed = stack.pipeline.count("iceberg.staging.stg_telemetry_messages")
    docker_compose("down")
    assert not run("docker", "ps", "--all", "--quiet").stdout.split(), "down removes the containers"
    docker_compose("up", "-d")
    wait_healthy()
    assert ok(run("./lakehouse", "status")).count("healthy") >= 5

    assert snapshot(stack) == before, "the marts survive down/up"
    assert len(consume_all(settings, TELEMETRY)) == len(stack.telemetry), "Kafka keeps every message"
    assert stack.pipeline.count("postgresql.public.devices") == len(stack.device_customers)
    # The Kafka offsets live in the staging tables: a staging run after the restart must find nothing new.
    ok(run("docker", "exec", "dbt-transformations", "dbt", "run", "--select", "staging", timeout_s=1800))
    assert stack.pipeline.count("iceberg.staging.stg_telemetry_messages") == landed, "nothing is loaded twice after a restart"
    assert snapshot(stack) == before


# --------------------------------------------------------------------------- 6. Trino workers

def test_cluster_profile_workers_take_part_in_queries(settings):
    workers = 2
    docker_compose("--profile", "cluster", "up", "-d", env={"TRINO_WORKERS": str(workers)})
    wait_healthy("cluster")
    deadline = time.monotonic() + 120
    while len(nodes := query(settings, "select node_id, coordinator from system.runtime.nodes where state = 'active'")[1]) != workers + 1:
        assert time.monotonic() < deadline, f"system.runtime.nodes: {nodes}"
        time.sleep(2)
    worker_ids = {str(node) for node, coordinator in nodes if not coordinator}

    per_node = splits_per_node_of_a_scan(settings, files=12)
    print(f"splits per node: {per_node}")
    assert {node for node, splits in per_node.items() if node in worker_ids and splits > 0} == worker_ids


def test_the_stage_runs_on_its_own_engine():
    """Guard for the clean-up: everything here lives in the stage's private Podman storage."""
    info = json.loads(ok(run("podman", "info", "--format", "json")))
    assert Path(info["store"]["graphRoot"]).is_relative_to(Path(os.environ["CONTAINERS_STORAGE_CONF"]).parent)
