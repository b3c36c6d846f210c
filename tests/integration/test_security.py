"""Secure by default, against the running native stack: loopback listeners, Trino's access rules,
least-privilege PostgreSQL roles, and the refusal to expose a stack with example secrets."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg2
import pytest
from trino.exceptions import TrinoQueryError

from smartmeter.config import POSTGRES_ROLES, REPO_ROOT, TRINO_DBT_USER
from smartmeter.native.layout import Layout
from smartmeter.trino_sql import execute, query

ANALYST = "analyst"


# -- listening sockets -------------------------------------------------------------------------
def _children(pids: set[int]) -> set[int]:
    """`pids` and every process below them."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found = set(pids)
    while True:
        more = {pid for pid, parent in parents.items() if parent in found} - found
        if not more:
            return found
        found |= more


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def _listening() -> dict[str, tuple[str, int]]:
    """inode -> (address, port) of every listening TCP socket (/proc/net/tcp and tcp6)."""
    sockets = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A":  # LISTEN
                continue
            hex_address, hex_port = fields[1].split(":")
            raw = bytes.fromhex(hex_address)
            # The kernel prints each 32-bit word in host (little-endian) order.
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            sockets[fields[9]] = (str(ipaddress.ip_address(raw)), int(hex_port, 16))
    return sockets


def _is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_loopback or (ip.version == 6 and ip.ipv4_mapped is not None and ip.ipv4_mapped.is_loopback)


def test_every_listening_socket_of_the_stack_is_on_loopback(settings):
    supervisord = int((Layout(settings.home).run / "supervisord.pid").read_text())
    pids = _children({supervisord})
    listening = _listening()
    ours = {listening[inode] for pid in pids for inode in _socket_inodes(pid) if inode in listening}
    ports = {port for _, port in ours}
    # The check proves something only if it sees the services' own ports.
    for port in (settings.trino_port, settings.postgres_port, settings.kafka_port, settings.kafka_controller_port,
                 settings.s3_port):
        assert port in ports, f"no listening socket on port {port} among the stack's processes: {sorted(ours)}"
    exposed = sorted((address, port) for address, port in ours if not _is_loopback(address))
    assert not exposed, f"listening beyond loopback: {exposed}"


# -- Trino access rules ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def probe_table(settings):
    """A one-row table in iceberg.marts and in iceberg.staging, made by the admin."""
    name = f"security_probe_{uuid.uuid4().hex[:8]}"
    tables = [f"iceberg.marts.{name}", f"iceberg.staging.{name}"]
    for table in tables:
        execute(settings, f"CREATE TABLE {table} AS SELECT 1 AS x")
    yield tables
    for table in tables:
        execute(settings, f"DROP TABLE IF EXISTS {table}")


def _denied(settings, sql: str) -> str:
    with pytest.raises(TrinoQueryError) as caught:
        query(settings, sql)
    assert caught.value.error_name == "PERMISSION_DENIED", f"{sql}: {caught.value.error_name}: {caught.value.message}"
    assert "Access Denied" in caught.value.message
    return caught.value.message


def test_an_analyst_reads_marts_and_staging_and_nothing_else(settings, probe_table):
    analyst = settings.as_trino(ANALYST)
    for table in probe_table:
        assert query(analyst, f"SELECT x FROM {table}")[1] == [(1,)]
    marts = probe_table[0]
    _denied(analyst, "CALL postgresql.system.execute(query => 'create table public.security_probe (x int)')")
    _denied(analyst, f"INSERT INTO {marts} VALUES 2")
    _denied(analyst, f"DELETE FROM {marts}")
    _denied(analyst, f"DROP TABLE {marts}")
    _denied(analyst, "CREATE TABLE iceberg.marts.security_probe_new (x integer)")
    _denied(analyst, "CREATE SCHEMA iceberg.security_probe")
    # Not checked here: ALTER TABLE ... EXECUTE (optimize, expire_snapshots). Trino 476's file-based
    # access control allows table procedures to everyone (its check is empty); see README "Security".
    _denied(analyst, "SELECT count(*) FROM postgresql.public.customers")
    _denied(analyst, "SELECT count(*) FROM kafka.\"default\".telemetry_raw")
    # What the dashboards read besides: the view of meters with their zone (no other intermediate
    # model), and of the pipeline's record runs, gaps and the loop's heartbeat.
    assert query(analyst, "SELECT count(*) FROM iceberg.intermediate.int_devices_located")[1][0][0] > 0
    _denied(analyst, "SELECT count(*) FROM iceberg.intermediate.int_device_hours_aggregated")
    for table in ("runs", "gaps"):
        assert query(analyst, f"SELECT count(*) FROM postgresql.pipeline.{table}")[1][0][0] >= 0
    keys = {row[0] for row in query(analyst, "SELECT state_key FROM postgresql.pipeline.state")[1]}
    assert keys <= {"loop_heartbeat"}, keys
    _denied(analyst, "SELECT count(*) FROM postgresql.pipeline.run_offsets")
    _denied(analyst, "INSERT INTO postgresql.pipeline.state VALUES ('x', 'y', 'z', current_timestamp)")
    # dbt's views (definer rights) read for the analyst what dbt may grant.
    assert query(analyst, "SELECT count(*) FROM iceberg.marts.device_daily_metrics")[1][0][0] > 0


