"""The native stack as the tests see it: service processes (under supervisord) and their health."""

from __future__ import annotations

import os
import signal
import time

from smartmeter.config import Settings
from smartmeter.native.layout import Layout
from smartmeter.native.services import service_named
from smartmeter.native.stack import make_context
from smartmeter.native.supervisor import Supervisor


def service_pid(settings: Settings, name: str) -> int:
    info = Supervisor(Layout(settings.home)).info(name)
    assert info is not None and info.state == "RUNNING", f"{name} is not running: {info}"
    return info.pid


def kill_service(settings: Settings, name: str) -> int:
    """SIGKILL a service's process (a crash, as far as supervisord can tell); its old pid."""
    pid = service_pid(settings, name)
    os.kill(pid, signal.SIGKILL)
    return pid


def wait_healthy_again(settings: Settings, name: str, old_pid: int, timeout_s: float = 240) -> float:
    """Seconds until supervisord has restarted `name` (a new pid) and it answers its health check."""
    ctx = make_context(settings, with_java=False)
    service = service_named(name)
    supervisor = Supervisor(Layout(settings.home))
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        info = supervisor.info(name)
        if info is not None and info.state == "RUNNING" and info.pid != old_pid and service.healthy(ctx):
            return time.monotonic() - started
        time.sleep(1)
    raise AssertionError(f"{name} did not come back within {timeout_s:.0f}s: {supervisor.info(name)}")


def restarts(settings: Settings) -> dict[str, int]:
    return Supervisor(Layout(settings.home)).restarts()
