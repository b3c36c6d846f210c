"""The lakehouse services as native processes: how each one is prepared and run, and how we know
it is healthy. supervisord runs them (smartmeter/native/supervisor.py); each runs in the
foreground through `python -m smartmeter.native.launch NAME`, which builds its command and
environment here.

Every service reads the same configuration files as its compose twin (trino-config/,
kafka-config/, objectstore/, postgres-init/); only environment variables differ.
"""

from __future__ import annotations

import base64
import datetime
import http.client
import json
import os
import pwd
import shutil
import socket
import string
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from smartmeter import dashboards
from smartmeter.config import POSTGRES_ROLES, SETUP_TOPICS, TOPICS, TRINO_ADMIN_USER, Settings, environment
from smartmeter.errors import LakehouseError
from smartmeter.native import artifacts
from smartmeter.native.install import postgres_bin_dir
from smartmeter.native.layout import KAFKA_CONFIG, OBJECTSTORE_CONFIG, POSTGRES_INIT, TRINO_ETC, Layout


@dataclass
class Context:
    """What every service needs: settings, state layout and the Java runtime."""

    settings: Settings
    layout: Layout
    java_home: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def java(self) -> str:
        if self.java_home is None:
            raise LakehouseError("internal: Java was not resolved before starting a JVM service")
        return str(self.java_home / "bin" / "java")

    def env(self, **overrides: str) -> dict[str, str]:
        """The service environment: .env defaults and the caller's environment, plus overrides."""
        merged = dict(environment())
        s = self.settings
        # What trino-config/ and objectstore/ read (${ENV:...}), from the settings and their defaults.
        merged.update(
            POSTGRES_DB=s.postgres_db,
            POSTGRES_TRINO_USER=s.postgres_roles["trino"].user,
            POSTGRES_TRINO_PASSWORD=s.postgres_roles["trino"].password,
            POSTGRES_ICEBERG_USER=s.postgres_roles["iceberg"].user,
            POSTGRES_ICEBERG_PASSWORD=s.postgres_roles["iceberg"].password,
            S3_ACCESS_KEY=s.s3_access_key,
            S3_SECRET_KEY=s.s3_secret_key,
            S3_BUCKET=s.s3_bucket,
            S3_REGION=s.s3_region,
            KAFKA_TABLE_NAMES=",".join(TOPICS),
        )
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
    needs_java = False
    stop_signal = "TERM"
    stop_wait_s = 60

    def port(self, ctx: Context) -> int:
        return 0

    def prepare(self, ctx: Context) -> None:
        """Downloads and one-time initialisation of on-disk state (as root, before the first start)."""

    def command(self, ctx: Context) -> list[str]:
        """The service in the foreground (what the launcher execs)."""
        raise NotImplementedError

    def environment(self, ctx: Context) -> dict[str, str]:
        return ctx.env()

    def user(self) -> str | None:
        """The system user supervisord runs it as (None: the caller's)."""
        return None

    def supervisor_command(self) -> list[str]:
        """What supervisord runs: the launcher, which builds command and environment here."""
        return [sys.executable, "-m", "smartmeter.native.launch", self.name]

    def healthy(self, ctx: Context) -> bool:
        raise NotImplementedError

    def initialise(self, ctx: Context) -> None:
        """Objects a fresh stack needs (databases, bucket, topics, schemas); idempotent."""

    def before_start(self, ctx: Context) -> None:
        """Work before supervisord starts it, once the earlier stages are healthy."""

    def before_stop(self, ctx: Context) -> None:
        """Work before supervisord sends the stop signal."""

    def timeout_s(self) -> float:
        return 120.0

    def endpoint(self, ctx: Context) -> str:
        return f"localhost:{self.port(ctx)}"


