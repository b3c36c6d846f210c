"""Scale-out: `./lakehouse up --trino-workers 2` turns the single Trino into a three-node cluster.

The workers read the same trino-config/etc as the coordinator (coordinator=false from the
environment), announce themselves to it, and take a share of the splits of an Iceberg scan.
`./lakehouse up --trino-workers 0` stops them again, so the rest of the suite sees one node.
"""

from __future__ import annotations

import time
import uuid

import pytest

from smartmeter.trino_sql import connect, query
from tests.conftest import run_lakehouse

pytestmark = pytest.mark.integration

WORKERS = 2
FILES = 12


def _active_nodes(settings) -> list[tuple[str, str, bool]]:
    _, rows = query(settings, "SELECT node_id, http_uri, coordinator FROM system.runtime.nodes WHERE state = 'active'")
    return [(str(n), str(u), bool(c)) for n, u, c in rows]


def _wait_for_nodes(settings, count: int, timeout_s: float = 90) -> list[tuple[str, str, bool]]:
    deadline = time.monotonic() + timeout_s
    nodes = _active_nodes(settings)
    while len(nodes) != count and time.monotonic() < deadline:
        time.sleep(2)
        nodes = _active_nodes(settings)
    return nodes


@pytest.fixture
def two_workers(settings):
    started = time.monotonic()
    up = run_lakehouse("up", "--trino-workers", str(WORKERS))
    print(f"workers up in {time.monotonic() - started:.1f}s")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield
    finally:
        down = run_lakehouse("up", "--trino-workers", "0")
        assert down.returncode == 0, down.stdout + down.stderr
        status = run_lakehouse("status")
        assert "trino-worker" not in status.stdout, status.stdout


def test_two_workers_join_and_take_a_share_of_the_splits(settings, two_workers):
    status = run_lakehouse("status")
    assert status.returncode == 0, status.stdout
    for n in range(1, WORKERS + 1):
        assert any(line.startswith(f"trino-worker-{n}") and "healthy" in line for line in status.stdout.splitlines()), status.stdout

    nodes = _wait_for_nodes(settings, WORKERS + 1)
    assert len(nodes) == WORKERS + 1, f"system.runtime.nodes lists {nodes}"
    workers = {node_id for node_id, _uri, coordinator in nodes if not coordinator}
    assert len(workers) == WORKERS

    name = f"it_workers_{uuid.uuid4().hex[:8]}"
    table = f"iceberg.staging.{name}"
    # One data file per bucket: FILES files, so FILES splits for the scan below.
    query(settings, f"CREATE TABLE {table} WITH (partitioning = ARRAY['bucket(id, {FILES})']) AS "
                    "SELECT id, CAST(id AS double) * 0.5 AS energy_kwh FROM ("
                    "  SELECT (a - 1) * 300 + b AS id FROM UNNEST(sequence(1, 200)) AS t1(a) CROSS JOIN UNNEST(sequence(1, 300)) AS t2(b))")
    try:
        _, files = query(settings, f'SELECT count(*) FROM iceberg.staging."{name}$files"')
        assert files[0][0] >= FILES
        conn = connect(settings)
        try:
            cur = conn.cursor()
            cur.execute(f"SELECT count(*), sum(energy_kwh) FROM {table}")
            assert cur.fetchall() == [[60000, 900015000.0]]
            query_id = cur.query_id
        finally:
            conn.close()
        _, per_node = query(
            settings,
            "SELECT node_id, sum(completed_splits) FROM system.runtime.tasks "
            f"WHERE query_id = '{query_id}' GROUP BY node_id",
        )
        splits = {str(node): int(count) for node, count in per_node}
        print(f"splits per node: {splits}")
        busy_workers = {node for node, count in splits.items() if node in workers and count > 0}
        assert busy_workers == workers, f"every worker should scan some of the {FILES} files: {splits}"
    finally:
        query(settings, f"DROP TABLE IF EXISTS {table}")
