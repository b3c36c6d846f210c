"""Validate docker-compose.yml with a real Compose implementation; no Docker engine is needed.

    python -m smartmeter.compose_check            validate with the Compose found (exit 2 if none)
    python -m smartmeter.compose_check --install  build Docker Compose v2 first when none is found

The Compose used, in order: $LAKEHOUSE_COMPOSE_BIN; Docker Compose v2 built earlier into
$LAKEHOUSE_HOME/cache/compose/; `docker compose` (the CLI plugin) or `docker-compose` v2 on PATH.
--install builds Docker Compose v2 (COMPOSE_VERSION) from its Go module with the local Go
toolchain: the module comes from the Go module proxy, nothing from a download site (about three
minutes on two cores the first time, seconds once Go's build cache has it).

It runs `config -q` for the default services and for every profile, with .env.example as the
env file (what a fresh checkout has), and checks that `config --services` lists exactly the
services the file declares.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from smartmeter.config import REPO_ROOT, load_settings

COMPOSE_MODULE = "github.com/docker/compose/v2"
COMPOSE_VERSION = "v2.40.3"
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"


@dataclass(frozen=True)
class Compose:
    command: tuple[str, ...]
    version: str

    def run(self, *args: str, compose_file: Path = COMPOSE_FILE, env_file: Path | None = None) -> subprocess.CompletedProcess[str]:
        env_file = env_file or REPO_ROOT / ".env.example"
        command = [*self.command, "--project-directory", str(compose_file.parent), "-f", str(compose_file),
                   "--env-file", str(env_file), *args]
        # Only the env file decides interpolation: the caller's own variables must not hide a gap.
        clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "TMPDIR", "LANG")}
        return subprocess.run(command, capture_output=True, text=True, env=clean, cwd=compose_file.parent, timeout=120)


def built_binary() -> Path:
    return load_settings().home / "cache" / "compose" / f"docker-compose-{COMPOSE_VERSION}"


def _version_of(command: list[str]) -> str | None:
    try:
        result = subprocess.run([*command, "version", "--short"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = result.stdout.strip()
    if result.returncode != 0 or not text:
        return None
    major = text.lstrip("v").split(".")[0]
    return text if major.isdigit() and int(major) >= 2 else None


def find_compose() -> Compose | None:
    candidates: list[list[str]] = []
    if os.environ.get("LAKEHOUSE_COMPOSE_BIN"):
        candidates.append([os.environ["LAKEHOUSE_COMPOSE_BIN"]])
    if built_binary().is_file():
        candidates.append([str(built_binary())])
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    for command in candidates:
        version = _version_of(command)
        if version:
            return Compose(tuple(command), version)
    return None


def install() -> Compose:
    """Build Docker Compose v2 from its Go module (module proxy + local Go toolchain)."""
    go = shutil.which("go")
    if go is None:
        raise SystemExit("error: building Docker Compose needs Go (`go` on PATH); or install a Docker Compose v2 and retry")
    target = built_binary()
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"building Docker Compose {COMPOSE_VERSION} from {COMPOSE_MODULE} (first time: a few minutes) ...", flush=True)
    download = subprocess.run([go, "mod", "download", "-json", f"{COMPOSE_MODULE}@{COMPOSE_VERSION}"], capture_output=True, text=True)
    if download.returncode != 0:
        raise SystemExit(f"error: go mod download {COMPOSE_MODULE}@{COMPOSE_VERSION} failed:\n{download.stdout}{download.stderr}")
    source = json.loads(download.stdout)["Dir"]
    # `go install module/cmd@version` refuses modules with exclude directives, so build inside the
    # downloaded module, which then is the main module with its own go.mod.
    ldflags = f"-s -w -X {COMPOSE_MODULE}/internal.Version={COMPOSE_VERSION}"
    partial = target.with_suffix(".partial")
    build = subprocess.run([go, "build", "-trimpath", f"-ldflags={ldflags}", "-o", str(partial), "./cmd"],
                           cwd=source, capture_output=True, text=True, env={**os.environ, "CGO_ENABLED": "0"})
    if build.returncode != 0:
        raise SystemExit(f"error: building Docker Compose failed:\n{build.stdout}{build.stderr}")
    partial.replace(target)
    found = find_compose()
    if found is None or found.command != (str(target),):
        raise SystemExit(f"error: built {target}, but it does not answer `version`")
    return found


def declared_services(profiles: tuple[str, ...], compose_file: Path = COMPOSE_FILE) -> set[str]:
    services = yaml.safe_load(compose_file.read_text())["services"]
    return {name for name, svc in services.items() if not svc.get("profiles") or set(svc["profiles"]) & set(profiles)}


def profiles_of(compose_file: Path = COMPOSE_FILE) -> list[str]:
    services = yaml.safe_load(compose_file.read_text())["services"]
    return sorted({p for svc in services.values() for p in svc.get("profiles", [])})


def validate(compose: Compose, compose_file: Path = COMPOSE_FILE) -> list[str]:
    """Problems found by `config -q` and `config --services`, for no profile and for each profile."""
    problems = []
    for profiles in [()] + [(p,) for p in profiles_of(compose_file)]:
        flags = [arg for p in profiles for arg in ("--profile", p)]
        label = f"profile {profiles[0]}" if profiles else "default services"
        result = compose.run(*flags, "config", "-q", compose_file=compose_file)
        if result.returncode != 0:
            problems.append(f"{label}: config -q failed:\n{result.stderr.strip() or result.stdout.strip()}")
            continue
        listed = compose.run(*flags, "config", "--services", compose_file=compose_file)
        services = {line.strip() for line in listed.stdout.splitlines() if line.strip()}
        if listed.returncode != 0 or services != declared_services(profiles, compose_file):
            problems.append(f"{label}: config --services gave {sorted(services)}, the file declares "
                            f"{sorted(declared_services(profiles, compose_file))}\n{listed.stderr.strip()}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smartmeter.compose_check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--install", action="store_true", help=f"build Docker Compose {COMPOSE_VERSION} if none is found")
    args = parser.parse_args(argv)
    compose = find_compose()
    if compose is None and args.install:
        compose = install()
    if compose is None:
        print("no Docker Compose v2 found; run: python -m smartmeter.compose_check --install", file=sys.stderr)
        return 2
    problems = validate(compose)
    for problem in problems:
        print(f"docker-compose.yml: {problem}", file=sys.stderr)
    if not problems:
        print(f"docker-compose.yml is valid for Docker Compose {compose.version} ({' '.join(compose.command)}), "
              f"default services and profiles {', '.join(profiles_of()) or '-'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
