"""docker-compose.yml, checked as strictly as possible without a Docker engine.

No machine that builds this project runs containers, so these tests read the compose file and
hold it to the native configuration it must mirror (README: Configuration): the same config
files, the same environment variable names, the same ports and versions, credentials only from .env.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml
from dotenv import dotenv_values

from smartmeter import config
from smartmeter.config import DEFAULT_PORTS, REPO_ROOT
from smartmeter.native import artifacts

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]
ONE_SHOT = {name for name, svc in SERVICES.items() if str(svc.get("restart", "")) == "no"}
TRINO_SERVICES = [name for name, svc in SERVICES.items() if str(svc.get("image", "")).startswith("trinodb/trino:")]
DBT_SERVICE = "dbt-transformations"
ENV_EXAMPLE = {k: v or "" for k, v in dotenv_values(REPO_ROOT / ".env.example").items()}
# Each host port: its name in the README, the compose service that publishes it, the variable
# that moves it (its default is smartmeter.config.DEFAULT_PORTS).
HOST_PORTS = [("Kafka", "kafka-kraft", "KAFKA_PORT"), ("Kafka UI", "kafka-ui", "KAFKA_UI_PORT"),
              ("Trino", "trino-coordinator", "TRINO_PORT"), ("PostgreSQL", "postgres", "POSTGRES_PORT"),
              ("S3", "objectstore", "S3_PORT"), ("Superset", "superset", "SUPERSET_PORT")]

_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def environment(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment", {})
    assert isinstance(env, dict), f"{service}: write environment as a mapping"
    return {str(k): str(v) for k, v in env.items()}


def resolve(value: str, values: dict[str, str] | None = None) -> str:
    """Compose interpolation: ${VAR}, ${VAR:-default}, ${VAR:?error}; `$$` is a literal `$`."""
    values = ENV_EXAMPLE if values is None else values

    def one(match: re.Match) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if values.get(name):
            return values[name]
        if op in (":-", "-"):
            return arg
        raise KeyError(f"{name} is required and not set")

    return _VAR.sub(one, str(value).replace("$$", "\0")).replace("\0", "$")


def bind_mounts(service: str) -> list[tuple[str, str]]:
    mounts = []
    for volume in SERVICES[service].get("volumes", []):
        assert isinstance(volume, str), f"{service}: use the short volume syntax"
        source, target = volume.split(":")[:2]
        mounts.append((source, target))
    return mounts


BIND = "${LAKEHOUSE_BIND_ADDRESS:-127.0.0.1}:"


def published_ports(service: str) -> list[tuple[str, str]]:
    """(host port, container port); every port is published on LAKEHOUSE_BIND_ADDRESS."""
    ports = []
    for port in SERVICES[service].get("ports", []):
        assert str(port).startswith(BIND), f"{service} publishes {port} on every interface, not {BIND}"
        host, _, container = str(port).removeprefix(BIND).rpartition(":")
        ports.append((host, container))
    return ports


def properties(path: Path) -> dict[str, str]:
    result = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            result[key.strip()] = value.strip()
    return result


def image_tag(service: str) -> tuple[str, str]:
    image = str(SERVICES[service]["image"])
    name, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
    return name, tag


# --------------------------------------------------------------------------- files and volumes

def test_every_mounted_host_path_exists():
    for name in SERVICES:
        for source, target in bind_mounts(name):
            if source.startswith((".", "/")):
                assert (REPO_ROOT / source).exists(), f"{name}: mounts {source} at {target}, which does not exist"
        build = SERVICES[name].get("build")
        if build:
            assert (REPO_ROOT / build["context"]).is_dir(), f"{name}: build context {build['context']} missing"
            assert (REPO_ROOT / build["context"] / build["dockerfile"]).is_file(), f"{name}: {build['dockerfile']} missing"


def test_state_lives_in_declared_named_volumes():
    declared = set(COMPOSE.get("volumes") or {})
    for name in SERVICES:
        for source, _target in bind_mounts(name):
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: volume {source} is not declared under top-level volumes"
    named_targets = {name: {t for s, t in bind_mounts(name) if s in declared} for name in SERVICES}
    assert "/var/lib/postgresql/data" in named_targets["postgres"]
    assert environment("kafka-kraft")["KAFKA_LOG_DIRS"] in named_targets["kafka-kraft"]
    assert environment("objectstore")["JCLOUDS_FILESYSTEM_BASEDIR"] in named_targets["objectstore"]
    dbt_state = {str(Path(environment(DBT_SERVICE)[k]).parent) for k in ("DBT_TARGET_PATH", "DBT_LOG_PATH")}
    assert dbt_state <= named_targets[DBT_SERVICE], "dbt's target/ and logs/ belong in a named volume, not the checkout"


def test_services_read_the_shared_configuration_files():
    """Both modes read trino-config/, dbt-project/, postgres-init/ and kafka-config/ (README: Configuration)."""
    assert ("./postgres-init", "/docker-entrypoint-initdb.d") in bind_mounts("postgres")
    assert ("./kafka-config/server.properties", "/mnt/shared/config/server.properties") in bind_mounts("kafka-kraft")
    for name in TRINO_SERVICES:
        assert ("./trino-config/etc", environment(name)["TRINO_ETC_DIR"]) in bind_mounts(name), name
    assert ("./dbt-project", environment(DBT_SERVICE)["DBT_PROFILES_DIR"]) in bind_mounts(DBT_SERVICE)
    for name in ("superset", "superset-init"):
        assert ("./superset-config/superset_config.py", "/app/pythonpath/superset_config.py") in bind_mounts(name), name
    init_mounts = set(bind_mounts("superset-init"))
    assert {("./dashboards", "/app/lakehouse/dashboards"), ("./smartmeter", "/app/lakehouse/smartmeter")} <= init_mounts


# --------------------------------------------------------------------------- ports

def test_host_ports_are_the_native_defaults_under_the_same_variables():
    publishing = {name for name in SERVICES if SERVICES[name].get("ports")}
    assert publishing == {name for _label, name, _variable in HOST_PORTS}, "only these ports are published on the host"
    for _label, name, variable in HOST_PORTS:
        (host, _container), = published_ports(name)
        expected = f"${{{variable}:-{DEFAULT_PORTS[variable]}}}"
        assert host == expected, f"{name}: publish as {expected}, got {host}"


def test_readme_states_the_default_ports():
    text = (REPO_ROOT / "README.md").read_text()
    for label, _name, variable in HOST_PORTS:
        port = DEFAULT_PORTS[variable]
        assert re.search(rf"{re.escape(label)}[^0-9\n]{{0,24}}{port}\b", text), f"README.md does not say {label} {port}"


# --------------------------------------------------------------------------- environment

def test_trino_nodes_get_every_variable_their_config_reads():
    etc = REPO_ROOT / "trino-config" / "etc"
    wanted = set()
    for path in etc.rglob("*"):
        if path.is_file():
            wanted |= set(re.findall(r"\$\{ENV:([A-Za-z0-9_]+)\}", path.read_text()))
    assert {"TRINO_COORDINATOR", "TRINO_HTTP_PORT", "POSTGRES_TRINO_PASSWORD", "S3_SECRET_KEY"} <= wanted
    assert TRINO_SERVICES == ["trino-coordinator", "trino-worker"]
    for name in TRINO_SERVICES:
        # A worker sets its own address in its command (replicas have no fixed name).
        from_command = set(re.findall(r"\b([A-Z_]+)=", " ".join(SERVICES[name].get("command") or [])))
        missing = wanted - set(environment(name)) - from_command
        assert not missing, f"{name} lacks {sorted(missing)}, which trino-config/etc reads"
        for key in wanted - from_command:
            resolve(environment(name)[key])  # every one resolves with .env.example


def test_trino_environment_points_at_the_compose_services():
    coordinator, worker = environment("trino-coordinator"), environment("trino-worker")
    http_port = coordinator["TRINO_HTTP_PORT"]
    assert coordinator["TRINO_COORDINATOR"] == "true" and worker["TRINO_COORDINATOR"] == "false"
    assert worker["TRINO_HTTP_PORT"] == http_port
    assert published_ports("trino-coordinator")[0][1] == http_port
    assert not SERVICES["trino-worker"].get("ports"), "workers must not publish ports (they scale to N replicas)"
    assert SERVICES["trino-worker"].get("profiles") == ["cluster"]
    coordinator_host = SERVICES["trino-coordinator"]["hostname"]
    for env in (coordinator, worker):
        assert env["TRINO_DISCOVERY_URI"] == f"http://{coordinator_host}:{http_port}"
        assert env["POSTGRES_HOST"] in SERVICES and env["POSTGRES_PORT"] == "5432"
        s3_host, s3_port = env["S3_ENDPOINT"].removeprefix("http://").split(":")
        assert s3_host in SERVICES and s3_port == published_ports(s3_host)[0][1]
        kafka_host, kafka_port = env["KAFKA_BOOTSTRAP_SERVERS"].split(":")
        assert f"PLAINTEXT://{kafka_host}:{kafka_port}" in environment("kafka-kraft")["KAFKA_ADVERTISED_LISTENERS"]
        # Trino connects as the catalogs' roles the postgres container creates, never as the admin.
        assert "POSTGRES_USER" not in env and "POSTGRES_PASSWORD" not in env
        for key in ("POSTGRES_TRINO_USER", "POSTGRES_TRINO_PASSWORD", "POSTGRES_ICEBERG_USER",
                    "POSTGRES_ICEBERG_PASSWORD", "POSTGRES_DB"):
            assert resolve(env[key]) == resolve(environment("postgres")[key]), key
        for key, s3proxy_key in (("S3_ACCESS_KEY", "S3PROXY_IDENTITY"), ("S3_SECRET_KEY", "S3PROXY_CREDENTIAL")):
            assert resolve(env[key]) == resolve(environment("objectstore")[s3proxy_key]), key
    healthcheck = " ".join(SERVICES["trino-coordinator"]["healthcheck"]["test"])
    assert f"/dev/tcp/127.0.0.1/{http_port}" in healthcheck and "/v1/info" in healthcheck


def _dbt_env_vars() -> dict[str, bool]:
    """Every env_var('X'[, default]) the dbt project reads -> whether it has a default."""
    found: dict[str, bool] = {}
    project = REPO_ROOT / "dbt-project"
    skip = {"target", "logs", "dbt_packages"}
    for path in project.rglob("*"):
        if path.suffix not in (".yml", ".yaml", ".sql") or skip & set(path.relative_to(project).parts):
            continue
        for match in re.finditer(r"env_var\(\s*['\"]([A-Za-z0-9_]+)['\"]\s*(,)?", path.read_text()):
            found[match[1]] = found.get(match[1], True) and bool(match[2])
    return found


def test_dbt_container_sets_what_the_profile_reads():
    env = environment(DBT_SERVICE)
    read = _dbt_env_vars()
    assert {"DBT_TARGET", "TRINO_HOST", "TRINO_PORT"} <= set(read)
    required = sorted(name for name, has_default in read.items() if not has_default)
    assert not [name for name in required if name not in env], f"dbt reads these without a default: {required}"
    profiles = yaml.safe_load((REPO_ROOT / "dbt-project" / "profiles.yml").read_text())
    assert env["DBT_TARGET"] in profiles["smartmeter"]["outputs"]
    # The profile's docker-target defaults are not our host names: the container must set them.
    assert env["TRINO_HOST"] == SERVICES["trino-coordinator"]["hostname"]
    assert env["TRINO_PORT"] == environment("trino-coordinator")["TRINO_HTTP_PORT"]
    assert env["DBT_AUTO_RUN"] == "${DBT_AUTO_RUN:-true}"
    assert env["DBT_RUN_INTERVAL"] == "${DBT_RUN_INTERVAL:-600}"


def test_trino_sees_the_topics_setup_creates():
    assert ENV_EXAMPLE["KAFKA_TABLE_NAMES"].split(",") == list(config.TOPICS)
    described = {path.stem for path in (REPO_ROOT / "trino-config" / "etc" / "kafka").glob("*.json")}
    assert described == set(config.TOPICS), "trino-config/etc/kafka/ describes each topic"


def test_dbt_native_target_defaults_to_the_settings_defaults(monkeypatch):
    monkeypatch.setattr(config, "environment", dict)  # no .env, no process environment: the defaults
    defaults = config.load_settings()
    native = (REPO_ROOT / "dbt-project" / "profiles.yml").read_text().split("docker:")[0]
    # dbt works as the user the access rules let write the lakehouse schemas, not the analyst.
    for variable, value in (("TRINO_HOST", defaults.trino_host), ("TRINO_PORT", defaults.trino_port),
                            ("TRINO_USER", config.TRINO_DBT_USER)):
        assert f"env_var('{variable}', '{value}')" in native, f"profiles.yml: native {variable} must default to {value}"


# --------------------------------------------------------------------------- images and versions

def _dockerfile() -> str:
    return (REPO_ROOT / "dbt-project" / "Dockerfile").read_text()


def _pinned(image: str) -> bool:
    name, sep, tag = image.rpartition(":")
    return bool(sep) and "/" not in tag and tag != "latest" and any(ch.isdigit() for ch in tag)


def test_every_image_tag_is_pinned():
    for name, svc in SERVICES.items():
        if "image" in svc:
            assert _pinned(str(svc["image"])), f"{name}: image {svc['image']} is not pinned to a version tag"
        else:
            assert "build" in svc, f"{name}: neither image nor build"
    for line in _dockerfile().splitlines():
        if line.strip().upper().startswith("FROM "):
            assert _pinned(line.split()[1]), f"dbt-project/Dockerfile: {line} is not pinned"


def test_images_are_the_versions_native_mode_runs():
    pom = (REPO_ROOT / "smartmeter" / "native" / "maven" / "kafka-pom.xml").read_text()
    kafka_version = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)[1]
    assert image_tag("kafka-kraft") == ("apache/kafka", kafka_version)
    for name in TRINO_SERVICES:
        assert image_tag(name) == ("trinodb/trino", artifacts.TRINO_VERSION)
    s3proxy_native = artifacts.S3PROXY.coordinates.split(":")[2]
    name, tag = image_tag("objectstore")
    assert name == "andrewgaul/s3proxy"
    # Same server, same minor release (4.1.1 is the newest image; Maven Central stops at 4.1.0).
    assert tag.split(".")[:2] == s3proxy_native.split(".")[:2], f"S3Proxy {tag} in compose, {s3proxy_native} natively"
    name, tag = image_tag("postgres")
    assert name == "postgres" and int(tag.split(".")[0]) >= 15
    python = re.search(r"^FROM python:(\d+)\.(\d+)", _dockerfile(), re.M)
    assert python, "the dbt image starts from the official python image"
    assert (int(python[1]), int(python[2])) >= (3, 11) and sys.version_info[:2] >= (3, 11)


def test_dbt_image_installs_the_same_pinned_requirements_as_native_mode():
    build = SERVICES[DBT_SERVICE]["build"]
    assert Path(build["context"]) == Path("."), "build context must be the repository root, to reach requirements.txt"
    assert build["dockerfile"] == "dbt-project/Dockerfile"
    dockerfile = _dockerfile()
    copied = re.search(r"^COPY\s+requirements\.txt\s+(\S+)", dockerfile, re.M)
    assert copied, "the Dockerfile must COPY the repository's requirements.txt"
    installs = [i.strip() for i in re.findall(r"pip install ([^&\n]+)", dockerfile)]
    assert installs == [f"-r {copied[1]}"], f"pip must install exactly requirements.txt, found {installs}"
    pins = [line for line in (REPO_ROOT / "requirements.txt").read_text().splitlines() if line and not line.startswith("#")]
    assert pins and all("==" in line for line in pins), "requirements.txt pins every package"
    assert any(line.startswith("dbt-core==1.11.") for line in pins)
    # BuildKit's Dockerfile-specific ignore file keeps .lakehouse/ (gigabytes) out of the context.
    ignore = (REPO_ROOT / "dbt-project" / "Dockerfile.dockerignore").read_text().split()
    assert "*" in ignore and "!requirements.txt" in ignore and "!dbt-project/" in ignore


def test_dbt_image_runs_the_shared_pipeline_loop_and_routes_dbt_through_the_runner():
    assert 'CMD ["/usr/app/lakehouse/dbt-project/entrypoint.sh"]' in _dockerfile()
    assert re.search(r"^WORKDIR /usr/app/lakehouse$", _dockerfile(), re.M)
    entrypoint = (REPO_ROOT / "dbt-project" / "entrypoint.sh").read_text()
    assert "-m smartmeter pipeline loop" in entrypoint, "the container runs the same loop as native mode"
    assert "install -m 0755 dbt-project/docker/dbt /usr/local/bin/dbt" in _dockerfile()
    assert "-m smartmeter dbt" in (REPO_ROOT / "dbt-project" / "docker" / "dbt").read_text()


# --------------------------------------------------------------------------- health and order

def test_every_service_has_a_healthcheck_and_waits_for_healthy_dependencies():
    assert ONE_SHOT == {"objectstore-init", "superset-init"}
    for name, svc in SERVICES.items():
        if name in ONE_SHOT:
            assert not svc.get("ports"), f"{name} is a one-shot and publishes nothing"
        else:
            test = svc.get("healthcheck", {}).get("test")
            assert test and not svc["healthcheck"].get("disable"), f"{name}: no healthcheck"
            # Podman 4.3's Docker API splits CMD arguments at spaces; CMD-SHELL works on both engines.
            assert test[0] == "CMD-SHELL" and len(test) == 2, f"{name}: write the healthcheck as [CMD-SHELL, command]"
        depends = svc.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on must use the long form with a condition"
        for dependency, spec in depends.items():
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
            wanted = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            assert spec.get("condition") == wanted, f"{name} -> {dependency}: condition must be {wanted}"
    # Trino needs everything it has a catalog for, and the bucket.
    assert set(SERVICES["trino-coordinator"]["depends_on"]) == {"postgres", "objectstore", "objectstore-init", "kafka-kraft"}


def test_container_names_are_the_ones_the_readme_commands_use():
    for name in ("kafka-kraft", "kafka-ui", "trino-coordinator", "dbt-transformations"):
        assert SERVICES[name].get("container_name") == name


# --------------------------------------------------------------------------- credentials

SECRET_KEY = re.compile(r"PASSWORD|SECRET|CREDENTIAL|IDENTITY|ACCESS_KEY")


def test_no_secret_in_the_compose_file():
    for name in SERVICES:
        for key, value in environment(name).items():
            if SECRET_KEY.search(key):
                match = _VAR.fullmatch(value)
                assert match and match["op"] in (None, ":?", "?"), f"{name}.{key} must be ${{VAR}} or ${{VAR:?…}} from .env, not {value!r}"
    text = (REPO_ROOT / "docker-compose.yml").read_text()
    public = {v for k, v in ENV_EXAMPLE.items() if not SECRET_KEY.search(k) and not k.endswith("_KEY")}
    for key, value in ENV_EXAMPLE.items():
        if (SECRET_KEY.search(key) or key.endswith("_KEY")) and value not in public:
            assert value not in text, f"the value of {key} from .env.example is written in docker-compose.yml"


def test_env_example_holds_every_required_variable():
    text = (REPO_ROOT / "docker-compose.yml").read_text()
    required = {m["name"] for m in _VAR.finditer(text) if m["op"] in (None, ":?", "?")}
    assert required <= set(ENV_EXAMPLE), f".env.example lacks {sorted(required - set(ENV_EXAMPLE))}"


# --------------------------------------------------------------------------- service configuration twins

def test_objectstore_settings_equal_objectstore_s3proxy_properties():
    """The image takes s3proxy.properties as S3PROXY_*/JCLOUDS_* variables: the same settings, key by key."""
    env = environment("objectstore")
    host_side = {"S3_BIND_HOST": "0.0.0.0", "S3_PORT": published_ports("objectstore")[0][1],
                 "S3_ACCESS_KEY": "${S3_ACCESS_KEY}", "S3_SECRET_KEY": "${S3_SECRET_KEY}",
                 "S3_DATA_DIR": env["JCLOUDS_FILESYSTEM_BASEDIR"]}
    native = properties(REPO_ROOT / "objectstore" / "s3proxy.properties")
    assert native["s3proxy.ignore-unknown-headers"] == "true" and native["jclouds.provider"] == "filesystem-nio2"
    expected = {}
    for key, value in native.items():
        variable = key.upper().replace(".", "_").replace("-", "_")
        expected[variable] = re.sub(r"\$\{(\w+)\}", lambda m: host_side[m[1]], value)
    actual = {k: re.sub(r"\$\{(\w+):\?[^}]*\}", r"${\1}", v) for k, v in env.items()}
    assert actual == expected


def test_kafka_overrides_only_what_native_mode_overrides():
    """apache/kafka appends KAFKA_* variables to the mounted server.properties (KafkaDockerWrapper):
    compose may change only the host-specific keys native mode also rewrites (services.Kafka)."""
    env = environment("kafka-kraft")
    excluded = {"KAFKA_VERSION", "KAFKA_HEAP_OPTS", "KAFKA_LOG4J_OPTS", "KAFKA_OPTS", "KAFKA_JMX_OPTS", "KAFKA_JVM_PERFORMANCE_OPTS",
                "KAFKA_GC_LOG_OPTS", "KAFKA_LOG4J_ROOT_LOGLEVEL", "KAFKA_LOG4J_LOGGERS", "KAFKA_TOOLS_LOG4J_LOGLEVEL", "KAFKA_JMX_HOSTNAME"}
    keys = {k.removeprefix("KAFKA_").lower().replace("_", ".").replace("...", "-").replace("..", "_")
            for k in env if k.startswith("KAFKA_") and k not in excluded}
    assert keys == {"listeners", "advertised.listeners", "controller.quorum.voters", "log.dirs"}
    assert set(env) - {f"KAFKA_{k.upper().replace('.', '_')}" for k in keys} == {"CLUSTER_ID"}
    server = properties(REPO_ROOT / "kafka-config" / "server.properties")
    protocols = {entry.split(":")[0] for entry in server["listener.security.protocol.map"].split(",")}
    listeners = {entry.split("://")[0]: entry.split(":")[-1] for entry in env["KAFKA_LISTENERS"].split(",")}
    assert set(listeners) <= protocols and server["inter.broker.listener.name"] in listeners
    assert server["controller.listener.names"] in listeners
    advertised = dict(entry.split("://") for entry in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    (host_port, container_port), = published_ports("kafka-kraft")
    assert listeners["EXTERNAL"] == container_port
    assert advertised["EXTERNAL"] == f"localhost:{host_port}", "clients on the host get the host port back"
    assert advertised["PLAINTEXT"] == f"kafka-kraft:{listeners['PLAINTEXT']}"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{server['node.id']}@kafka-kraft:{listeners['CONTROLLER']}"
    # The seed README's `docker exec kafka-kraft ... --bootstrap-server localhost:9092` needs 9092 inside.
    assert listeners["PLAINTEXT"] == "9092"
    assert environment("kafka-ui")["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] == advertised["PLAINTEXT"]


def test_superset_reaches_the_compose_services_with_the_postgres_containers_credentials():
    for name in ("superset", "superset-init"):
        env = environment(name)
        assert env["TRINO_HOST"] == SERVICES["trino-coordinator"]["hostname"]
        assert env["TRINO_PORT"] == environment("trino-coordinator")["TRINO_HTTP_PORT"]
        assert env["POSTGRES_HOST"] in SERVICES and env["POSTGRES_PORT"] == "5432"
        # postgres-init/05-roles.sql and 07-superset.sql make its role and database from the postgres
        # container's variables.
        for key in ("SUPERSET_DB", "POSTGRES_SUPERSET_USER", "POSTGRES_SUPERSET_PASSWORD"):
            assert resolve(env[key]) == resolve(environment("postgres")[key]), f"{name}: {key}"
        # Trino as the analyst of rules.json, over plain HTTP (compose's Trino has no authentication).
        assert resolve(env["TRINO_USER"], {}) == "analyst" and env["TRINO_AUTH"] == "none"
        # Its own secrets only.
        secrets = {key for key in env if SECRET_KEY.search(key) or key.endswith("_KEY")}
        assert secrets == {"SUPERSET_SECRET_KEY", "SUPERSET_ADMIN_PASSWORD", "POSTGRES_SUPERSET_PASSWORD"}, name
    assert SERVICES["superset-init"]["command"][-3:] == ["-m", "smartmeter.dashboards", "init"]
    assert SERVICES["superset"]["depends_on"] == {"superset-init": {"condition": "service_completed_successfully"}}


def test_superset_image_is_the_official_one_of_native_modes_version_with_its_drivers():
    lock = dict(line.split("==") for line in (REPO_ROOT / "requirements-superset.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    for name in ("superset", "superset-init"):
        build = SERVICES[name]["build"]
        dockerfile = (REPO_ROOT / build["context"] / build["dockerfile"]).read_text()
        assert re.search(rf"^FROM apache/superset:{re.escape(lock['apache_superset'])}$", dockerfile, re.M), name
        for driver in ("psycopg2-binary", "trino[sqlalchemy]"):
            assert f"{driver}=={lock[driver]}" in dockerfile, f"{driver} pinned as in requirements-superset.txt"
