"""Starting, watching and stopping the service processes, with pid files and logs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from smartmeter.native.errors import StackError


def read_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if is_alive(pid) else None


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); it is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def ensure_port_free(port: int, service: str, env_var: str) -> None:
    if port_in_use(port):
        raise StackError(
            f"port {port} is already in use, so {service} cannot start. Find the owner with "
            f"`ss -ltnp 'sport = :{port}'` and stop it, or choose another port: export {env_var}=<port>"
        )


def tail(path: Path, lines: int = 30) -> str:
    try:
        content = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return "\n".join(content[-lines:])


def spawn(
    command: Sequence[str],
    *,
    log_file: Path,
    pid_file: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> int:
    """Start a detached process in its own session, appending its output to log_file."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        proc = subprocess.Popen(
            list(command),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            user=user,
        )
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def wait_until(
    check: Callable[[], bool],
    *,
    service: str,
    pid_file: Path,
    log_file: Path,
    timeout_s: float,
    progress: Callable[[str], None],
) -> None:
    """Poll check() until it passes; fail fast with the log's tail if the process dies."""
    started = time.monotonic()
    last_report = 0.0
    while True:
        if check():
            progress(f"  ✓ {service} healthy after {time.monotonic() - started:.1f}s")
            return
        if read_pid(pid_file) is None:
            raise StackError(f"{service} exited while starting. Last lines of {log_file}:\n{tail(log_file)}")
        elapsed = time.monotonic() - started
        if elapsed > timeout_s:
            raise StackError(
                f"{service} did not become healthy within {timeout_s:.0f}s. Last lines of {log_file}:\n{tail(log_file)}"
            )
        if elapsed - last_report >= 10:
            progress(f"  … waiting for {service} ({elapsed:.0f}s)")
            last_report = elapsed
        time.sleep(0.5)


def stop(pid_file: Path, *, timeout_s: float = 30.0, sig: int = signal.SIGTERM) -> bool:
    """Stop the process group behind pid_file; True if something was running."""
    pid = read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout_s
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if is_alive(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        while is_alive(pid):
            time.sleep(0.1)
    pid_file.unlink(missing_ok=True)
    return True
