"""The stack's lifecycle: `down` then `up` keeps data, also when the restart switches Trino to
password authentication with two workers, and when it switches back; status reports a stopped
service.

In order, on this stack:
1. a probe row in Iceberg and a probe message in Kafka; `down`; `up` with TRINO_AUTH=password
   and two workers: both are still there, read over HTTPS with a password;
2. under password authentication: only the right password gets in, Superset queries Trino over
   HTTPS, the workers join, dbt builds, a worker retires gracefully;
3. `down`; `up` as before (no password, no workers): the probes are still there;
4. a stopped service makes status fail.

Named to run last: it takes services down, which the other integration tests need up. One
restart each way serves both the lifecycle and the password tests (a restart costs two minutes).
"""

from __future__ import annotations

import base64
import http.client
import os
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, replace

import pytest
from confluent_kafka import Producer

from smartmeter.native.services import TrinoServer
from smartmeter.native.stack import make_context
from smartmeter.trino_sql import execute, query
from tests.conftest import run_lakehouse

ANALYST = "analyst"


def _lakehouse(*args: str, auth: bool, timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TRINO_AUTH"}
    if auth:
        env["TRINO_AUTH"] = "password"
    result = run_lakehouse(*args, timeout_s=timeout_s, env=env)
    assert result.returncode == 0, f"lakehouse {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


@dataclass
class Probe:
    table: str
    partition: int
    offset: int
    marker: str

    def assert_kept(self, settings) -> None:
        _, rows = query(settings, f"SELECT device_id, energy_kwh FROM iceberg.staging.{self.table}")
        assert [(d, float(e)) for d, e in rows] == [("MTR-10001", 2.5)]
        _, messages = query(settings, "SELECT _message FROM kafka.default.meter_fault_logs "
                                      f"WHERE _partition_id = {self.partition} AND _partition_offset = {self.offset}")
        assert messages == [(f"NOTE restart probe {self.marker}",)]


@pytest.fixture(scope="module")
def probe(settings):
    """A row in an Iceberg table and a message in Kafka, made before the first restart."""
    name = f"it_restart_{uuid.uuid4().hex[:8]}"
    query(settings, f"CREATE TABLE iceberg.staging.{name} AS SELECT 'MTR-10001' AS device_id, 2.5 AS energy_kwh")
    delivered = []
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, "acks": "all"})
    marker = uuid.uuid4().hex
    producer.produce("meter_fault_logs", key="MTR-10001", value=f"NOTE restart probe {marker}",
                     on_delivery=lambda err, msg: delivered.append((err, msg.partition(), msg.offset())))
    producer.flush(30)
    (err, partition, offset), = delivered
    assert err is None
    yield Probe(name, partition, offset, marker)
    execute(settings, f"DROP TABLE IF EXISTS iceberg.staging.{name}")


@pytest.fixture(scope="module")
def password_stack(settings, probe):
    """This stack restarted with password authentication and two workers. The last password test
    restarts it as before; should that test not run, this restores it."""
    state = {"restored": False}
    _lakehouse("down", auth=False)
    try:
        assert run_lakehouse("status").returncode != 0, "status fails while the stack is down"
        started = time.monotonic()
        _lakehouse("up", "--trino-workers", "2", "--no-pipeline", auth=True)
        print(f"up with password authentication and two workers: {time.monotonic() - started:.1f}s")
        yield replace(settings, trino_auth="password"), state
    finally:
        if not state["restored"]:
            _lakehouse("down", auth=True)
            _lakehouse("up", auth=False)


def test_down_then_up_with_password_authentication_keeps_iceberg_table_and_kafka_messages(password_stack, probe):
    s, _ = password_stack
    probe.assert_kept(s)


