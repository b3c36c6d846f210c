"""A private Podman engine for the compose test stage, and its complete removal afterwards.

Podman 4.3 (Debian 12) answers the Docker API on its own socket, so the product's unchanged
`docker` and `docker compose` commands run against it with DOCKER_HOST pointing there. The engine
is private: its own containers.conf, storage (images are kept as the build cache), run directory,
network definitions and socket, so it never sees a Docker engine's or another Podman's state.

Facts this relies on (issue 15):
- runc, not crun (crun can't raise RLIMIT_NOFILE here and rejects the hybrid cgroup mount);
  cgroupfs and a file events log, because there is no systemd;
- without systemd Podman never runs healthchecks by itself: HealthcheckLoop runs
  `podman healthcheck run` at each container's interval;
- compose builds through the classic builder API (DOCKER_BUILDKIT=0).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from smartmeter import compose_check

PACKAGES = ("podman", "runc", "netavark", "aardvark-dns", "slirp4netns", "fuse-overlayfs", "uidmap", "mmdebstrap", "iptables")
# Chains netavark adds to the host's firewall; only those the stage created are removed.
FIREWALL_CHAIN = re.compile(r"^NETAVARK")
MIN_COMPOSE = (2, 20)
# Processes Podman starts for containers; any that the stage started must be gone afterwards.
HELPERS = ("conmon", "aardvark-dns", "slirp4netns", "netavark")
# netavark keeps its run-time files (IPAM, aardvark-dns) here, whatever the configuration says.
NETAVARK_RUN_DIR = Path("/run/containers")


class EngineError(RuntimeError):
    pass


def _say(message: str) -> None:
    print(message, flush=True)


def _run(command: Sequence[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), text=True, capture_output=True, **kwargs)


def refuse_foreign_docker_host(own_socket: Path) -> None:
    """The stage talks only to its own Podman: a DOCKER_HOST (or context) aimed elsewhere stops it."""
    host = os.environ.get("DOCKER_HOST", "")
    if host and host != f"unix://{own_socket}":
        raise EngineError(f"DOCKER_HOST={host} is set. The compose test stage removes containers and volumes, so it "
                          "only runs against its own Podman engine; unset DOCKER_HOST and run it again.")
    if os.environ.get("DOCKER_CONTEXT"):
        raise EngineError(f"DOCKER_CONTEXT={os.environ['DOCKER_CONTEXT']} is set; unset it: the compose test stage "
                          "only runs against its own Podman engine.")


def install_packages() -> None:
    """Debian's Podman and what it needs; apt runs only when something is missing."""
    missing = [p for p in PACKAGES if _run(["dpkg-query", "-W", "-f=${Status}", p]).stdout != "install ok installed"]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise EngineError(f"the compose test stage needs these Debian packages: {' '.join(missing)} (as root: apt-get install)")
    _say(f"installing {' '.join(missing)} ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]):
        result = _run(command, env=env)
        if result.returncode != 0:
            raise EngineError(f"`{' '.join(command)}` failed:\n{(result.stdout + result.stderr)[-3000:]}")


def _compose_binary() -> Path:
    """Docker Compose v2, built from the Go module proxy like the unit tests' validator."""
    found = compose_check.find_compose()
    if found is None or len(found.command) != 1:
        found = compose_check.install()
    version = tuple(int(p) for p in re.findall(r"\d+", found.version)[:2])
    if version < MIN_COMPOSE:
        raise EngineError(f"Docker Compose {found.version} is too old; 2.20 or newer is needed")
    return Path(found.command[0])


def _helper_pids() -> set[int]:
    pids = set()
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "comm").read_text().strip() in HELPERS:
                pids.add(int(proc.name))
        except OSError:
            continue
    return pids


