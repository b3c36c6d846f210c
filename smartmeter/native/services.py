"""The lakehouse services as native processes: how each one starts, and how we know it is healthy.

Every service reads the same configuration files as its compose twin (trino-config/,
kafka-config/, objectstore/, postgres-init/); only environment variables differ.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import shutil
import string
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from smartmeter.config import Settings, environment
from smartmeter.native import artifacts
from smartmeter.native.errors import StackError
from smartmeter.native.layout import (
    DBT_PROJECT,
    KAFKA_CONFIG,
    OBJECTSTORE_CONFIG,
    POSTGRES_INIT,
    TRINO_ETC,
    Layout,
)
from smartmeter.native.process import is_alive, read_pid, spawn, stop
from smartmeter.s3 import S3Client, S3Error

TOPICS = ("telemetry_raw", "meter_fault_logs", "telemetry_raw_test", "meter_fault_logs_test")
MIN_POSTGRES = 15


@dataclass
class Context:
    """What every service needs to start: settings, state layout and the Java runtime."""

    settings: Settings
    layout: Layout
    java_home: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def java(self) -> str:
        if self.java_home is None:
            raise StackError("internal: Java was not resolved before starting a JVM service")
        return str(self.java_home / "bin" / "java")

    def env(self, **overrides: str) -> dict[str, str]:
        """The service environment: .env defaults and the caller's environment, plus overrides."""
        merged = dict(environment())
        merged.update(
            KAFKA_BOOTSTRAP_SERVERS=self.settings.kafka_bootstrap_servers,
            POSTGRES_HOST=self.settings.postgres_host,
            POSTGRES_PORT=str(self.settings.postgres_port),
            S3_ENDPOINT=self.settings.s3_endpoint,
            S3_PORT=str(self.settings.s3_port),
            TRINO_PORT=str(self.settings.trino_port),
        )
        if self.java_home is not None:
            merged["JAVA_HOME"] = str(self.java_home)
            merged["PATH"] = f"{self.java_home / 'bin'}{os.pathsep}{merged.get('PATH', '')}"
        merged.update(self.extra_env)
        merged.update(overrides)
        return merged


class Service:
    name: str = ""
    port_env: str = ""

    def port(self, ctx: Context) -> int:
        raise NotImplementedError

    def prepare(self, ctx: Context) -> None:
        """Downloads and one-time initialisation of on-disk state (runs before start)."""

    def start(self, ctx: Context) -> None:
        raise NotImplementedError

    def healthy(self, ctx: Context) -> bool:
        raise NotImplementedError

    def initialise(self, ctx: Context) -> None:
        """Objects a fresh stack needs (databases, bucket, topics, schemas); idempotent."""

    def timeout_s(self) -> float:
        return 120.0

    def stop(self, ctx: Context) -> bool:
        """Stop the process; True if it was running."""
        return stop(ctx.layout.pid_file(self.name), timeout_s=60)

    def endpoint(self, ctx: Context) -> str:
        return f"localhost:{self.port(ctx)}"


