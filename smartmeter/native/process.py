"""Ports, logs and health polling around the supervised services."""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Callable
from pathlib import Path

from smartmeter.errors import LakehouseError


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Free only when the port refuses a connection: a port a firewall forwards elsewhere (a
    killed podman's leftover DNAT rule, say) binds fine, then times out or is unreachable."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) != errno.ECONNREFUSED


def ensure_port_free(port: int, service: str, env_var: str) -> None:
    if port_in_use(port):
        raise LakehouseError(
            f"port {port} is already in use, so {service} cannot start: it does not refuse a connection. Find "
            f"the owner with `ss -ltnp 'sport = :{port}'` (or a forwarding rule, such as a stopped container's, "
            f"with `iptables -t nat -S | grep {port}`) and stop it, or choose another port: export {env_var}=<port>"
        )


def tail(path: Path, lines: int = 30) -> str:
    try:
        content = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return "\n".join(content[-lines:])


def wait_until(
    check: Callable[[], bool],
    *,
    service: str,
    state: Callable[[], str | None],
    log_file: Path,
    timeout_s: float,
    progress: Callable[[str], None],
) -> None:
    """Poll check() until it passes; fail fast with the log's tail if the process gives up
    (supervisord state FATAL, BACKOFF or EXITED)."""
    started = time.monotonic()
    last_report = 0.0
    while True:
        if check():
            progress(f"  ✓ {service} healthy after {time.monotonic() - started:.1f}s")
            return
        current = state()
        if current in ("FATAL", "BACKOFF", "EXITED", None):
            raise LakehouseError(f"{service} exited while starting ({current}). Last lines of {log_file}:\n{tail(log_file)}")
        elapsed = time.monotonic() - started
        if elapsed > timeout_s:
            raise LakehouseError(
                f"{service} did not become healthy within {timeout_s:.0f}s. Last lines of {log_file}:\n{tail(log_file)}"
            )
        if elapsed - last_report >= 10:
            progress(f"  … waiting for {service} ({elapsed:.0f}s)")
            last_report = elapsed
        time.sleep(0.5)