def _chains(binary: str) -> dict[str, set[str]]:
    """Chains per table, from `iptables -S` (empty when the binary is missing)."""
    chains: dict[str, set[str]] = {}
    if shutil.which(binary) is None:
        return chains
    for table in ("filter", "nat", "mangle"):
        result = _run([binary, "-w", "-t", table, "-S"])
        if result.returncode == 0:
            chains[table] = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("-N ")}
    return chains


class HealthcheckLoop:
    """Runs each running container's healthcheck at its configured interval (the first one at once)."""

    def __init__(self, engine: Engine, poll_s: float = 1.0) -> None:
        self.engine = engine
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="healthchecks", daemon=True)
        self._intervals: dict[str, float | None] = {}
        self._due: dict[str, float] = {}
        self._busy: set[str] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _interval(self, container: str) -> float | None:
        if container not in self._intervals:
            result = self.engine.podman("inspect", "--format", "{{json .Config.Healthcheck}}", container)
            check = json.loads(result.stdout or "null") if result.returncode == 0 else None
            test = (check or {}).get("Test") or []
            self._intervals[container] = None if not test or test[0] == "NONE" else (check.get("Interval") or 30e9) / 1e9
        return self._intervals[container]

    def _check(self, container: str) -> None:
        try:
            self.engine.podman("healthcheck", "run", container, timeout=120)
        except subprocess.TimeoutExpired:
            pass
        finally:
            with self._lock:
                self._busy.discard(container)

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            listed = self.engine.podman("ps", "--filter", "status=running", "--format", "{{.ID}}")
            if listed.returncode != 0:
                continue
            now = time.monotonic()
            for container in listed.stdout.split():
                interval = self._interval(container)
                if interval is None or now < self._due.get(container, 0.0):
                    continue
                with self._lock:
                    if container in self._busy:
                        continue
                    self._busy.add(container)
                self._due[container] = now + interval
                threading.Thread(target=self._check, args=(container,), daemon=True).start()


