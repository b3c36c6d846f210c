"""Fault injection on the native stack (issue: reliability). Every scenario ends with the marts
equal to the Python oracle, or with the loss recorded as a gap:

- a crashed service comes back by itself, and `status` shows the restart;
- Kafka SIGKILLed while the simulator runs live and the loop is on;
- Trino SIGKILLed while dbt runs; dbt SIGKILLed in the middle of a MERGE;
- a dead writer's `create or replace table` still running: the next writer cancels it;
- two writers started at once;
- the telemetry topic deleted and recreated; unread messages deleted by retention;
- the clock stepping back between runs (libfaketime);
- the same fault-log file shipped twice.

Each test has its own isolated pipeline on the test topics, which it recreates.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
import pytest
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

from smartmeter.config import REPO_ROOT, TRINO_DBT_USER
from smartmeter.native.install import apt_install
from smartmeter.pipeline.lakehouse import running_writes, stop_orphaned_writes
from smartmeter.pipeline.topics import recreate_topics
from smartmeter.trino_sql import connect, query
from tests.conftest import run_lakehouse
from tests.helpers.pipeline import (
    FAULT_CODES,
    FAULT_LOG_TEST_TOPIC,
    TELEMETRY_TEST_TOPIC,
    IsolatedPipeline,
    State,
    assert_matches_oracle,
    consume_all,
    expected_from_messages,
    fault_line,
    first_devices,
    generate_backfill,
    isolated_state,
    produce,
)
from tests.helpers.stack import kill_service, restarts, wait_healthy_again

pytestmark = pytest.mark.integration

FIRST_DAY = datetime.now(UTC).date() - timedelta(days=8)


@pytest.fixture
def make_state(settings):
    """Makes fresh isolated pipelines, each with a seeded backfill with chaos on the test topics."""
    with ExitStack() as made:
        def factory(days: int = 1, seed: int = 1, first_day=FIRST_DAY, **pipeline_options) -> State:
            def fill(s: State) -> None:
                backfill = generate_backfill(first_devices(s.device_customers, 5), first_day, days=days, seed=seed)
                s.telemetry = produce(settings, TELEMETRY_TEST_TOPIC, backfill.telemetry)
                s.fault_logs = produce(settings, FAULT_LOG_TEST_TOPIC, backfill.fault_logs)

            return made.enter_context(isolated_state(settings, fill, **pipeline_options))

        yield factory


def load_then_produce_a_day_more(s: State, seed: int) -> None:
    """The backfill loaded, and one more day of readings in Kafka that is not loaded yet."""
    p = s.pipeline
    p.catch_up()
    more = generate_backfill(first_devices(s.device_customers, 5), FIRST_DAY + timedelta(days=1), days=1, seed=seed)
    s.send(more.telemetry)


def wait_for_a_dbt_query_in_flight(p: IsolatedPipeline, statement: str = "", timeout_s: float = 600) -> None:
    """Any of the run's dbt queries (containing `statement`), not one: a small MERGE can finish
    between two polls, and a run has many."""
    deadline = time.monotonic() + timeout_s
    while not p.query("select count(*) from system.runtime.queries where state not in ('FINISHED', 'FAILED') "
                      f"and source like 'dbt-trino-%' and strpos(query, '{p.suffix}') > 0 "
                      f"and strpos(lower(query), '{statement}') > 0")[0][0]:
        assert time.monotonic() < deadline, f"never saw one of the run's dbt queries ({statement!r}) in flight"
        time.sleep(0.1)


def test_a_crashed_service_comes_back_by_itself_and_status_shows_the_restart(settings):
    before = restarts(settings).get("objectstore", 0)
    old_pid = kill_service(settings, "objectstore")
    seconds = wait_healthy_again(settings, "objectstore", old_pid)
    print(f"objectstore back after {seconds:.1f}s")
    assert restarts(settings).get("objectstore", 0) == before + 1
    status = run_lakehouse("status")
    assert status.returncode == 0, status.stdout
    line = next(line for line in status.stdout.splitlines() if line.startswith("objectstore"))
    assert f"restarts {before + 1}" in line, line


def test_kafka_killed_during_a_live_simulator_run_with_the_loop_on(settings, make_state, tmp_path):
    s = make_state()
    loop = s.pipeline.start_loop(interval_s=5)
    record = tmp_path / "record.jsonl"
    simulator = subprocess.Popen(
        [sys.executable, "telemetry_simulator.py", "--interval", "0.2", "--count", "300", "--seed", "11",
         "--fault-rate", "0", "--quiet", "--topic", TELEMETRY_TEST_TOPIC, "--fault-log-topic", FAULT_LOG_TEST_TOPIC,
         "--record", str(record)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        time.sleep(4)
        old_pid = kill_service(settings, "kafka")
        wait_healthy_again(settings, "kafka", old_pid)
        output, _ = simulator.communicate(timeout=300)
        assert simulator.returncode == 0, output[-3000:]
        assert "Delivery failures:   0" in output
        s.telemetry = consume_all(settings, TELEMETRY_TEST_TOPIC)
        s.fault_logs = consume_all(settings, FAULT_LOG_TEST_TOPIC)
        s.pipeline.wait_caught_up()
    finally:
        loop_output = s.pipeline.stop_loop(loop)
    print(loop_output[-2000:])
    assert_matches_oracle(s)


def test_trino_killed_while_dbt_runs_then_the_pipeline_catches_up(settings, make_state):
    s = make_state()
    p = s.pipeline
    process = subprocess.Popen(p.command("catch-up"), cwd=REPO_ROOT, env=p.env(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if f"START sql incremental model {p.staging}.stg_telemetry_raw" in line:
            break
    old_pid = kill_service(settings, "trino")
    output = line + process.stdout.read()
    assert process.wait(timeout=600) != 0, "a catch-up whose Trino died fails"
    assert "error" in output.lower()
    wait_healthy_again(settings, "trino", old_pid)
    p.catch_up()
    assert_matches_oracle(s)


def test_dbt_killed_in_the_middle_of_a_merge(make_state):
    s = make_state()
    p = s.pipeline
    load_then_produce_a_day_more(s, seed=2)
    process = subprocess.Popen(p.command("catch-up"), cwd=REPO_ROOT, env=p.env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.STDOUT, start_new_session=True)
    wait_for_a_dbt_query_in_flight(p, statement="merge into")
    os.killpg(process.pid, 9)
    process.wait()
    p.catch_up()
    assert_matches_oracle(s)


def test_stopping_the_loop_mid_run_interrupts_dbt_and_cancels_its_queries(make_state):
    s = make_state()
    p = s.pipeline
    load_then_produce_a_day_more(s, seed=6)
    loop = p.start_loop(interval_s=5)
    wait_for_a_dbt_query_in_flight(p)
    stopped = time.monotonic()
    output = p.stop_loop(loop)
    print(f"loop stopped {time.monotonic() - stopped:.1f}s after SIGTERM")
    assert "interrupted" in output, output[-3000:]
    assert not p.query("select count(*) from system.runtime.queries where state not in ('FINISHED', 'FAILED') "
                       f"and strpos(query, '{p.suffix}') > 0 and strpos(query, 'system.runtime') = 0")[0][0]
    assert p.runs()[-1][2] == "interrupted"
    p.catch_up()
    assert_matches_oracle(s)


def test_two_writers_started_at_once_one_waits_and_nothing_is_doubled(make_state, tmp_path):
    s = make_state()
    p = s.pipeline
    # A catch-up (as the loop runs) and a build by hand; the build leaves the data tests out
    # (they scan whole tables and run in the oracle's build), not the models or seeds.
    commands = [("catch-up",), ("dbt", "build", "--exclude", "resource_type:test", "resource_type:unit_test")]
    # Output to files: the waiting writer must not block on a full pipe that nobody reads.
    logs = [tmp_path / f"writer{i}.log" for i in range(len(commands))]
    writers = []
    for command, log in zip(commands, logs, strict=True):
        with log.open("w") as out:
            writers.append(subprocess.Popen(p.command(*command), cwd=REPO_ROOT, env=p.env(), stdout=out,
                                            stderr=subprocess.STDOUT, text=True))
    for writer in writers:
        writer.wait(timeout=1200)
    outputs = [log.read_text() for log in logs]
    assert [writer.returncode for writer in writers] == [0, 0], [o[-2000:] for o in outputs]
    assert sum("waiting for the lakehouse write lock" in output for output in outputs) == 1, "exactly one waited"
    assert_matches_oracle(s)


def test_a_recreated_topic_stops_the_pipeline_until_the_gap_is_acknowledged(settings, make_state):
    s = make_state()
    p = s.pipeline
    p.catch_up()
    recreate_topics(settings, [TELEMETRY_TEST_TOPIC])
    newer = generate_backfill(first_devices(s.device_customers, 5), FIRST_DAY + timedelta(days=2), days=1, seed=3,
                              chaos_rate=0)
    fresh = produce(settings, TELEMETRY_TEST_TOPIC, newer.telemetry)
    failed = p.lakehouse("catch-up", check=False)
    assert failed.returncode != 0
    assert "deleted and recreated" in failed.stderr and "acknowledge-gap" in failed.stderr, failed.stderr
    assert "OPEN" in p.lakehouse("pipeline", "gaps").stdout
    p.lakehouse("pipeline", "acknowledge-gap")
    p.catch_up()
    gaps = p.lakehouse("pipeline", "gaps").stdout
    assert "TOPIC_RECREATED" in gaps and "acknowledged" in gaps and "OPEN" not in gaps
    expected = expected_from_messages(s.telemetry + fresh, s.device_customers, datetime.now(UTC), p.device_zones())
    landed = p.query(f"select count(*), count(distinct kafka_topic_id) from iceberg.{p.staging}.stg_telemetry_messages")
    assert landed == [(len(s.telemetry) + len(fresh), 2)], "both topics' messages landed, once each"
    _assert_customer_days(p, expected)


def test_unread_messages_deleted_by_retention_stop_the_pipeline_and_are_recorded(settings, make_state):
    s = make_state()
    p = s.pipeline
    p.catch_up()
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    admin.delete_topics([FAULT_LOG_TEST_TOPIC], operation_timeout=30)[FAULT_LOG_TEST_TOPIC].result()
    # Tiny retention and segments: closed segments go within seconds (log.retention.check.interval.ms).
    _create_when_deleted(admin, NewTopic(FAULT_LOG_TEST_TOPIC, 1, 1, config={
        "retention.ms": "1000", "segment.bytes": "1048576", "file.delete.delay.ms": "0"}))
    recreated = p.lakehouse("pipeline", "cycle", check=False)
    assert recreated.returncode != 0 and "deleted and recreated" in recreated.stderr, recreated.stderr
    p.lakehouse("pipeline", "acknowledge-gap")
    deleted = [(f"d{i}", f"NOTE 2025-12-09 06:25:40 UTC MTR-10000 retention probe {i}") for i in range(500)]
    produce(settings, FAULT_LOG_TEST_TOPIC, deleted)
    _wait_for_log_start(admin, FAULT_LOG_TEST_TOPIC)
    admin.incremental_alter_configs([ConfigResource("TOPIC", FAULT_LOG_TEST_TOPIC, incremental_configs=[
        ConfigEntry("retention.ms", "604800000", incremental_operation=AlterConfigOpType.SET)])])[
        ConfigResource("TOPIC", FAULT_LOG_TEST_TOPIC)].result()
    kept = [(f"k{i}", f"NOTE 2025-12-09 06:25:40 UTC MTR-10000 retention probe kept {i}") for i in range(300)]
    produce(settings, FAULT_LOG_TEST_TOPIC, kept)
    failed = p.lakehouse("pipeline", "cycle", check=False)
    assert failed.returncode != 0
    assert "deleted (retention) before they were loaded" in failed.stderr, failed.stderr
    assert "acknowledge-gap" in failed.stderr
    p.lakehouse("pipeline", "acknowledge-gap")
    p.catch_up()
    gaps = p.lakehouse("pipeline", "gaps").stdout
    assert "RETENTION" in gaps and "TOPIC_RECREATED" in gaps and "OPEN" not in gaps, gaps
    recorded = _psql_rows(settings, "select messages_lost from pipeline.gaps "
                                    f"where scope = '{p.suffix}' and gap_kind = 'RETENTION'")
    loaded = p.query(f"select count(*) from iceberg.{p.staging}.stg_fault_log_messages "
                     "where raw_message like '%retention probe%'")[0][0]
    assert loaded == len(kept), "the messages after the gap were loaded, those deleted before it were not"
    assert recorded == [(len(deleted),)], "the gap records exactly the messages lost"


def test_the_clock_stepping_back_between_runs_loses_no_reading(make_state):
    library = _libfaketime()
    s = make_state()
    p = s.pipeline
    p.catch_up()
    more = generate_backfill(first_devices(s.device_customers, 5), FIRST_DAY + timedelta(days=1), days=1, seed=4)
    s.send(more.telemetry, more.fault_logs)
    # Alerts off: under libfaketime, librdkafka's timed waits stretch to their limits (a metadata
    # request times out), an artifact of faking one process's clock, not of the pipeline.
    p.lakehouse("catch-up", timeout_s=1200, extra_env={
        "LD_PRELOAD": library, "FAKETIME": "-2d", "FAKETIME_DONT_FAKE_MONOTONIC": "1", "LAKEHOUSE_ALERTS": "false"})
    loaded_at = p.query(f"select max(loaded_at) from iceberg.{p.staging}.stg_telemetry_messages "
                        f"where batch_id = (select max(batch_id) from iceberg.{p.staging}.stg_telemetry_messages)")
    assert loaded_at[0][0] < datetime.now(UTC) - timedelta(days=1), "the last batch ran with the clock two days back"
    assert_matches_oracle(s)


def test_a_fault_log_file_shipped_twice_counts_its_events_once(make_state, tmp_path):
    s = make_state()
    p = s.pipeline
    p.catch_up()
    events_before = p.query(f"select count(*) from iceberg.{p.staging}.stg_fault_logs")[0][0]
    devices = first_devices(s.device_customers, 5)
    start = datetime.combine(FIRST_DAY - timedelta(days=1), datetime.min.time(), UTC)
    lines = [fault_line(dialect, devices[i % 5][0], start + timedelta(minutes=7 * i), code)
             for i, (dialect, code) in enumerate((d, c) for d in ("ELX", "KMF", "SGX", "NOTE") for c in FAULT_CODES)]
    log = tmp_path / "meter.log"
    log.write_text("\n".join(lines) + "\n")
    for _ in range(2):
        shipped = subprocess.run([sys.executable, "telemetry_simulator.py", "--ship-log", str(log),
                                  "--fault-log-topic", FAULT_LOG_TEST_TOPIC], cwd=REPO_ROOT, capture_output=True,
                                 text=True, timeout=300)
        assert shipped.returncode == 0, shipped.stdout + shipped.stderr
    p.catch_up()
    landed = p.query(f"select count(*) from iceberg.{p.staging}.stg_fault_log_messages "
                     f"where batch_id > (select min(batch_id) from iceberg.{p.staging}.stg_fault_log_messages)")[0][0]
    events_after = p.query(f"select count(*), count(distinct fault_event_id) from iceberg.{p.staging}.stg_fault_logs")[0]
    assert landed == 2 * len(lines), "both shipments landed, every line once per shipment"
    assert events_after[0] == events_after[1] == events_before + len(lines), "each event counted once"


def _assert_customer_days(p: IsolatedPipeline, expected) -> None:
    got = {(c, d): e for c, d, e in p.query(f"select customer_id, reading_date, total_energy_kwh "
                                            f"from iceberg.{p.marts}.customer_usage_summary")}
    assert set(got) == set(expected.customer_days)
    for key, (_, energy, _) in expected.customer_days.items():
        assert abs(got[key] - energy) < 1e-6, (key, got[key], energy)


def _create_when_deleted(admin: AdminClient, topic: NewTopic, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            admin.create_topics([topic])[topic.topic].result()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def _wait_for_log_start(admin: AdminClient, topic: str, timeout_s: float = 90) -> None:
    """Until retention has deleted the first segments (the log no longer starts at 0)."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import OffsetSpec

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        start = admin.list_offsets({TopicPartition(topic, 0): OffsetSpec.earliest()})[TopicPartition(topic, 0)].result()
        if start.offset > 0:
            return
        time.sleep(2)
    raise AssertionError(f"retention never deleted a segment of {topic}")