def _render(template: Path, values: dict[str, str], target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        target.write_text(string.Template(template.read_text()).substitute(values))
    except KeyError as exc:
        raise StackError(f"{template}: environment variable {exc} is not set") from exc
    return target


class Postgres(Service):
    name = "postgres"
    port_env = "POSTGRES_PORT"

    def port(self, ctx: Context) -> int:
        return ctx.settings.postgres_port

    @staticmethod
    def bin_dir() -> Path:
        found = []
        for candidate in Path("/usr/lib/postgresql").glob("*/bin/postgres"):
            try:
                version = int(candidate.parent.parent.name)
            except ValueError:
                continue
            if version >= MIN_POSTGRES:
                found.append((version, candidate.parent))
        if not found:
            _install_postgres()
            return Postgres.bin_dir()
        return max(found)[1]

    @staticmethod
    def os_user() -> str | None:
        """PostgreSQL refuses to run as root, so root runs it as the `postgres` system user."""
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam("postgres")
        except KeyError as exc:
            raise StackError("running as root needs the `postgres` system user: apt-get install -y postgresql") from exc
        return "postgres"

    def data_dir(self, ctx: Context) -> Path:
        return ctx.layout.data / "postgres"

    def socket_dir(self, ctx: Context) -> Path:
        return ctx.layout.run / "postgres"

    def _chown(self, path: Path) -> None:
        user = self.os_user()
        if user is not None:
            shutil.chown(path, user, user)

    def prepare(self, ctx: Context) -> None:
        bin_dir = self.bin_dir()
        data = self.data_dir(ctx)
        for path in (data, self.socket_dir(ctx)):
            path.mkdir(parents=True, exist_ok=True)
            self._chown(path)
        if (data / "PG_VERSION").is_file():
            return
        pwfile = ctx.layout.run / "postgres.pw"
        pwfile.write_text(ctx.settings.postgres_password + "\n")
        self._chown(pwfile)
        try:
            result = subprocess.run(
                [str(bin_dir / "initdb"), "-D", str(data), "-U", ctx.settings.postgres_user, f"--pwfile={pwfile}",
                 "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C"],
                capture_output=True, text=True, user=self.os_user(),
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise StackError(f"initdb failed:\n{result.stdout}{result.stderr}")

    def start(self, ctx: Context) -> None:
        command = [
            str(self.bin_dir() / "postgres"), "-D", str(self.data_dir(ctx)),
            "-c", "listen_addresses=127.0.0.1",
            "-c", f"port={self.port(ctx)}",
            "-c", f"unix_socket_directories={self.socket_dir(ctx)}",
            "-c", "shared_buffers=128MB",
        ]
        log = ctx.layout.log_file(self.name)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.touch()
        self._chown(log)
        spawn(command, log_file=log, pid_file=ctx.layout.pid_file(self.name), env=ctx.env(), user=self.os_user())

    def connect(self, ctx: Context, database: str = "postgres"):
        import psycopg2

        return psycopg2.connect(**ctx.settings.postgres_connect_kwargs(database))

    def healthy(self, ctx: Context) -> bool:
        try:
            with self.connect(ctx) as conn, conn.cursor() as cur:
                cur.execute("select 1")
                return cur.fetchone() == (1,)
        except Exception:  # noqa: BLE001 - any failure means "not ready yet"
            return False

    def initialise(self, ctx: Context) -> None:
        conn = self.connect(ctx)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = %s", (ctx.settings.postgres_db,))
            if cur.fetchone() is None:
                cur.execute(f'create database "{ctx.settings.postgres_db}"')
        conn.close()
        # The same files, in the same order, as the postgres image's docker-entrypoint-initdb.d.
        psql = str(self.bin_dir() / "psql")
        env = ctx.env(PGPASSWORD=ctx.settings.postgres_password)
        for script in sorted(POSTGRES_INIT.glob("*.sql")):
            result = subprocess.run(
                [psql, "-v", "ON_ERROR_STOP=1", "-q", "-h", "127.0.0.1", "-p", str(self.port(ctx)),
                 "-U", ctx.settings.postgres_user, "-d", ctx.settings.postgres_db, "-f", str(script)],
                capture_output=True, text=True, env=env,
            )
            if result.returncode != 0:
                raise StackError(f"{script.name} failed:\n{result.stderr}")

    def endpoint(self, ctx: Context) -> str:
        return f"postgresql://{ctx.settings.postgres_user}@localhost:{self.port(ctx)}/{ctx.settings.postgres_db}"


def _install_postgres() -> None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise StackError(f"PostgreSQL {MIN_POSTGRES}+ server binaries not found. Install them: sudo apt-get install -y postgresql")
    print("  installing PostgreSQL from Debian packages ...", file=sys.stderr, flush=True)
    # Keep the package from starting its own cluster on 5432: ours runs under the state directory.
    policy = Path("/usr/sbin/policy-rc.d")
    created = not policy.exists()
    if created:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "postgresql"]):
            if subprocess.run(cmd, env=env).returncode != 0:
                raise StackError(f"`{' '.join(cmd)}` failed; install PostgreSQL {MIN_POSTGRES}+ by hand")
    finally:
        if created:
            policy.unlink()


class ObjectStore(Service):
    """S3Proxy with the filesystem backend (see README: why not MinIO)."""

    name = "objectstore"
    port_env = "S3_PORT"

    def port(self, ctx: Context) -> int:
        return ctx.settings.s3_port

    def client(self, ctx: Context) -> S3Client:
        s = ctx.settings
        return S3Client(s.s3_endpoint, s.s3_access_key, s.s3_secret_key, s.s3_region)

    def prepare(self, ctx: Context) -> None:
        artifacts.fetch(ctx.layout, artifacts.S3PROXY)
        (ctx.layout.data / "objectstore").mkdir(parents=True, exist_ok=True)

    def start(self, ctx: Context) -> None:
        values = ctx.env(S3_BIND_HOST="127.0.0.1", S3_DATA_DIR=str(ctx.layout.data / "objectstore"))
        conf = _render(OBJECTSTORE_CONFIG / "s3proxy.properties", values, ctx.layout.conf / "s3proxy.properties")
        jar = artifacts.fetch(ctx.layout, artifacts.S3PROXY)
        command = [ctx.java, "-Xmx512m", "-jar", str(jar), "--properties", str(conf)]
        spawn(command, log_file=ctx.layout.log_file(self.name), pid_file=ctx.layout.pid_file(self.name), env=ctx.env())

    def healthy(self, ctx: Context) -> bool:
        try:
            self.client(ctx).list_buckets()
        except S3Error:
            return False
        return True

    def initialise(self, ctx: Context) -> None:
        self.client(ctx).create_bucket(ctx.settings.s3_bucket)

    def endpoint(self, ctx: Context) -> str:
        return f"{ctx.settings.s3_endpoint} (bucket {ctx.settings.s3_bucket})"


