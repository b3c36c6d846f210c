"""The native stack as a whole: fresh setup, up, down and status."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Sequence

from smartmeter.config import Settings
from smartmeter.native import process
from smartmeter.native.errors import StackError
from smartmeter.native.java import find_java_home
from smartmeter.native.layout import Layout
from smartmeter.native.services import CORE_SERVICES, Context, PipelineLoop, Service, Trino


def _say(message: str) -> None:
    print(message, flush=True)


def make_context(settings: Settings, *, with_java: bool = True) -> Context:
    ctx = Context(settings=settings, layout=Layout(settings.home))
    if with_java:
        ctx.java_home = find_java_home()
    return ctx


def running_workers(ctx: Context) -> list[Trino]:
    workers = []
    for pid_file in sorted(ctx.layout.run.glob("trino-worker-*.pid")):
        workers.append(Trino(int(pid_file.stem.rsplit("-", 1)[1])))
    return workers


def _optional_services(ctx: Context) -> list[Service]:
    services: list[Service] = list(running_workers(ctx))
    if ctx.layout.pid_file(PipelineLoop.name).exists():
        services.append(PipelineLoop())
    return services


def _start(ctx: Context, services: Sequence[Service]) -> None:
    """Start every service not yet running, all at once, then wait for each to be healthy."""
    to_wait = []
    for service in services:
        pid_file = ctx.layout.pid_file(service.name)
        if process.read_pid(pid_file) is not None:
            continue
        if service.port_env:
            process.ensure_port_free(service.port(ctx), service.name, service.port_env)
        service.prepare(ctx)
        _say(f"  starting {service.name}")
        service.start(ctx)
        to_wait.append(service)
    for service in services:
        process.wait_until(
            lambda s=service: s.healthy(ctx),
            service=service.name,
            pid_file=ctx.layout.pid_file(service.name),
            log_file=ctx.layout.log_file(service.name),
            timeout_s=service.timeout_s(),
            progress=_say,
        )


def _print_endpoints(ctx: Context, services: Sequence[Service]) -> None:
    _say("\nEndpoints:")
    for service in services:
        _say(f"  {service.name:<16} {service.endpoint(ctx)}")
    _say(f"  {'state':<16} {ctx.layout.home}")


def setup(settings: Settings) -> None:
    """Fresh setup: stop what runs, wipe state (keeping downloads), start, initialise."""
    started = time.monotonic()
    ctx = make_context(settings)
    _say(f"Native lakehouse setup (state in {ctx.layout.home})")
    _say("[1/4] stopping anything left from a previous run and wiping its data")
    down(settings, quiet=True)
    for path in ctx.layout.wipeable():
        shutil.rmtree(path, ignore_errors=True)
    _say("[2/4] downloading and preparing services (cached after the first run)")
    for service in CORE_SERVICES:
        service.prepare(ctx)
    _say("[3/4] starting services")
    _start(ctx, CORE_SERVICES)
    _say("[4/4] creating databases, master data, bucket, topics and schemas")
    for service in CORE_SERVICES:
        service.initialise(ctx)
        _say(f"  ✓ {service.name} initialised")
    Trino().wait_schedulable(ctx)
    _print_endpoints(ctx, CORE_SERVICES)
    _say(f"\nLakehouse ready in {time.monotonic() - started:.0f}s. Try: ./lakehouse sql \"select count(*) from postgresql.public.devices\"")


def up(settings: Settings, *, trino_workers: int | None = None, dbt_loop: bool = False) -> None:
    ctx = make_context(settings)
    if not (ctx.layout.data / "postgres" / "PG_VERSION").exists():
        raise StackError("no lakehouse state yet: run ./initial-setup.sh --native first")
    started = time.monotonic()
    services: list[Service] = list(CORE_SERVICES)
    if trino_workers is None:
        services += running_workers(ctx)
    else:
        for extra in running_workers(ctx):
            if extra.worker > trino_workers:
                extra.stop(ctx)
                _say(f"  stopped {extra.name}")
        services += [Trino(i) for i in range(1, trino_workers + 1)]
    if dbt_loop:
        services.append(PipelineLoop())
    _start(ctx, services)
    Trino().wait_schedulable(ctx)
    _print_endpoints(ctx, services)
    _say(f"\nLakehouse up in {time.monotonic() - started:.1f}s")


def down(settings: Settings, *, quiet: bool = False) -> None:
    ctx = make_context(settings, with_java=False)
    services = list(CORE_SERVICES) + _optional_services(ctx)
    for service in reversed(services):
        if service.stop(ctx) and not quiet:
            _say(f"  stopped {service.name}")


def stop_service(settings: Settings, name: str) -> None:
    ctx = make_context(settings, with_java=False)
    services = {s.name: s for s in list(CORE_SERVICES) + _optional_services(ctx)}
    if name not in services:
        raise StackError(f"no running service {name!r}; services: {', '.join(services)}")
    if not services[name].stop(ctx):
        _say(f"{name} was not running")


def status(settings: Settings) -> bool:
    """One line per service; True only when every one is healthy."""
    ctx = make_context(settings, with_java=False)
    all_healthy = True
    for service in list(CORE_SERVICES) + _optional_services(ctx):
        pid = process.read_pid(ctx.layout.pid_file(service.name))
        healthy = pid is not None and service.healthy(ctx)
        all_healthy &= healthy
        state = "healthy" if healthy else ("unhealthy" if pid else "stopped")
        _say(f"{service.name:<16} {state:<10} pid {pid or '-':<8} {service.endpoint(ctx)}")
    return all_healthy


def known_services(settings: Settings) -> list[str]:
    ctx = make_context(settings, with_java=False)
    names = [s.name for s in list(CORE_SERVICES) + _optional_services(ctx)] + [PipelineLoop.name]
    return list(dict.fromkeys(names))


def log_path(settings: Settings, name: str):
    ctx = make_context(settings, with_java=False)
    path = ctx.layout.log_file(name)
    if not path.exists():
        print(f"no log for {name!r} at {path}; services: {', '.join(known_services(settings))}", file=sys.stderr)
        return None
    return path
