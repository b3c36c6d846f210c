"""The native stack as a whole: fresh setup, up, down, status, under supervisord."""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence

from smartmeter.config import Settings
from smartmeter.errors import LakehouseError
from smartmeter.native import process
from smartmeter.native.java import find_java_home
from smartmeter.native.layout import Layout
from smartmeter.native.services import CORE_SERVICES, Context, PipelineLoop, Service, Superset, TrinoServer, service_named
from smartmeter.native.supervisor import Supervisor


def _say(message: str) -> None:
    print(message, flush=True)


def make_context(settings: Settings, *, with_java: bool = True) -> Context:
    ctx = Context(settings=settings, layout=Layout(settings.home))
    if with_java:
        ctx.java_home = find_java_home()
    return ctx


def configured_workers(supervisor: Supervisor) -> list[TrinoServer]:
    return [TrinoServer(int(name.rsplit("-", 1)[1])) for name in supervisor.programs() if name.startswith("trino-worker-")]


def _wait_healthy(ctx: Context, supervisor: Supervisor, services: Sequence[Service]) -> None:
    for service in services:
        process.wait_until(
            # Healthy, and supervisord counts it as started (it ran for startsecs).
            lambda s=service: s.healthy(ctx) and getattr(supervisor.info(s.name), "state", None) == "RUNNING",
            service=service.name,
            state=lambda s=service: (info.state if (info := supervisor.info(s.name)) else None),
            log_file=ctx.layout.log_file(service.name),
            timeout_s=service.timeout_s(),
            progress=_say,
        )


def _start(ctx: Context, supervisor: Supervisor, stages: Sequence[Sequence[Service]]) -> None:
    """Start every service not yet running, stage by stage, each stage healthy before the next."""
    for stage in stages:
        for service in stage:
            info = supervisor.info(service.name)
            if info is not None and info.state in ("RUNNING", "STARTING"):
                continue
            if service.port_env:
                process.ensure_port_free(service.port(ctx), service.name, service.port_env)
            _say(f"  starting {service.name}")
            service.before_start(ctx)
            supervisor.start_process(service.name)
        _wait_healthy(ctx, supervisor, stage)


def _stages(workers: Sequence[TrinoServer], pipeline: bool, dashboards: bool) -> list[list[Service]]:
    postgres, objectstore, kafka, trino = CORE_SERVICES
    stages: list[list[Service]] = [[postgres, objectstore, kafka], [trino, *workers]]
    if pipeline:
        stages.append([PipelineLoop()])
    if dashboards:
        stages.append([Superset()])
    return stages


def _programs(workers: Sequence[TrinoServer], dashboards: bool) -> list[Service]:
    """What supervisord knows: without dashboards, Superset is left out (and stopped if it runs)."""
    return [*CORE_SERVICES, *workers, PipelineLoop(), *([Superset()] if dashboards else [])]


def _print_endpoints(ctx: Context, services: Sequence[Service]) -> None:
    _say("\nEndpoints:")
    for service in services:
        _say(f"  {service.name:<16} {service.endpoint(ctx)}")
    _say(f"  {'state':<16} {ctx.layout.home}")


def setup(settings: Settings) -> None:
    """Fresh setup: stop what runs, wipe state (keeping downloads), start, initialise."""
    started = time.monotonic()
    ctx = make_context(settings)
    supervisor = Supervisor(ctx.layout)
    _say(f"Native lakehouse setup (state in {ctx.layout.home})")
    _say("[1/4] stopping anything left from a previous run and wiping its data")
    down(settings, quiet=True)
    for path in ctx.layout.wipeable():
        shutil.rmtree(path, ignore_errors=True)
    _say("[2/4] downloading and preparing services (cached after the first run)")
    services = _programs([], settings.dashboards)
    for service in services:
        service.prepare(ctx)
    _say("[3/4] starting services")
    supervisor.write_config(ctx, services)
    supervisor.start()
    _start(ctx, supervisor, _stages([], pipeline=False, dashboards=False))
    _say("[4/4] creating databases, master data, bucket, topics and schemas")
    for service in CORE_SERVICES:
        service.initialise(ctx)
        _say(f"  ✓ {service.name} initialised")
    TrinoServer().wait_schedulable(ctx)
    _start(ctx, supervisor, _stages([], pipeline=True, dashboards=settings.dashboards)[2:])
    _print_endpoints(ctx, services)
    _say(f"\nLakehouse ready in {time.monotonic() - started:.0f}s. Try: ./lakehouse sql \"show tables from iceberg.marts\"")