def _statement(settings, headers: dict[str, str], scheme: str = "https", port: int | None = None) -> int:
    request = urllib.request.Request(f"{scheme}://localhost:{port or settings.trino_port}/v1/statement", data=b"SELECT 1",
                                     headers={"X-Trino-User": ANALYST, **headers}, method="POST")
    context = ssl.create_default_context(cafile=str(settings.trino_certificate))
    try:
        with urllib.request.urlopen(request, timeout=10, context=context if scheme == "https" else None) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_with_password_authentication_only_the_right_password_gets_in(password_stack):
    s, _ = password_stack
    analyst = s.as_trino(ANALYST)
    assert _statement(s, {}) == 401, "no password"
    assert _statement(s, _basic(ANALYST, "wrong-" + analyst.trino_password)) == 401, "wrong password"
    assert _statement(s, _basic(ANALYST, analyst.trino_password)) == 200, "the right password over HTTPS"
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError, http.client.HTTPException)):
        _statement(s, {}, scheme="http")  # TRINO_PORT speaks only TLS
    # The nodes' own plain-HTTP port takes no user's word for it either.
    internal = TrinoServer().http_port(make_context(s, with_java=False))
    assert internal != s.trino_port
    assert _statement(s, {}, scheme="http", port=internal) in (401, 403)
    assert query(analyst, "SELECT 1")[1] == [(1,)]
    # The wrong password through the project's own client fails too.
    with pytest.raises(Exception, match="401|Unauthorized|Invalid credentials"):
        query(replace(analyst, trino_password="wrong"), "SELECT 1")


def _active_workers(settings, expected: int, timeout_s: float = 60) -> int:
    """Active workers, once there are `expected` or the time is up (announcements take seconds)."""
    deadline = time.monotonic() + timeout_s
    while True:
        sql = "SELECT count(*) FROM system.runtime.nodes WHERE coordinator = false AND state = 'active'"
        count = query(settings, sql)[1][0][0]
        if count == expected or time.monotonic() > deadline:
            return count
        time.sleep(2)


def test_with_password_authentication_superset_queries_trino_over_https(password_stack):
    """Superset's connection logs in as the analyst with its password over HTTPS (the restart
    re-imported it so); a dashboard figure equals Trino's."""
    from tests.helpers.dashboards import Api

    s, _ = password_stack
    api = Api(s)
    (dataset,) = [d for d in api.get("/api/v1/dataset/?q=(page_size:100)")["result"] if d["table_name"] == "pipeline_runs"]
    sql = "SELECT count(*) FROM postgresql.pipeline.runs WHERE scope = ''"
    before = query(s.as_trino(ANALYST), sql)[1][0][0]
    shown = api.metric(dataset["id"], "runs")
    after = query(s.as_trino(ANALYST), sql)[1][0][0]
    assert before <= shown <= after


def test_with_password_authentication_two_workers_join(password_stack):
    s, _ = password_stack
    assert _active_workers(s, 2) == 2


def test_with_password_authentication_dbt_builds(password_stack):
    s, _ = password_stack
    suffix = f"auth{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "TRINO_AUTH": "password", "DBT_SCHEMA_SUFFIX": suffix}
    try:
        result = run_lakehouse("dbt", "build", "--select", "fault_event_codes", "--indirect-selection", "cautious", env=env)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert query(s, f"SELECT count(*) > 0 FROM iceberg.staging_{suffix}.fault_event_codes")[1] == [(True,)]
    finally:
        execute(s, f"DROP TABLE IF EXISTS iceberg.staging_{suffix}.fault_event_codes")
        execute(s, f"DROP SCHEMA IF EXISTS iceberg.staging_{suffix}")


def test_with_password_authentication_workers_retire_gracefully(password_stack):
    s, _ = password_stack
    _lakehouse("up", "--trino-workers", "1", "--no-pipeline", auth=True)
    assert _active_workers(s, 1) == 1


def test_down_then_up_as_before_keeps_iceberg_table_and_kafka_messages(settings, password_stack, probe):
    _, state = password_stack
    _lakehouse("down", auth=True)
    state["restored"] = True
    assert run_lakehouse("status").returncode != 0, "status fails while the stack is down"
    started = time.monotonic()
    _lakehouse("up", auth=False)
    print(f"warm up to healthy: {time.monotonic() - started:.1f}s")
    assert run_lakehouse("status").returncode == 0
    probe.assert_kept(settings)


def test_status_fails_when_one_service_is_stopped():
    assert run_lakehouse("status").returncode == 0
    assert run_lakehouse("stop-service", "objectstore").returncode == 0
    status = run_lakehouse("status")
    assert status.returncode != 0
    assert any(line.startswith("objectstore") and "stopped" in line for line in status.stdout.splitlines()), status.stdout
    assert run_lakehouse("up").returncode == 0
    assert run_lakehouse("status").returncode == 0