class Engine:
    """Podman with its own configuration under `state`, serving the Docker API on its own socket."""

    def __init__(self, state: Path) -> None:
        self.state = state
        tag = hashlib.sha256(str(state).encode()).hexdigest()[:10]
        # Run-time state belongs on /run (a tmpfs, emptied by a reboot), apart per state directory.
        self.run_dir = Path("/run") / f"lakehouse-podman-{tag}"
        self.socket = self.run_dir / "podman.sock"
        self.service: subprocess.Popen | None = None
        self.healthchecks: HealthcheckLoop | None = None
        self._firewall_before: dict[str, dict[str, set[str]]] = {}
        self._ip_forward_before: str | None = None
        self._helpers_before: set[int] = set()
        self._netavark_run_dir_existed = True

    # ------------------------------------------------------------------ configuration
    @property
    def containers_conf(self) -> Path:
        return self.state / "containers.conf"

    @property
    def storage_conf(self) -> Path:
        return self.state / "storage.conf"

    @property
    def docker_config(self) -> Path:
        """A DOCKER_CONFIG of our own: no user context can redirect `docker`, and compose is its plugin."""
        return self.state / "docker-config"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")}
        env.update({
            "CONTAINERS_CONF": str(self.containers_conf),
            "CONTAINERS_STORAGE_CONF": str(self.storage_conf),
            "DOCKER_HOST": f"unix://{self.socket}",
            "DOCKER_CONFIG": str(self.docker_config),
            "DOCKER_BUILDKIT": "0",
            "COMPOSE_DOCKER_CLI_BUILD": "0",
        })
        return env

    def configure(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        for sub in ("storage", "networks", "tmp"):
            (self.state / sub).mkdir(exist_ok=True)
        self.containers_conf.write_text(
            "# Written by tests/compose/engine.py for the compose test stage only.\n"
            "[containers]\n"
            'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
            'log_driver = "k8s-file"\n'
            "[engine]\n"
            'runtime = "runc"\n'
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            f'events_logfile_path = "{self.state / "events.log"}"\n'
            f'tmp_dir = "{self.run_dir / "libpod"}"\n'
            "[network]\n"
            f'network_config_dir = "{self.state / "networks"}"\n'
        )
        self.storage_conf.write_text(
            "[storage]\n"
            'driver = "overlay"\n'
            f'graphroot = "{self.state / "storage"}"\n'
            f'runroot = "{self.run_dir / "storage"}"\n'
        )
        plugins = self.docker_config / "cli-plugins"
        plugins.mkdir(parents=True, exist_ok=True)
        link = plugins / "docker-compose"
        link.unlink(missing_ok=True)
        link.symlink_to(_compose_binary())

    def podman(self, *args: str, timeout: float | None = 600) -> subprocess.CompletedProcess[str]:
        return _run(["podman", *args], env=self.env(), timeout=timeout)

    def check(self, *args: str, timeout: float | None = 600) -> str:
        result = self.podman(*args, timeout=timeout)
        if result.returncode != 0:
            raise EngineError(f"`podman {' '.join(args)}` failed:\n{(result.stdout + result.stderr)[-3000:]}")
        return result.stdout

    # ------------------------------------------------------------------ life cycle
    def _answers(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(5)
                sock.connect(str(self.socket))
                sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
                return b" 200 " in sock.recv(100)
        except OSError:
            return False

    def start(self) -> None:
        refuse_foreign_docker_host(self.socket)
        if shutil.which("docker") is None:
            raise EngineError("the `docker` command line client is needed (the product's setup calls it); "
                              "the machine image of this project ships it")
        install_packages()
        self.configure()
        self._stop_stale_service()
        self._firewall_before = {b: _chains(b) for b in ("iptables", "ip6tables")}
        self._ip_forward_before = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
        self._helpers_before = _helper_pids()
        self._netavark_run_dir_existed = NETAVARK_RUN_DIR.exists()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log = (self.state / "podman-service.log").open("a")
        self.service = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{self.socket}"],
                                        env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        (self.state / "podman-service.pid").write_text(str(self.service.pid))
        deadline = time.monotonic() + 60
        while not self._answers():
            if self.service.poll() is not None or time.monotonic() > deadline:
                raise EngineError(f"podman system service did not answer on {self.socket}; see {self.state / 'podman-service.log'}")
            time.sleep(0.5)
        # Through the docker CLI, as setup will talk to it: it must be this Podman, nothing else.
        version = _run(["docker", "version", "--format", "{{range .Server.Components}}{{.Name}}={{.Version}};{{end}}"],
                       env=self.env())
        podman = re.search(r"Podman Engine=([\d.]+)", version.stdout)
        if version.returncode != 0 or podman is None:
            raise EngineError(f"the engine on {self.socket} is not our Podman: {version.stdout}{version.stderr}")
        _say(f"engine: Podman {podman[1]} on {self.socket}")
        self.healthchecks = HealthcheckLoop(self)
        self.healthchecks.start()

    def _stop_stale_service(self) -> None:
        """A service left by an interrupted run of this stage (same state directory) is stopped."""
        pid_file = self.state / "podman-service.pid"
        if not pid_file.is_file():
            return
        pid = int(pid_file.read_text() or 0)
        cmdline = Path(f"/proc/{pid}/cmdline")
        if pid and cmdline.is_file() and str(self.socket).encode() in cmdline.read_bytes():
            os.kill(pid, signal.SIGTERM)
            for _ in range(50):
                if not cmdline.is_file():
                    break
                time.sleep(0.2)
        pid_file.unlink()

    def teardown(self) -> list[str]:
        """Remove everything the stage created but the image cache; returns what could not be removed."""
        problems: list[str] = []
        if self.healthchecks is not None:
            self.healthchecks.stop()
        if shutil.which("podman") and self.containers_conf.is_file():
            for args in (("pod", "rm", "--all", "--force"), ("rm", "--all", "--force", "--volumes", "--time", "10"),
                         ("volume", "prune", "--force"), ("network", "prune", "--force")):
                result = self.podman(*args)
                if result.returncode != 0:
                    problems.append(f"podman {' '.join(args)}: {result.stderr.strip()}")
            left = self.podman("ps", "--all", "--quiet").stdout.split() + self.podman("volume", "ls", "--quiet").stdout.split()
            if left:
                problems.append(f"left behind: {' '.join(left)}")
        if self.service is not None and self.service.poll() is None:
            os.killpg(self.service.pid, signal.SIGTERM)
            try:
                self.service.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.service.pid, signal.SIGKILL)
                self.service.wait()
        (self.state / "podman-service.pid").unlink(missing_ok=True)
        problems += self._unmount()
        problems += self._remove_firewall_chains()
        if self._ip_forward_before is not None:
            Path("/proc/sys/net/ipv4/ip_forward").write_text(self._ip_forward_before)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        if not self._netavark_run_dir_existed:
            shutil.rmtree(NETAVARK_RUN_DIR, ignore_errors=True)
        problems += [f"process left running: {p}" for p in self._stop_leftovers()]
        return problems

    def _stop_leftovers(self, grace_s: float = 10) -> list[str]:
        """Wait for the engine's processes to end; then stop those that name its directories (conmon
        keeps an exec session's monitor up to 5 minutes after its container is gone)."""
        deadline = time.monotonic() + grace_s
        while (left := self.leftover_processes()) and time.monotonic() < deadline:
            time.sleep(1)
        marks = (str(self.run_dir), str(self.state))
        for entry in left:
            pid, _, command = entry.partition(" ")
            if any(mark in command for mark in marks):
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        time.sleep(1)
        return self.leftover_processes()

    def leftover_processes(self) -> list[str]:
        """Processes of this engine still alive, as `pid command`: any naming its directories, and
        container helpers (conmon, aardvark-dns, ...) started since the engine started."""
        marks = (str(self.run_dir).encode(), str(self.state).encode())
        new_helpers = _helper_pids() - self._helpers_before
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes()
                state = (proc / "stat").read_text().rpartition(")")[2].split()[0]
            except (OSError, IndexError):
                continue
            if state == "Z":  # already dead, only not yet reaped by its parent
                continue
            if int(proc.name) in new_helpers or any(mark in cmdline for mark in marks):
                command = cmdline.replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{proc.name} {command}")
        return found

    def _mounts(self) -> list[str]:
        mounted = {line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()}
        return sorted((m for m in mounted if Path(m).is_relative_to(self.state) or Path(m).is_relative_to(self.run_dir)),
                      key=len, reverse=True)

    def _unmount(self) -> list[str]:
        """The overlay driver leaves its home bind-mounted (storage/overlay), sometimes layers too."""
        for _ in range(3):
            for mount_point in self._mounts():
                _run(["umount", mount_point])
        return [f"still mounted: {m}" for m in self._mounts()]

    def _remove_firewall_chains(self) -> list[str]:
        problems = []
        for binary, before in self._firewall_before.items():
            for table, chains in _chains(binary).items():
                ours = {c for c in chains - before.get(table, set()) if FIREWALL_CHAIN.match(c)}
                if not ours:
                    continue
                rules = _run([binary, "-w", "-t", table, "-S"]).stdout.splitlines()
                # Jumps into our chains first (from any chain), then the chains themselves.
                for rule in rules:
                    parts = shlex.split(rule)
                    if parts[0] == "-A" and "-j" in parts and parts[parts.index("-j") + 1] in ours:
                        _run([binary, "-w", "-t", table, "-D", *parts[1:]])
                for chain in ours:
                    _run([binary, "-w", "-t", table, "-F", chain])
                for chain in ours:
                    result = _run([binary, "-w", "-t", table, "-X", chain])
                    if result.returncode != 0:
                        problems.append(f"{binary} -t {table} -X {chain}: {result.stderr.strip()}")
        return problems