def up(settings: Settings, *, trino_workers: int | None = None, pipeline: bool = True, dashboards: bool = True) -> None:
    ctx = make_context(settings)
    if not (ctx.layout.data / "postgres" / "PG_VERSION").exists():
        raise LakehouseError("no lakehouse state yet: run ./initial-setup.sh --native first")
    started = time.monotonic()
    supervisor = Supervisor(ctx.layout)
    current = configured_workers(supervisor) if supervisor.running() else []
    if trino_workers is None:
        workers = current
    else:
        for extra in current:
            if extra.worker > trino_workers:
                extra.before_stop(ctx)
                supervisor.remove(extra.name)
                _say(f"  stopped {extra.name}")
        workers = [TrinoServer(i) for i in range(1, trino_workers + 1)]
    dashboards = dashboards and settings.dashboards
    services = _programs(workers, dashboards)
    for service in services:
        service.prepare(ctx)
    supervisor.write_config(ctx, services)
    supervisor.start()
    stages = _stages(workers, pipeline, dashboards)
    _start(ctx, supervisor, stages[:1])
    # Roles, grants and master-data tables on every up (Superset's role and database too): it
    # migrates a stack made before the least-privilege roles, and applies passwords changed in .env.
    CORE_SERVICES[0].initialise(ctx)
    _start(ctx, supervisor, stages[1:2])
    TrinoServer().wait_schedulable(ctx)
    _start(ctx, supervisor, stages[2:])
    _print_endpoints(ctx, [s for s in services if pipeline or not isinstance(s, PipelineLoop)])
    _say(f"\nLakehouse up in {time.monotonic() - started:.1f}s")


def down(settings: Settings, *, quiet: bool = False) -> None:
    ctx = make_context(settings, with_java=False)
    supervisor = Supervisor(ctx.layout)
    if not supervisor.running():
        return
    order = [Superset(), PipelineLoop(), *configured_workers(supervisor), *reversed(CORE_SERVICES)]
    for service in order:
        info = supervisor.info(service.name)
        if info is None or info.state not in ("RUNNING", "STARTING", "BACKOFF"):
            continue
        service.before_stop(ctx)
        if supervisor.stop_process(service.name) and not quiet:
            _say(f"  stopped {service.name}")
    supervisor.shutdown()


def stop_service(settings: Settings, name: str) -> None:
    ctx = make_context(settings, with_java=False)
    supervisor = Supervisor(ctx.layout)
    if name not in supervisor.programs():
        raise LakehouseError(f"no service {name!r}; services: {', '.join(supervisor.programs()) or 'none (stack down)'}")
    service = service_named(name)
    service.before_stop(ctx)
    if not supervisor.stop_process(name):
        _say(f"{name} was not running")


def status(settings: Settings) -> bool:
    """One line per service (state, health, pid, uptime, restarts); True only when all are healthy."""
    ctx = make_context(settings, with_java=False)
    supervisor = Supervisor(ctx.layout)
    order = [s.name for s in (*CORE_SERVICES, PipelineLoop(), Superset())]
    names = sorted(supervisor.programs() or order[:4], key=lambda n: (order.index(n) if n in order else len(order), n))
    restarts = supervisor.restarts()
    all_healthy = True
    for name in names:
        service = service_named(name)
        info = supervisor.info(name)
        running = info is not None and info.state == "RUNNING"
        healthy = running and service.healthy(ctx)
        all_healthy &= healthy
        state = "healthy" if healthy else ("unhealthy" if running else (info.state.lower() if info else "stopped"))
        pid = info.pid if running else "-"
        uptime = _duration(info.uptime_s) if running else "-"
        _say(f"{name:<16} {state:<10} pid {pid!s:<8} up {uptime:<8} restarts {restarts.get(name, 0):<3} "
             f"{service.endpoint(ctx)}")
    if "pipeline" in names:
        _say(_pipeline_line(settings))
    return all_healthy


def _pipeline_line(settings: Settings) -> str:
    from smartmeter.pipeline.status import pipeline_status

    try:
        return "  " + pipeline_status(settings)
    except LakehouseError as exc:
        return f"  pipeline: {exc}"


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def known_services(settings: Settings) -> list[str]:
    supervisor = Supervisor(Layout(settings.home))
    names = supervisor.programs() or [s.name for s in _programs([], settings.dashboards)]
    return list(dict.fromkeys(names))


def log_path(settings: Settings, name: str):
    layout = Layout(settings.home)
    path = layout.log_file(name)
    if not path.exists():
        raise LakehouseError(f"no log for {name!r} at {path}; services: {', '.join(known_services(settings))}")
    return path