class Kafka(Service):
    name = "kafka"
    port_env = "KAFKA_PORT"

    def port(self, ctx: Context) -> int:
        return ctx.settings.kafka_port

    def config_file(self, ctx: Context) -> Path:
        return ctx.layout.conf / "kafka" / "server.properties"

    def _render_config(self, ctx: Context) -> Path:
        s = ctx.settings
        overrides = {
            "listeners": f"PLAINTEXT://127.0.0.1:{s.kafka_port},CONTROLLER://127.0.0.1:{s.kafka_controller_port}",
            "advertised.listeners": f"PLAINTEXT://localhost:{s.kafka_port}",
            "controller.quorum.voters": f"1@127.0.0.1:{s.kafka_controller_port}",
            "log.dirs": str(ctx.layout.data / "kafka"),
        }
        lines = []
        for line in (KAFKA_CONFIG / "server.properties").read_text().splitlines():
            key = line.split("=", 1)[0].strip()
            lines.append(f"{key}={overrides.pop(key)}" if key in overrides else line)
        lines += [f"{k}={v}" for k, v in overrides.items()]
        target = self.config_file(ctx)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(lines) + "\n")
        return target

    def _java_command(self, ctx: Context, heap: str, main: str, *args: str) -> list[str]:
        libs = artifacts.kafka_libs(ctx.layout)
        return [
            ctx.java, f"-Xmx{heap}", f"-Xms{heap}",
            f"-Dlog4j2.configurationFile={KAFKA_CONFIG / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={ctx.layout.logs}",
            "-cp", f"{libs}/*", main, *args,
        ]

    def prepare(self, ctx: Context) -> None:
        artifacts.kafka_libs(ctx.layout)
        conf = self._render_config(ctx)
        if (ctx.layout.data / "kafka" / "meta.properties").is_file():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        command = self._java_command(ctx, "256m", "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(conf))
        result = subprocess.run(command, capture_output=True, text=True, env=ctx.env())
        if result.returncode != 0:
            raise StackError(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")

    def start(self, ctx: Context) -> None:
        command = self._java_command(ctx, "1g", "kafka.Kafka", str(self._render_config(ctx)))
        # The broker's own log4j2 log is logs/kafka.log; stdout only catches JVM-level failures.
        spawn(command, log_file=ctx.layout.logs / "kafka.stdout.log", pid_file=ctx.layout.pid_file(self.name), env=ctx.env())

    def admin(self, ctx: Context):
        from confluent_kafka.admin import AdminClient

        # log_level 0 keeps librdkafka's connection-refused chatter out of the progress output.
        return AdminClient({"bootstrap.servers": ctx.settings.kafka_bootstrap_servers, "socket.timeout.ms": 3000, "log_level": 0})

    def healthy(self, ctx: Context) -> bool:
        try:
            metadata = self.admin(ctx).list_topics(timeout=3)
        except Exception:  # noqa: BLE001 - any failure means "not ready yet"
            return False
        return bool(metadata.brokers)

    def initialise(self, ctx: Context) -> None:
        from confluent_kafka.admin import NewTopic

        admin = self.admin(ctx)
        partitions = int(ctx.env().get("KAFKA_TOPIC_PARTITIONS", "3"))
        existing = admin.list_topics(timeout=10).topics
        wanted = [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in TOPICS if t not in existing]
        for topic, future in admin.create_topics(wanted).items() if wanted else []:
            try:
                future.result(30)
            except Exception as exc:  # noqa: BLE001
                raise StackError(f"creating Kafka topic {topic} failed: {exc}") from exc


class Trino(Service):
    """The coordinator (index 0) or worker N, all from trino-config/etc."""

    def __init__(self, worker: int = 0) -> None:
        self.worker = worker
        self.name = "trino" if worker == 0 else f"trino-worker-{worker}"
        self.port_env = "TRINO_PORT" if worker == 0 else "TRINO_WORKER_BASE_PORT"

    def port(self, ctx: Context) -> int:
        if self.worker == 0:
            return ctx.settings.trino_port
        return int(ctx.env().get("TRINO_WORKER_BASE_PORT", str(ctx.settings.trino_port + 10))) + self.worker - 1

    def prepare(self, ctx: Context) -> None:
        artifacts.trino_server(ctx.layout)
        artifacts.fetch(ctx.layout, artifacts.TRINO_CLI)

    def start(self, ctx: Context) -> None:
        home = artifacts.trino_server(ctx.layout)
        is_coordinator = self.worker == 0
        env = ctx.env(
            TRINO_COORDINATOR=str(is_coordinator).lower(),
            TRINO_INCLUDE_COORDINATOR="true",
            TRINO_HTTP_PORT=str(self.port(ctx)),
            TRINO_DISCOVERY_URI=f"http://127.0.0.1:{ctx.settings.trino_port}",
            TRINO_BIND_IP="127.0.0.1",
            TRINO_INTERNAL_ADDRESS="127.0.0.1",
            TRINO_ETC_DIR=str(TRINO_ETC),
        )
        data_dir = ctx.layout.data / self.name
        # Our pid file is authoritative; the launcher's own one may name a dead process that was
        # never reaped (it would refuse to start with "already running").
        (data_dir / "var" / "run" / "launcher.pid").unlink(missing_ok=True)
        command = [
            str(home / "bin" / "launcher"), "run",
            f"--etc-dir={TRINO_ETC}",
            f"--data-dir={data_dir}",
            f"--jvm-dir={ctx.java_home}",
        ]
        spawn(command, log_file=ctx.layout.log_file(self.name), pid_file=ctx.layout.pid_file(self.name), env=env, cwd=home)

    def info(self, ctx: Context) -> dict | None:
        try:
            with urllib.request.urlopen(f"http://localhost:{self.port(ctx)}/v1/info", timeout=3) as response:
                return json.load(response)
        except (OSError, ValueError):
            return None

    def healthy(self, ctx: Context) -> bool:
        info = self.info(ctx)
        return info is not None and info.get("starting") is False

    def wait_schedulable(self, ctx: Context, timeout_s: float = 60) -> None:
        """Block until a connector query runs. For a few seconds after /v1/info stops reporting
        "starting", the scheduler's node map is still empty and such queries fail with
        NO_NODES_AVAILABLE; a query on master data proves the coordinator can schedule splits."""
        from trino.exceptions import TrinoQueryError

        from smartmeter.trino_sql import query

        deadline = time.monotonic() + timeout_s
        while True:
            try:
                query(ctx.settings, "SELECT count(*) FROM postgresql.public.devices")
                return
            except TrinoQueryError as exc:
                if exc.error_name != "NO_NODES_AVAILABLE" or time.monotonic() > deadline:
                    raise StackError(f"Trino cannot run queries yet: {exc.error_name}: {exc.message}") from exc
            time.sleep(0.5)

    def timeout_s(self) -> float:
        return 240.0

    def stop(self, ctx: Context) -> bool:
        """Workers shut down gracefully, so the coordinator stops scheduling on them first."""
        pid = read_pid(ctx.layout.pid_file(self.name))
        if self.worker and pid is not None:
            request = urllib.request.Request(
                f"http://localhost:{self.port(ctx)}/v1/info/state", data=b'"SHUTTING_DOWN"', method="PUT",
                headers={"Content-Type": "application/json", "X-Trino-User": ctx.settings.trino_user},
            )
            try:
                urllib.request.urlopen(request, timeout=5).close()
                deadline = time.monotonic() + 90
                while is_alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.5)
            except OSError:
                pass  # not answering: fall back to a signal
        return super().stop(ctx)

    def initialise(self, ctx: Context) -> None:
        if self.worker:
            return
        from smartmeter.trino_sql import execute

        for schema in ("staging", "marts"):
            execute(ctx.settings, f"CREATE SCHEMA IF NOT EXISTS iceberg.{schema}")

    def endpoint(self, ctx: Context) -> str:
        return f"http://localhost:{self.port(ctx)}" + (" (web UI)" if self.worker == 0 else "")


class PipelineLoop(Service):
    """The pipeline loop (smartmeter/pipeline/loop.py), as the compose dbt container runs it."""

    name = "pipeline"
    port_env = ""

    def port(self, ctx: Context) -> int:
        return 0

    def start(self, ctx: Context) -> None:
        # The log is a file: no colour codes from dbt.
        env = ctx.env(DBT_TARGET="native", DBT_USE_COLORS="false", PYTHONUNBUFFERED="1")
        spawn([sys.executable, "-m", "smartmeter", "pipeline", "loop"], log_file=ctx.layout.log_file(self.name),
              pid_file=ctx.layout.pid_file(self.name), env=env, cwd=DBT_PROJECT.parent)

    def healthy(self, ctx: Context) -> bool:
        return read_pid(ctx.layout.pid_file(self.name)) is not None

    def endpoint(self, ctx: Context) -> str:
        return f"pipeline loop, log {ctx.layout.log_file(self.name)}"


CORE_SERVICES: tuple[Service, ...] = (Postgres(), ObjectStore(), Kafka(), Trino())