def _libfaketime() -> str:
    found = sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))
    if not found:
        apt_install("faketime")
        found = sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))
    assert found and shutil.which("faketime"), "libfaketime is not installed"
    return str(found[0])


def _psql_rows(settings, sql: str) -> list[tuple]:
    with psycopg2.connect(**settings.postgres_connect_kwargs(role="admin")) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_a_dead_writers_create_or_replace_table_is_cancelled_by_the_next_writer(settings):
    """A merge's staged batch and a run table are written with `create or replace table`. Left
    running by a dead writer, it could commit after the next writer wrote its own and before its
    MERGE read it: the next writer must cancel it as it cancels a MERGE."""
    p = IsolatedPipeline(settings)
    scope = p.scoped_settings().as_trino(TRINO_DBT_USER)
    schema = p.intermediate
    query(settings, f'create schema if not exists iceberg."{schema}"')
    # A query that would run for hours, sent as dbt sends its queries (user and client source).
    statement = (f'create or replace table iceberg."{schema}"."device_intervals__windows" as '
                 "select count(*) as n from unnest(sequence(1, 10000)) as a (x) cross join unnest(sequence(1, 10000)) as b (y) "
                 "cross join unnest(sequence(1, 10000)) as c (z)")
    connection = connect(scope, source="dbt-trino-orphan")
    failures: list[Exception] = []

    def orphan() -> None:
        try:
            connection.cursor().execute(statement)
        except Exception as exc:  # noqa: BLE001 - the cancellation is expected
            failures.append(exc)

    writer = threading.Thread(target=orphan, daemon=True)
    writer.start()
    try:
        deadline = time.monotonic() + 60
        while not running_writes(scope):
            assert time.monotonic() < deadline, "the dead writer's create or replace table was never seen as a write"
            time.sleep(0.2)
        said: list[str] = []
        stop_orphaned_writes(scope, said.append, timeout_s=60)
        assert said and "create or replace table" in said[0], (said, failures)
        writer.join(timeout=60)
        assert not writer.is_alive() and failures, "the orphaned write was not cancelled"
        assert "cancelled by the next writer" in str(failures[0]), failures[0]
        assert not running_writes(scope)
    finally:
        for query_id, in query(settings, "select query_id from system.runtime.queries where state not in "
                                         f"('FINISHED', 'FAILED') and strpos(query, '{schema}') > 0 "
                                         "and strpos(query, 'system.runtime') = 0")[1]:
            query(settings, f"call system.runtime.kill_query(query_id => '{query_id}', message => 'test clean-up')")
        connection.close()
        p.drop_schemas()
