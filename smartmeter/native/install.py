"""Installing what native mode needs from Debian's packages, when it is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from smartmeter.errors import LakehouseError

MIN_POSTGRES = 15


def postgres_bin_dir() -> Path:
    """The newest installed PostgreSQL server (15+), installing Debian's package when there is none."""
    found = []
    for candidate in Path("/usr/lib/postgresql").glob("*/bin/postgres"):
        try:
            version = int(candidate.parent.parent.name)
        except ValueError:
            continue
        if version >= MIN_POSTGRES:
            found.append((version, candidate.parent))
    if not found:
        install_postgres()
        return postgres_bin_dir()
    return max(found)[1]


def install_postgres() -> None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise LakehouseError(f"PostgreSQL {MIN_POSTGRES}+ server binaries not found. Install them: sudo apt-get install -y postgresql")
    print("  installing PostgreSQL from Debian packages ...", file=sys.stderr, flush=True)
    # Keep the package from starting its own cluster on 5432: ours runs under the state directory.
    policy = Path("/usr/sbin/policy-rc.d")
    created = not policy.exists()
    if created:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        apt_install("postgresql")
    finally:
        if created:
            policy.unlink()


def apt_install(*packages: str) -> None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise LakehouseError(f"{', '.join(packages)} missing: install with sudo apt-get install -y {' '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *packages]):
        if subprocess.run(command, env=env, stdout=subprocess.DEVNULL).returncode != 0:
            raise LakehouseError(f"`{' '.join(command)}` failed; install {' '.join(packages)} by hand")
