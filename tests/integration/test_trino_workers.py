"""Scale-out: `./lakehouse up --trino-workers 2` turns the single Trino into a three-node cluster.

The workers read the same trino-config/etc as the coordinator (coordinator=false from the
environment), announce themselves to it, and take a share of the splits of an Iceberg scan.
`./lakehouse up --trino-workers 0` stops them again, so the rest of the suite sees one node.
"""

from __future__ import annotations

import time

import pytest

from smartmeter.trino_sql import query
from tests.conftest import run_lakehouse
from tests.helpers.trino import splits_per_node_of_a_scan

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

    splits = splits_per_node_of_a_scan(settings, FILES)
    print(f"splits per node: {splits}")
    busy_workers = {node for node, count in splits.items() if node in workers and count > 0}
    assert busy_workers == workers, f"every worker should scan some of the {FILES} files: {splits}"
