"""Maven Central downloads: pinned, cached under the state directory, checksum-verified.

Maven is the download client (`mvn -C` fails on a bad .sha1); the large archives are also
pinned by SHA-256 here, so a corrupted or swapped file never reaches a running service.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from smartmeter.errors import LakehouseError
from smartmeter.native.layout import Layout

TRINO_VERSION = "476"
KAFKA_POM = Path(__file__).parent / "maven" / "kafka-pom.xml"
# Plugins the lakehouse uses (postgresql needs geospatial's types; password-authenticators is
# TRINO_AUTH=password's password file); the rest of the full Trino
# tarball is removed after unpacking.
TRINO_PLUGINS = ("iceberg", "kafka", "postgresql", "geospatial", "password-authenticators")


@dataclass(frozen=True)
class Artifact:
    coordinates: str  # groupId:artifactId:version:packaging[:classifier]
    sha256: str

    @property
    def relative_path(self) -> Path:
        parts = self.coordinates.split(":")
        group, artifact, version, packaging = parts[:4]
        classifier = f"-{parts[4]}" if len(parts) > 4 else ""
        return Path(*group.split("."), artifact, version, f"{artifact}-{version}{classifier}.{packaging}")


TRINO_SERVER = Artifact(
    f"io.trino:trino-server:{TRINO_VERSION}:tar.gz",
    "cfd5accde17e8ebd251eeeb78aed1f490e77bb3a164d95a0f454bf8a7c1cbd3f",
)
TRINO_CLI = Artifact(
    f"io.trino:trino-cli:{TRINO_VERSION}:jar:executable",
    "fe4e9c7fb569cd67673afa1622945f6308e1e59bdb825419352b80887661757b",
)
S3PROXY = Artifact(
    "org.gaul:s3proxy:4.1.0:jar:jar-with-dependencies",
    "a4d025969aaf796616ed4b1e2491d87d455ce84bb28cb9db086b2e6aaa68b48d",
)


def _mvn(layout: Layout, *args: str, what: str) -> None:
    if shutil.which("mvn") is None:
        raise LakehouseError("Maven (mvn) is not installed; it downloads Trino, Kafka and S3Proxy. Install it: apt-get install -y maven")
    cmd = ["mvn", "-B", "-q", "-C", f"-Dmaven.repo.local={layout.maven_repo}", *args]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise LakehouseError(
            f"download of {what} from Maven Central failed (mvn exit {result.returncode}).\n"
            f"Check the network or proxy settings (~/.m2/settings.xml) and run the command again.\n{tail}"
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(layout: Layout, artifact: Artifact) -> Path:
    """The verified local file for an artifact, downloading it on first use only."""
    path = layout.maven_repo / artifact.relative_path
    stamp = path.with_name(path.name + ".verified")
    if path.is_file() and stamp.is_file():
        return path
    if not path.is_file():
        print(f"  downloading {artifact.coordinates} ...", file=sys.stderr, flush=True)
        _mvn(layout, "dependency:get", f"-Dartifact={artifact.coordinates}", "-Dtransitive=false", what=artifact.coordinates)
    actual = _sha256(path)
    if actual != artifact.sha256:
        path.unlink()
        raise LakehouseError(
            f"checksum mismatch for {artifact.coordinates}: expected {artifact.sha256}, got {actual}. "
            "The file was deleted; run the command again to download it afresh."
        )
    stamp.touch()
    return path


def trino_server(layout: Layout) -> Path:
    """The unpacked Trino server with only the plugins the lakehouse uses."""
    home = layout.cache / f"trino-server-{TRINO_VERSION}"
    stamp = home / ".complete"
    if stamp.is_file() and stamp.read_text() == ",".join(TRINO_PLUGINS):
        return home
    archive = fetch(layout, TRINO_SERVER)
    print(f"  unpacking trino-server-{TRINO_VERSION} ...", file=sys.stderr, flush=True)
    shutil.rmtree(home, ignore_errors=True)
    with tarfile.open(archive) as tar:
        tar.extractall(layout.cache, filter="tar")
    for plugin in (home / "plugin").iterdir():
        if plugin.name not in TRINO_PLUGINS:
            shutil.rmtree(plugin)
    stamp.write_text(",".join(TRINO_PLUGINS))
    return home


def kafka_libs(layout: Layout) -> Path:
    """A folder with the Kafka broker, its tools and log4j2 on one classpath."""
    libs = layout.cache / "kafka-libs"
    if (libs / ".complete").is_file():
        return libs
    print("  downloading Kafka (org.apache.kafka:kafka_2.13 and kafka-tools) ...", file=sys.stderr, flush=True)
    shutil.rmtree(libs, ignore_errors=True)
    _mvn(
        layout,
        "-f",
        str(KAFKA_POM),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={libs}",
        what="Kafka and its dependencies",
    )
    (libs / ".complete").touch()
    return libs