def _write_secret(target: Path, text: str) -> Path:
    """A file only its owner reads, created so (never briefly world-readable)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(text)
    return target


def _render(template: Path, values: dict[str, str], target: Path) -> Path:
    """A rendered config file; 0600, since several hold secrets."""
    try:
        text = string.Template(template.read_text()).substitute(values)
    except KeyError as exc:
        raise LakehouseError(f"{template}: environment variable {exc} is not set") from exc
    return _write_secret(target, text)


class Postgres(Service):
    name = "postgres"
    port_env = "POSTGRES_PORT"
    # SIGINT is PostgreSQL's fast shutdown (SIGTERM waits for every client to disconnect).
    stop_signal = "INT"

    def port(self, ctx: Context) -> int:
        return ctx.settings.postgres_port

    def user(self) -> str | None:
        """PostgreSQL refuses to run as root, so root runs it as the `postgres` system user."""
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam("postgres")
        except KeyError as exc:
            raise LakehouseError("running as root needs the `postgres` system user: apt-get install -y postgresql") from exc
        return "postgres"

    def data_dir(self, ctx: Context) -> Path:
        return ctx.layout.data / "postgres"

    def socket_dir(self, ctx: Context) -> Path:
        return ctx.layout.run / "postgres"

    def _chown(self, path: Path) -> None:
        user = self.user()
        if user is not None:
            shutil.chown(path, user, user)

    def prepare(self, ctx: Context) -> None:
        bin_dir = postgres_bin_dir()
        data = self.data_dir(ctx)
        for path in (data, self.socket_dir(ctx)):
            path.mkdir(parents=True, exist_ok=True)
            self._chown(path)
        if (data / "PG_VERSION").is_file():
            return
        pwfile = _write_secret(ctx.layout.run / "postgres.pw", ctx.settings.postgres_password + "\n")
        self._chown(pwfile)
        try:
            result = subprocess.run(
                [str(bin_dir / "initdb"), "-D", str(data), "-U", ctx.settings.postgres_user, f"--pwfile={pwfile}",
                 "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C"],
                capture_output=True, text=True, user=self.user(),
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise LakehouseError(f"initdb failed:\n{result.stdout}{result.stderr}")

    def command(self, ctx: Context) -> list[str]:
        return [
            str(postgres_bin_dir() / "postgres"), "-D", str(self.data_dir(ctx)),
            "-c", f"listen_addresses={ctx.settings.bind_address}",
            "-c", f"port={self.port(ctx)}",
            "-c", f"unix_socket_directories={self.socket_dir(ctx)}",
            "-c", "shared_buffers=128MB",
        ]

    def supervisor_command(self) -> list[str]:
        # Runs as the postgres user, which cannot read the checkout's .env: the command needs
        # nothing from it, so supervisord runs the server directly (the command is rendered at `up`).
        return []

    def connect(self, ctx: Context, database: str = "postgres"):
        import psycopg2

        return psycopg2.connect(**ctx.settings.postgres_connect_kwargs(role="admin", database=database))

    def healthy(self, ctx: Context) -> bool:
        # pg_isready needs no credentials: a password changed in .env is fixed after startup.
        result = subprocess.run([str(postgres_bin_dir() / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port(ctx))],
                                capture_output=True)
        return result.returncode == 0

    def _rotate_example_password(self, ctx: Context) -> None:
        """A stack set up before `.env` held random secrets has the admin password from
        .env.example: log in with it once and set the one from `.env`."""
        import psycopg2
        from psycopg2 import sql

        from smartmeter.security import example_values

        try:
            self.connect(ctx).close()
            return
        except psycopg2.OperationalError as exc:
            legacy = example_values().get("POSTGRES_PASSWORD")
            if "password authentication failed" not in str(exc) or not legacy:
                raise LakehouseError(f"PostgreSQL refuses the admin {ctx.settings.postgres_user}: {str(exc).strip()}") from exc
        kwargs = {**ctx.settings.postgres_connect_kwargs(role="admin", database="postgres"), "password": legacy}
        try:
            conn = psycopg2.connect(**kwargs)
        except psycopg2.OperationalError as exc:
            raise LakehouseError(f"PostgreSQL refuses the admin {ctx.settings.postgres_user} with POSTGRES_PASSWORD from "
                                 ".env: set the password the stack was made with") from exc
        conn.autocommit = True
        with conn, conn.cursor() as cur:
            cur.execute(sql.SQL("alter role {} password %s").format(sql.Identifier(ctx.settings.postgres_user)),
                        (ctx.settings.postgres_password,))
        conn.close()
        print("  PostgreSQL admin password changed from the example value to the one in .env", flush=True)

    def role_env(self, ctx: Context) -> dict[str, str]:
        """What postgres-init/05-roles.sql, 06-iceberg-owner.sql and 07-superset.sql read (\\getenv)."""
        values = {"PGPASSWORD": ctx.settings.postgres_password, "POSTGRES_DB": ctx.settings.postgres_db,
                  "SUPERSET_DB": ctx.settings.superset_db}
        for role in POSTGRES_ROLES[1:]:
            credentials = ctx.settings.postgres_credentials(role)
            values[f"POSTGRES_{role.upper()}_USER"] = credentials.user
            values[f"POSTGRES_{role.upper()}_PASSWORD"] = credentials.password
        return values

    def run_script(self, ctx: Context, script: Path, database: str | None = None) -> None:
        """One postgres-init file with psql, as the admin, as the postgres image runs it."""
        result = subprocess.run(
            [str(postgres_bin_dir() / "psql"), "-v", "ON_ERROR_STOP=1", "-q", "-X", "-h", "127.0.0.1", "-p", str(self.port(ctx)),
             "-U", ctx.settings.postgres_user, "-d", database or ctx.settings.postgres_db, "-f", str(script)],
            capture_output=True, text=True, env=ctx.env(**self.role_env(ctx)),
        )
        if result.returncode != 0:
            raise LakehouseError(f"{script.name} failed:\n{result.stderr}")

    def initialise(self, ctx: Context) -> None:
        """Databases, tables, master data and roles; run on every setup and up, so it also
        migrates an older stack (owned by the admin) to the least-privilege roles."""
        from psycopg2 import sql

        self._rotate_example_password(ctx)
        conn = self.connect(ctx)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = %s", (ctx.settings.postgres_db,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("create database {}").format(sql.Identifier(ctx.settings.postgres_db)))
        conn.close()
        # The same files, in the same order, as the postgres image's docker-entrypoint-initdb.d.
        for script in sorted(POSTGRES_INIT.glob("*.sql")):
            self.run_script(ctx, script)
        self.seed_calendar(ctx)

    def seed_calendar(self, ctx: Context) -> None:
        """Public holidays from the `holidays` package, which plain SQL cannot produce."""
        from smartmeter.simulator import masterdata

        conn = self.connect(ctx, ctx.settings.postgres_db)
        try:
            masterdata.seed_setup_calendar(conn, ctx.settings.timezone, datetime.date.today())
        except ValueError as exc:
            raise LakehouseError(f"LAKEHOUSE_TIMEZONE: {exc}") from exc
        finally:
            conn.close()

    def endpoint(self, ctx: Context) -> str:
        return f"postgresql://{ctx.settings.postgres_user}@localhost:{self.port(ctx)}/{ctx.settings.postgres_db}"


def kafka_cluster_id() -> str:
    """A random cluster id as Kafka's own Uuid.randomUuid makes it: URL-safe base64 of 16 bytes,
    never starting with '-' (kafka-storage would read it as an option and fail)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def s3_client(settings: Settings):
    """boto3's S3 client for the object store. Path-style: S3Proxy has no per-bucket host names;
    one attempt with short timeouts: callers poll health themselves."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=settings.s3_endpoint, aws_access_key_id=settings.s3_access_key,
        aws_secret_access_key=settings.s3_secret_key, region_name=settings.s3_region,
        config=Config(s3={"addressing_style": "path"}, connect_timeout=3, read_timeout=10, retries={"max_attempts": 1}),
    )


class ObjectStore(Service):
    """S3Proxy with the filesystem backend (see README: why not MinIO)."""

    name = "objectstore"
    port_env = "S3_PORT"
    needs_java = True

    def port(self, ctx: Context) -> int:
        return ctx.settings.s3_port

    def prepare(self, ctx: Context) -> None:
        artifacts.fetch(ctx.layout, artifacts.S3PROXY)
        (ctx.layout.data / "objectstore").mkdir(parents=True, exist_ok=True)

    def command(self, ctx: Context) -> list[str]:
        values = ctx.env(S3_BIND_HOST=ctx.settings.bind_address, S3_DATA_DIR=str(ctx.layout.data / "objectstore"))
        conf = _render(OBJECTSTORE_CONFIG / "s3proxy.properties", values, ctx.layout.conf / "s3proxy.properties")
        jar = artifacts.fetch(ctx.layout, artifacts.S3PROXY)
        return [ctx.java, "-Xmx512m", "-jar", str(jar), "--properties", str(conf)]

    def healthy(self, ctx: Context) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            s3_client(ctx.settings).list_buckets()
        except (BotoCoreError, ClientError):
            return False
        return True

    def initialise(self, ctx: Context) -> None:
        from botocore.exceptions import ClientError

        try:
            s3_client(ctx.settings).create_bucket(Bucket=ctx.settings.s3_bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise LakehouseError(f"creating bucket {ctx.settings.s3_bucket} failed: {exc}") from exc

    def endpoint(self, ctx: Context) -> str:
        return f"{ctx.settings.s3_endpoint} (bucket {ctx.settings.s3_bucket})"


class Kafka(Service):
    name = "kafka"
    port_env = "KAFKA_PORT"
    needs_java = True

    def port(self, ctx: Context) -> int:
        return ctx.settings.kafka_port

    def config_file(self, ctx: Context) -> Path:
        return ctx.layout.conf / "kafka" / "server.properties"

    def _render_config(self, ctx: Context) -> Path:
        s = ctx.settings
        overrides = {
            # The controller serves this broker only: loopback even when the stack is exposed.
            "listeners": f"PLAINTEXT://{s.bind_address}:{s.kafka_port},CONTROLLER://127.0.0.1:{s.kafka_controller_port}",
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
            "-cp", f"{libs}/*", main, *args,
        ]

    def prepare(self, ctx: Context) -> None:
        artifacts.kafka_libs(ctx.layout)
        conf = self._render_config(ctx)
        if (ctx.layout.data / "kafka" / "meta.properties").is_file():
            return
        command = self._java_command(ctx, "256m", "kafka.tools.StorageTool", "format", "-t", kafka_cluster_id(), "-c",
                                     str(conf))
        result = subprocess.run(command, capture_output=True, text=True, env=ctx.env())
        if result.returncode != 0:
            raise LakehouseError(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")

    def command(self, ctx: Context) -> list[str]:
        # The broker logs to stdout (kafka-config/log4j2.properties); supervisord writes and
        # rotates it as logs/kafka.log.
        return self._java_command(ctx, "1g", "kafka.Kafka", str(self._render_config(ctx)))

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
        wanted = [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in SETUP_TOPICS if t not in existing]
        for topic, future in admin.create_topics(wanted).items() if wanted else []:
            try:
                future.result(30)
            except Exception as exc:
                raise LakehouseError(f"creating Kafka topic {topic} failed: {exc}") from exc


class TrinoServer(Service):
    """The coordinator (index 0) or worker N, all from trino-config/etc."""

    needs_java = True

    def __init__(self, worker: int = 0) -> None:
        self.worker = worker
        self.name = "trino" if worker == 0 else f"trino-worker-{worker}"
        self.port_env = "TRINO_PORT" if worker == 0 else "TRINO_WORKER_BASE_PORT"

    def port(self, ctx: Context) -> int:
        if self.worker == 0:
            return ctx.settings.trino_port
        return int(ctx.env().get("TRINO_WORKER_BASE_PORT", str(ctx.settings.trino_port + 10))) + self.worker - 1

    def http_port(self, ctx: Context) -> int:
        """Plain HTTP: what clients use without authentication, and what the nodes talk to each
        other over (loopback, signed with the shared secret). With TRINO_AUTH=password the
        coordinator serves clients HTTPS on TRINO_PORT and keeps HTTP on TRINO_INTERNAL_PORT."""
        if self.worker or ctx.settings.trino_auth != "password":
            return self.port(ctx)
        return int(ctx.env().get("TRINO_INTERNAL_PORT", str(ctx.settings.trino_port + 20)))

    def prepare(self, ctx: Context) -> None:
        artifacts.trino_server(ctx.layout)
        artifacts.fetch(ctx.layout, artifacts.TRINO_CLI)
        if self.worker == 0 and ctx.settings.trino_auth == "password":
            self._ensure_certificate(ctx)

    def _keytool(self, ctx: Context, *args: str) -> None:
        keytool = ctx.java_home / "bin" / "keytool" if ctx.java_home else Path("keytool")
        result = subprocess.run([str(keytool), *args], capture_output=True, text=True)
        if result.returncode != 0:
            raise LakehouseError(f"keytool {args[0]} failed:\n{result.stdout}{result.stderr}")

    def _ensure_certificate(self, ctx: Context) -> None:
        """A self-signed certificate for Trino's HTTPS (made once; setup makes a new one), and its
        public half as PEM for the clients to trust."""
        s = ctx.settings
        keystore = ctx.layout.conf / "trino" / "keystore.p12"
        if keystore.is_file() and s.trino_certificate.is_file():
            return
        keystore.parent.mkdir(parents=True, exist_ok=True)
        keystore.unlink(missing_ok=True)
        names = ["dns:localhost", "ip:127.0.0.1", f"dns:{socket.getfqdn()}"]
        if s.exposed and s.bind_address != "0.0.0.0":
            names.append(f"ip:{s.bind_address}")
        secret = s.trino_internal_secret
        self._keytool(ctx, "-genkeypair", "-alias", "trino", "-keyalg", "RSA", "-keysize", "2048", "-validity", "3650",
                      "-dname", "CN=localhost", "-ext", "SAN=" + ",".join(names), "-storetype", "PKCS12",
                      "-keystore", str(keystore), "-storepass", secret, "-keypass", secret)
        keystore.chmod(0o600)
        self._keytool(ctx, "-exportcert", "-rfc", "-alias", "trino", "-keystore", str(keystore), "-storepass", secret,
                      "-file", str(s.trino_certificate))

    def _auth_config(self, ctx: Context) -> Path:
        """config.properties plus password authentication over HTTPS (coordinator) or only the
        shared secret (worker), rendered 0600: it holds the secrets."""
        import bcrypt

        s = ctx.settings
        conf = ctx.layout.conf / ("trino" if self.worker == 0 else self.name)
        conf.mkdir(parents=True, exist_ok=True)
        lines = [(TRINO_ETC / "config.properties").read_text().rstrip(), "",
                 "# TRINO_AUTH=password (rendered by smartmeter/native/services.py)",
                 f"internal-communication.shared-secret={s.trino_internal_secret}"]
        if self.worker == 0:
            users = s.trino_passwords
            missing = sorted(name for name, password in users.items() if not password)
            if missing:
                raise LakehouseError(f"TRINO_AUTH=password needs a password for {', '.join(missing)} in .env "
                                     "(TRINO_PASSWORD, TRINO_DBT_PASSWORD, TRINO_ADMIN_PASSWORD)")
            # Trino reads bcrypt hashes with the $2y$ prefix (the same algorithm as Python's $2b$).
            hashes = [f"{name}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(10)).decode().replace('$2b$', '$2y$', 1)}"
                      for name, password in users.items()]
            _write_secret(conf / "password.db", "\n".join(hashes) + "\n")
            _write_secret(conf / "password-authenticator.properties",
                          f"password-authenticator.name=file\nfile.password-file={conf / 'password.db'}\n")
            lines += [
                "http-server.https.enabled=true",
                f"http-server.https.port={s.trino_port}",
                f"http-server.https.keystore.path={conf / 'keystore.p12'}",
                f"http-server.https.keystore.key={s.trino_internal_secret}",
                "http-server.authentication.type=PASSWORD",
                f"password-authenticator.config-files={conf / 'password-authenticator.properties'}",
            ]
        return _write_secret(conf / "config.properties", "\n".join(lines) + "\n")

    def environment(self, ctx: Context) -> dict[str, str]:
        return ctx.env(
            TRINO_COORDINATOR=str(self.worker == 0).lower(),
            TRINO_INCLUDE_COORDINATOR="true",
            TRINO_HTTP_PORT=str(self.http_port(ctx)),
            TRINO_DISCOVERY_URI=f"http://127.0.0.1:{TrinoServer().http_port(ctx)}",
            # Workers serve only the coordinator: loopback even when the stack is exposed.
            TRINO_BIND_IP=ctx.settings.bind_address if self.worker == 0 else "127.0.0.1",
            TRINO_INTERNAL_ADDRESS="127.0.0.1",
            TRINO_ETC_DIR=str(TRINO_ETC),
        )

    def command(self, ctx: Context) -> list[str]:
        home = artifacts.trino_server(ctx.layout)
        data_dir = ctx.layout.data / self.name
        # The launcher's own pid file may name a process from before a crash (it would refuse to
        # start with "already running"); supervisord is the one that tracks the process.
        (data_dir / "var" / "run" / "launcher.pid").unlink(missing_ok=True)
        config = [f"--config={self._auth_config(ctx)}"] if ctx.settings.trino_auth == "password" else []
        return [str(home / "bin" / "launcher"), "run", f"--etc-dir={TRINO_ETC}", f"--data-dir={data_dir}",
                f"--jvm-dir={ctx.java_home}", *config]

    def info(self, ctx: Context) -> dict | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port(ctx)}/v1/info", timeout=3) as response:
                return json.load(response)
        # HTTPException: the port speaks TLS (a node started with another TRINO_AUTH).
        except (OSError, ValueError, http.client.HTTPException):
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
                query(ctx.settings.as_trino(TRINO_ADMIN_USER), "SELECT count(*) FROM postgresql.public.devices")
                return
            except TrinoQueryError as exc:
                if exc.error_name != "NO_NODES_AVAILABLE" or time.monotonic() > deadline:
                    raise LakehouseError(f"Trino cannot run queries yet: {exc.error_name}: {exc.message}") from exc
            time.sleep(0.5)

    def timeout_s(self) -> float:
        return 240.0

    def before_stop(self, ctx: Context) -> None:
        """A worker shuts down gracefully: the coordinator stops scheduling on it, running tasks
        finish, and it exits 0 (supervisord does not restart an expected exit)."""
        if not self.worker or not self.healthy(ctx):
            return
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port(ctx)}/v1/info/state", data=b'"SHUTTING_DOWN"', method="PUT",
            headers={"Content-Type": "application/json", "X-Trino-User": TRINO_ADMIN_USER},
        )
        try:
            urllib.request.urlopen(request, timeout=5).close()
        except OSError:
            return
        deadline = time.monotonic() + 90
        while self.info(ctx) is not None and time.monotonic() < deadline:
            time.sleep(0.5)

    def initialise(self, ctx: Context) -> None:
        if self.worker:
            return
        from smartmeter.trino_sql import execute

        for schema in ("staging", "marts"):
            execute(ctx.settings.as_trino(TRINO_ADMIN_USER), f"CREATE SCHEMA IF NOT EXISTS iceberg.{schema}")

    def endpoint(self, ctx: Context) -> str:
        return f"http://localhost:{self.port(ctx)}" + (" (web UI)" if self.worker == 0 else "")


class PipelineLoop(Service):
    """The pipeline loop (smartmeter/pipeline/loop.py), as the compose dbt container runs it."""

    name = "pipeline"
    # Long enough for dbt to cancel its queries after SIGINT (the loop forwards SIGTERM so).
    stop_wait_s = 120

    def command(self, ctx: Context) -> list[str]:
        return [sys.executable, "-m", "smartmeter", "pipeline", "loop"]

    def environment(self, ctx: Context) -> dict[str, str]:
        # The log is a file: no colour codes from dbt.
        return ctx.env(DBT_TARGET="native", DBT_USE_COLORS="false", PYTHONUNBUFFERED="1")

    def healthy(self, ctx: Context) -> bool:
        from smartmeter.pipeline.loop import loop_health

        try:
            return loop_health(ctx.settings)[0]
        except LakehouseError:
            return False

    def timeout_s(self) -> float:
        return 60.0

    def endpoint(self, ctx: Context) -> str:
        return f"pipeline loop, log {ctx.layout.log_file(self.name)}"


class Superset(Service):
    """The dashboards: Apache Superset (gunicorn) in its own virtualenv, metadata in PostgreSQL.
    Its logic (configuration, initialisation, dashboards as code) is in smartmeter/dashboards.py."""

    name = "superset"
    port_env = "SUPERSET_PORT"
    stop_wait_s = 30

    def port(self, ctx: Context) -> int:
        return ctx.settings.superset_port

    def prepare(self, ctx: Context) -> None:
        dashboards.install(ctx.layout)

    def environment(self, ctx: Context) -> dict[str, str]:
        return dashboards.environment(ctx.settings, ctx.layout, ctx.env())

    def before_start(self, ctx: Context) -> None:
        """Migrations, the admin and the dashboards, as compose's superset-init does. Its role and
        database exist by then: setup and every up apply postgres-init/ (05-roles.sql, 07-superset.sql)."""
        dashboards.initialise(ctx.layout, self.environment(ctx), ctx.layout.log_file(self.name))

    def command(self, ctx: Context) -> list[str]:
        return dashboards.serve_command(ctx.settings, ctx.layout)

    def healthy(self, ctx: Context) -> bool:
        return dashboards.healthy(ctx.settings)

    def timeout_s(self) -> float:
        return 180.0

    def endpoint(self, ctx: Context) -> str:
        return f"http://localhost:{self.port(ctx)} (dashboards; user {ctx.settings.superset_admin_user}, password in .env)"


CORE_SERVICES: tuple[Service, ...] = (Postgres(), ObjectStore(), Kafka(), TrinoServer())


def service_named(name: str) -> Service:
    """A service by its program name (trino-worker-N included)."""
    for service in (*CORE_SERVICES, PipelineLoop(), Superset()):
        if service.name == name:
            return service
    if name.startswith("trino-worker-") and name.rsplit("-", 1)[1].isdigit():
        return TrinoServer(int(name.rsplit("-", 1)[1]))
    raise LakehouseError(f"no service {name!r}")

