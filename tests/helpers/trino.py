"""Trino clusters as the tests see them: which nodes take part in a scan."""

from __future__ import annotations

import uuid

from smartmeter.config import Settings
from smartmeter.trino_sql import TrinoSession, query

SCAN_ROWS, SCAN_ENERGY_SUM = 60_000, 900_015_000.0


def splits_per_node_of_a_scan(settings: Settings, files: int) -> dict[str, int]:
    """Completed splits per node id of one scan of a throwaway Iceberg table in `files` data files
    (one a bucket, so `files` splits to share out). The table is dropped again."""
    name = f"it_workers_{uuid.uuid4().hex[:8]}"
    table = f"iceberg.staging.{name}"
    query(settings, f"CREATE TABLE {table} WITH (partitioning = ARRAY['bucket(id, {files})']) AS "
                    "SELECT id, CAST(id AS double) * 0.5 AS energy_kwh FROM ("
                    "  SELECT (a - 1) * 300 + b AS id FROM UNNEST(sequence(1, 200)) AS t1(a) CROSS JOIN UNNEST(sequence(1, 300)) AS t2(b))")
    try:
        _, written = query(settings, f'SELECT count(*) FROM iceberg.staging."{name}$files"')
        assert written[0][0] >= files
        with TrinoSession(settings) as trino:
            assert trino.rows(f"SELECT count(*), sum(energy_kwh) FROM {table}") == [(SCAN_ROWS, SCAN_ENERGY_SUM)]
            query_id = trino.last_query_id
        _, per_node = query(settings, "SELECT node_id, sum(completed_splits) FROM system.runtime.tasks "
                                      f"WHERE query_id = '{query_id}' GROUP BY node_id")
        return {str(node): int(count) for node, count in per_node}
    finally:
        query(settings, f"DROP TABLE IF EXISTS {table}")