def test_dbt_writes_only_the_lakehouse_schemas_and_the_admin_maintains(settings, probe_table):
    dbt = settings.as_trino(TRINO_DBT_USER)
    marts = probe_table[0]
    execute(dbt, f"INSERT INTO {marts} VALUES 2")
    assert query(dbt, f"SELECT count(*) FROM {marts}")[1] == [(2,)]
    assert query(dbt, "SELECT count(*) FROM postgresql.public.devices")[1][0][0] > 0
    _denied(dbt, "CREATE SCHEMA iceberg.security_probe")
    _denied(dbt, "CALL postgresql.system.execute(query => 'create table public.security_probe (x int)')")
    _denied(dbt, "CALL iceberg.system.unregister_table(schema_name => 'marts', table_name => 'x')")
    execute(settings, f"ALTER TABLE {marts} EXECUTE optimize")
    execute(settings, f"ALTER TABLE {marts} EXECUTE expire_snapshots(retention_threshold => '1d')")


def test_trinos_postgresql_catalog_cannot_write_even_for_the_admin(settings):
    with pytest.raises(TrinoQueryError) as caught:
        query(settings, "CALL postgresql.system.execute(query => 'create table public.security_probe (x int)')")
    assert "permission denied" in caught.value.message.lower()
    with pytest.raises(TrinoQueryError) as caught:
        query(settings, "DELETE FROM postgresql.public.fault_labels")
    assert "permission denied" in caught.value.message.lower()


# -- PostgreSQL roles ------------------------------------------------------------------------
def test_no_project_role_is_a_superuser_and_each_can_log_in(settings):
    users = {role: settings.postgres_roles[role].user for role in POSTGRES_ROLES[1:]}
    with psycopg2.connect(**settings.postgres_connect_kwargs(role="admin")) as conn, conn.cursor() as cur:
        cur.execute("select rolname, rolsuper, rolcreaterole, rolcreatedb from pg_roles where rolname = any(%s)",
                    (list(users.values()),))
        attributes = {row[0]: row[1:] for row in cur.fetchall()}
    assert set(attributes) == set(users.values())
    assert all(value == (False, False, False) for value in attributes.values()), attributes
    for role in users:
        database = {"iceberg": "iceberg_catalog", "superset": settings.superset_db}.get(role)
        psycopg2.connect(**settings.postgres_connect_kwargs(role=role, database=database)).close()


def _pg_denied(settings, role: str, sql: str, database: str | None = None) -> None:
    conn = psycopg2.connect(**settings.postgres_connect_kwargs(role=role, database=database))
    try:
        with conn.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute(sql)
    finally:
        conn.close()


def test_each_role_has_exactly_its_rights(settings):
    # The simulator provisions and labels faults, nothing else.
    _pg_denied(settings, "simulator", "delete from devices")
    _pg_denied(settings, "simulator", "update customers set region = region")
    _pg_denied(settings, "simulator", "select count(*) from pipeline.runs")
    _pg_denied(settings, "simulator", "create table public.security_probe (x int)")
    # The pipeline owns its record and only reads master data.
    _pg_denied(settings, "pipeline", "delete from customers")
    _pg_denied(settings, "pipeline", "insert into fault_labels values ('x', 'y', now(), null)")
    # The catalog role owns its database only.
    with pytest.raises(psycopg2.OperationalError, match="permission denied"):
        psycopg2.connect(**settings.postgres_connect_kwargs(role="iceberg")).close()
    with pytest.raises(psycopg2.OperationalError, match="permission denied"):
        psycopg2.connect(**settings.postgres_connect_kwargs(role="simulator", database="iceberg_catalog")).close()
    # Superset's role owns its metadata database (every table in it) and connects nowhere else;
    # Trino's role reads the pipeline's record but cannot write it.
    with pytest.raises(psycopg2.OperationalError, match="permission denied"):
        psycopg2.connect(**settings.postgres_connect_kwargs(role="superset")).close()
    with pytest.raises(psycopg2.OperationalError, match="permission denied"):
        psycopg2.connect(**settings.postgres_connect_kwargs(role="pipeline", database=settings.superset_db)).close()
    with psycopg2.connect(**settings.postgres_connect_kwargs(role="superset", database=settings.superset_db)) as conn, \
            conn.cursor() as cur:
        cur.execute("select count(*) from pg_tables where schemaname = 'public' and tableowner <> current_user")
        assert cur.fetchone()[0] == 0
    _pg_denied(settings, "trino", "delete from pipeline.runs")
    _pg_denied(settings, "trino", "select count(*) from pipeline.run_offsets")


# -- exposure --------------------------------------------------------------------------------
def test_exposing_the_stack_with_example_secrets_is_refused(settings):
    env = {**os.environ, "LAKEHOUSE_BIND_ADDRESS": "0.0.0.0", "POSTGRES_PASSWORD": "lakehouse"}
    result = subprocess.run([sys.executable, "-m", "smartmeter", "up"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "LAKEHOUSE_BIND_ADDRESS=0.0.0.0 would expose the stack" in result.stderr
    assert "POSTGRES_PASSWORD is the example value" in result.stderr
    assert "TRINO_AUTH=password" in result.stderr
    assert "starting" not in result.stdout
