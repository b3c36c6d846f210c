"""supervisord, the process manager of native mode: it runs every service in the foreground,
restarts one that dies (with backoff), rotates its log, and answers over a unix socket (XML-RPC).
Its configuration is rendered at every `./lakehouse up` from smartmeter/native/services.py.

Why supervisord: it is in Debian and on PyPI (installed in the project's venv, so nothing else to
install), it needs no init system (this machine has no systemd), and it supervises processes as
their parent, so a reused PID can never be mistaken for a service.
"""

from __future__ import annotations

import configparser
import json
import shlex
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from smartmeter.config import REPO_ROOT
from smartmeter.errors import LakehouseError
from smartmeter.native.layout import Layout
from smartmeter.native.services import Context, Service

LOG_MAX_BYTES = "50MB"
LOG_BACKUPS = 3


@dataclass(frozen=True)
class ProcessState:
    name: str
    state: str
    pid: int
    uptime_s: int
    exit_status: int


def _escape(value: str) -> str:
    """supervisord expands %(...)s in its config: a literal % is %%."""
    return value.replace("%", "%%")


def render_config(ctx: Context, services: Sequence[Service]) -> str:
    layout = ctx.layout
    config = configparser.RawConfigParser()
    config.optionxform = str
    config["unix_http_server"] = {"file": str(layout.supervisor_socket), "chmod": "0700"}
    config["supervisord"] = {
        "logfile": str(layout.logs / "supervisord.log"),
        "logfile_maxbytes": "10MB",
        "logfile_backups": str(LOG_BACKUPS),
        "pidfile": str(layout.run / "supervisord.pid"),
        "childlogdir": str(layout.logs),
        "directory": str(REPO_ROOT),
        "identifier": "lakehouse",
    }
    config["rpcinterface:supervisor"] = {"supervisor.rpcinterface_factory": "supervisor.rpcinterface:make_main_rpcinterface"}
    config["supervisorctl"] = {"serverurl": f"unix://{layout.supervisor_socket}"}
    for service in services:
        command = service.supervisor_command() or service.command(ctx)
        section = {
            "command": _escape(shlex.join(command)),
            "directory": str(REPO_ROOT),
            # `up` starts services in order and waits for each to be healthy.
            "autostart": "false",
            # A crash is restarted; a clean exit 0 (a retired Trino worker) is not.
            "autorestart": "unexpected",
            "exitcodes": "0",
            "startsecs": "3",
            "startretries": "10",
            "stopsignal": service.stop_signal,
            "stopwaitsecs": str(service.stop_wait_s),
            "redirect_stderr": "true",
            "stdout_logfile": str(layout.log_file(service.name)),
            "stdout_logfile_maxbytes": LOG_MAX_BYTES,
            "stdout_logfile_backups": str(LOG_BACKUPS),
        }
        if service.user():
            section["user"] = service.user()
        config[f"program:{service.name}"] = section
    config["eventlistener:restarts"] = {
        "command": _escape(shlex.join([sys.executable, "-m", "smartmeter.native.restarts", str(layout.restarts_file)])),
        "directory": str(REPO_ROOT),
        "events": "PROCESS_STATE_EXITED",
        "autorestart": "true",
        "stdout_logfile": "NONE",
        "stderr_logfile": str(layout.logs / "restarts.log"),
        "stderr_logfile_maxbytes": "1MB",
    }
    lines = []
    for name, section in config.items():
        if name == "DEFAULT":
            continue
        lines.append(f"[{name}]")
        lines += [f"{key}={value}" for key, value in section.items()]
        lines.append("")
    return "\n".join(lines)


class Supervisor:
    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def _proxy(self):
        from supervisor.xmlrpc import SupervisorTransport

        transport = SupervisorTransport(None, None, serverurl=f"unix://{self.layout.supervisor_socket}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def running(self) -> bool:
        if not self.layout.supervisor_socket.exists():
            return False
        try:
            return self._proxy().getState()["statename"] == "RUNNING"
        except (OSError, xmlrpc.client.Fault):
            return False

    def write_config(self, ctx: Context, services: Sequence[Service]) -> None:
        path = self.layout.supervisor_conf
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(render_config(ctx, services))

    def start(self) -> None:
        """Start supervisord (it daemonizes), or make a running one read the rewritten config."""
        if self.running():
            added, changed, removed = self._proxy().reloadConfig()[0]
            for name in removed + changed:
                self._stop_and_remove(name)
            for name in added + changed:
                self._proxy().addProcessGroup(name)
            return
        for path in (self.layout.logs, self.layout.run):
            path.mkdir(parents=True, exist_ok=True)
        self.layout.supervisor_socket.unlink(missing_ok=True)
        result = subprocess.run([supervisord_executable(), "-c", str(self.layout.supervisor_conf)], capture_output=True, text=True)
        if result.returncode != 0:
            raise LakehouseError(f"supervisord did not start:\n{result.stdout}{result.stderr}")
        deadline = time.monotonic() + 30
        while not self.running():
            if time.monotonic() > deadline:
                raise LakehouseError(f"supervisord did not answer; see {self.layout.logs / 'supervisord.log'}")
            time.sleep(0.2)

    def _stop_and_remove(self, name: str) -> None:
        try:
            self._proxy().stopProcessGroup(name)
        except xmlrpc.client.Fault:
            pass
        self._proxy().removeProcessGroup(name)

    def start_process(self, name: str) -> None:
        try:
            self._proxy().startProcess(name, False)
        except xmlrpc.client.Fault as fault:
            if "ALREADY_STARTED" not in fault.faultString:
                raise LakehouseError(f"supervisord could not start {name}: {fault.faultString}") from fault

    def stop_process(self, name: str) -> bool:
        """Stop one service; True if it was running."""
        try:
            self._proxy().stopProcess(name, True)
            return True
        except xmlrpc.client.Fault as fault:
            if "NOT_RUNNING" in fault.faultString or "BAD_NAME" in fault.faultString:
                return False
            raise LakehouseError(f"supervisord could not stop {name}: {fault.faultString}") from fault

    def remove(self, name: str) -> None:
        try:
            self._stop_and_remove(name)
        except xmlrpc.client.Fault:
            pass

    def info(self, name: str) -> ProcessState | None:
        try:
            info = self._proxy().getProcessInfo(name)
        except (OSError, xmlrpc.client.Fault):
            return None
        uptime = info["now"] - info["start"] if info["statename"] == "RUNNING" else 0
        return ProcessState(name, info["statename"], info["pid"], uptime, info["exitstatus"])

    def programs(self) -> list[str]:
        """The configured services, in the order of the configuration (the start order)."""
        try:
            return [p["name"] for p in self._proxy().getAllProcessInfo() if p["group"] != "restarts"]
        except (OSError, xmlrpc.client.Fault):
            return []

    def restarts(self) -> dict[str, int]:
        try:
            return json.loads(self.layout.restarts_file.read_text())
        except (OSError, ValueError):
            return {}

    def shutdown(self) -> None:
        if not self.running():
            return
        self._proxy().shutdown()
        deadline = time.monotonic() + 60
        while self.layout.supervisor_socket.exists() and time.monotonic() < deadline:
            time.sleep(0.2)


def supervisord_executable() -> str:
    """supervisord of the interpreter's environment (the project's venv)."""
    candidate = Path(sys.executable).with_name("supervisord")
    return str(candidate) if candidate.exists() else "supervisord"
