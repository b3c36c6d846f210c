"""Running dbt for the runner: the environment the committed profiles.yml reads, this run's
batch as vars, and a clean stop (SIGINT, which makes dbt cancel its Trino queries)."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from smartmeter.config import REPO_ROOT, TRINO_DBT_USER, Settings, environment
from smartmeter.trino_sql import CA_BUNDLE_VARIABLES

DBT_PROJECT = REPO_ROOT / "dbt-project"
PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass
class NodeResult:
    name: str
    resource_type: str
    status: str
    seconds: float
    rows: int | None
    message: str | None


@dataclass
class DbtResult:
    returncode: int
    interrupted: bool = False
    nodes: list[NodeResult] = field(default_factory=list)
    output: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.interrupted

    def built(self, model: str) -> bool:
        return any(n.name == model and n.resource_type == "model" and n.status == "success" for n in self.nodes)

    def rows(self, model: str) -> int:
        return sum(n.rows or 0 for n in self.nodes if n.name == model and n.resource_type == "model")

    def failures(self) -> list[NodeResult]:
        return [n for n in self.nodes if n.status in ("error", "fail", "runtime error")]


def dbt_executable() -> str:
    """dbt next to this interpreter (the project's venv, or the image's), else the one on PATH."""
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


def dbt_paths(settings: Settings) -> tuple[Path, Path]:
    """target and log directories: the project's own for the lakehouse, one per test scope."""
    env = environment()
    if env.get("DBT_TARGET_PATH"):
        return Path(env["DBT_TARGET_PATH"]), Path(env.get("DBT_LOG_PATH", DBT_PROJECT / "logs"))
    if not settings.dbt_schema_suffix:
        return DBT_PROJECT / "target", DBT_PROJECT / "logs"
    scope = settings.home / "dbt-scopes" / settings.dbt_schema_suffix
    return scope / "target", scope / "logs"


def dbt_environment(settings: Settings, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    # dbt always runs as the user the access rules let write the lakehouse schemas.
    settings = settings.as_trino(TRINO_DBT_USER)
    env = dict(environment())
    env.update({
        "DBT_PROFILES_DIR": env.get("DBT_PROFILES_DIR") or str(DBT_PROJECT),
        "DBT_TARGET": env.get("DBT_TARGET") or "native",
        "TRINO_HOST": settings.trino_host,
        "TRINO_PORT": str(settings.trino_port),
        "TRINO_USER": settings.trino_user,
        "TRINO_PASSWORD": settings.trino_password,
        "TRINO_CERT": str(settings.trino_certificate),
        "DBT_SCHEMA_SUFFIX": settings.dbt_schema_suffix,
        "TELEMETRY_TOPIC": settings.telemetry_topic,
        "FAULT_LOG_TOPIC": settings.fault_log_topic,
        "LAKEHOUSE_TIMEZONE": settings.timezone,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_VERSION_CHECK": "false",
    })
    if settings.trino_auth == "password" and env["DBT_TARGET"] == "native":
        # The profile's output that logs in with TRINO_PASSWORD over HTTPS (dbt-project/profiles.yml).
        env["DBT_TARGET"] = "native_password"
        for name in CA_BUNDLE_VARIABLES:
            env.pop(name, None)
    env.update(extra or {})
    return env


def read_run_results(target_path: Path) -> list[NodeResult]:
    try:
        results = json.loads((target_path / "run_results.json").read_text())["results"]
    except (OSError, ValueError, KeyError):
        return []
    nodes = []
    for r in results:
        unique_id = r.get("unique_id", "")
        nodes.append(NodeResult(
            name=unique_id.split(".")[-1], resource_type=unique_id.split(".")[0], status=r.get("status", ""),
            seconds=float(r.get("execution_time") or 0), rows=(r.get("adapter_response") or {}).get("rows_affected"),
            message=r.get("message"),
        ))
    return nodes


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    """A killed runner (SIGKILL, OOM) must not leave dbt writing on its own: the next writer
    plans batches from what has landed, and cancels only the queries running at that moment."""
    def arrange() -> None:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent_pid:  # the runner died before prctl took effect
            os._exit(1)
    return arrange


def run_dbt(settings: Settings, args: Sequence[str], batch: Mapping[str, object], *,
            capture: bool = False, schema_check: bool = False) -> DbtResult:
    """Run `dbt ARGS` in the project with this run's batch (LAKEHOUSE_BATCH, read by
    dbt-project/macros/kafka_batches.sql). SIGINT or SIGTERM to us interrupts dbt with SIGINT, so
    it cancels its queries, and we wait for it to exit. With schema_check, incremental models add
    the columns the project gained (dbt-project/macros/materializations/incremental.sql)."""
    target_path, log_path = dbt_paths(settings)
    (target_path / "run_results.json").unlink(missing_ok=True)
    command = [dbt_executable(), *args, "--target-path", str(target_path), "--log-path", str(log_path)]
    process = subprocess.Popen(
        command, cwd=DBT_PROJECT, env=dbt_environment(settings, {"LAKEHOUSE_BATCH": json.dumps(dict(batch)),
                                       "LAKEHOUSE_SCHEMA_CHECK": "true" if schema_check else "false"}),
        stdout=subprocess.PIPE if capture else None, stderr=subprocess.STDOUT if capture else None, text=True,
        # dbt must not get the terminal's Ctrl+C directly: we forward one SIGINT and then wait.
        start_new_session=True,
        preexec_fn=_die_with_parent(os.getpid()),
    )
    interrupted = False
    previous: dict = {}

    def interrupt(signum, frame) -> None:
        nonlocal interrupted
        interrupted = True
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        # A handler of the caller's own (the loop's stop flag) learns of it too; the default ones
        # would end us before dbt has cancelled its queries.
        chained = previous.get(signum)
        if callable(chained) and chained is not signal.default_int_handler:
            chained(signum, frame)

    previous.update({sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)})
    try:
        output = process.communicate()[0] if capture else None
        returncode = process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return DbtResult(returncode, interrupted, read_run_results(target_path), output or "")
