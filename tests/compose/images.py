"""Stand-in images for docker-compose.yml, built locally and tagged exactly as the compose file names them.

The official images can't be pulled on this project's machines. Each stand-in (tests/compose/images/)
follows its official image's documented interface and is built only from reachable inputs: a
Debian base made by mmdebstrap, Debian packages, and the Maven Central artifacts and JDK native
mode already uses (cached under $LAKEHOUSE_HOME/cache, checksum-verified). Podman's layer cache
lives in the stage's own storage, so a second run rebuilds nothing that did not change.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from smartmeter.config import REPO_ROOT
from smartmeter.native import artifacts
from smartmeter.native.java import find_java_home
from smartmeter.native.layout import Layout
from tests.compose.engine import Engine, EngineError

IMAGES_DIR = Path(__file__).parent / "images"
BASE_IMAGE = "localhost/lakehouse-test/debian:bookworm"
JAVA_IMAGE = "localhost/lakehouse-test/java:25"
DEBIAN_SOURCES = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
# Parts of a JDK that a runtime does not need.
JDK_EXTRAS = ("lib/src.zip", "lib/ct.sym", "jmods", "man", "include", "demo")
# Official image repository -> stand-in directory under images/.
STAND_INS = {
    "postgres": "postgres",
    "apache/kafka": "kafka",
    "trinodb/trino": "trino",
    "andrewgaul/s3proxy": "s3proxy",
    "curlimages/curl": "curl",
    "kafbat/kafka-ui": "kafka-ui",
    "python": "python",
    "apache/superset": "superset",
}


def qualified(image: str) -> str:
    """The name the Docker API gives a short image name: docker.io/library/postgres:15 and so on."""
    first = image.split("/")[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return image
    return f"docker.io/{image}" if "/" in image else f"docker.io/library/{image}"


def repository(image: str) -> str:
    name = image.rsplit(":", 1)[0] if ":" in image.split("/")[-1] else image
    return name.removeprefix("docker.io/").removeprefix("library/")


def wanted_images() -> dict[str, str]:
    """Every image the stack needs, as named: the services' images and the bases of the images it builds."""
    services = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]
    images = {str(svc["image"]) for svc in services.values() if "image" in svc}
    for build in {(svc["build"]["context"], svc["build"]["dockerfile"]) for svc in services.values() if "build" in svc}:
        images |= set(re.findall(r"^FROM\s+(\S+)", (REPO_ROOT / build[0] / build[1]).read_text(), re.M))
    images = sorted(images)
    wanted = {}
    for image in images:
        stand_in = STAND_INS.get(repository(image))
        if stand_in is None:
            raise EngineError(f"{image} has no stand-in under {IMAGES_DIR}; add one for the compose test stage")
        wanted[image] = stand_in
    return wanted


# --------------------------------------------------------------------------- build contexts

def _copy_tree(source: Path, target: Path) -> None:
    """Hard links when possible (fast, and identical files keep Podman's COPY cache valid)."""
    if subprocess.run(["cp", "-al", str(source), str(target)], capture_output=True).returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target, symlinks=True)


def _java(context: Path, layout: Layout) -> None:
    _copy_tree(find_java_home(), context / "jdk")
    for extra in JDK_EXTRAS:
        path = context / "jdk" / extra
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _kafka(context: Path, layout: Layout) -> None:
    _copy_tree(artifacts.kafka_libs(layout), context / "libs")
    (context / "libs" / ".complete").unlink(missing_ok=True)


def _trino(context: Path, layout: Layout) -> None:
    _copy_tree(artifacts.trino_server(layout), context / "trino-server")
    (context / "trino-server" / ".complete").unlink(missing_ok=True)
    cli = context / "trino-cli"
    shutil.copyfile(artifacts.fetch(layout, artifacts.TRINO_CLI), cli)
    cli.chmod(0o755)


def _s3proxy(context: Path, layout: Layout) -> None:
    os.link(artifacts.fetch(layout, artifacts.S3PROXY), context / "s3proxy")


def _python(context: Path, layout: Layout) -> None:
    bundle = Path(os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")
    shutil.copyfile(bundle, context / "host-ca-certificates.crt")


def _superset(context: Path, layout: Layout) -> None:
    _python(context, layout)
    shutil.copyfile(REPO_ROOT / "requirements-superset.txt", context / "requirements-superset.txt")


@dataclass(frozen=True)
class Recipe:
    directory: str
    inputs: Callable[[Path, Layout], None] | None = None
    needs: str = BASE_IMAGE


RECIPES = {
    "java": Recipe("java", _java),
    "kafka": Recipe("kafka", _kafka, JAVA_IMAGE),
    "trino": Recipe("trino", _trino, JAVA_IMAGE),
    "s3proxy": Recipe("s3proxy", _s3proxy, JAVA_IMAGE),
    "postgres": Recipe("postgres"),
    "python": Recipe("python", _python),
    "curl": Recipe("curl"),
    "kafka-ui": Recipe("kafka-ui"),
    "superset": Recipe("superset", _superset),
}


# --------------------------------------------------------------------------- builds

@dataclass
class Built:
    name: str
    seconds: float
    cached: bool


def _base_recipe() -> str:
    return hashlib.sha256("\n".join(("minbase", *DEBIAN_SOURCES)).encode()).hexdigest()[:16]


def build_base(engine: Engine) -> Built:
    """Debian bookworm minbase from mmdebstrap, imported as an image (kept while the recipe holds)."""
    started = time.monotonic()
    recipe = _base_recipe()
    label = engine.podman("image", "inspect", "--format", '{{index .Labels "lakehouse.recipe"}}', BASE_IMAGE)
    if label.returncode == 0 and label.stdout.strip() == recipe:
        return Built("debian base", time.monotonic() - started, True)
    with tempfile.TemporaryDirectory(dir=engine.state) as tmp:
        tarball = Path(tmp) / "rootfs.tar"
        result = subprocess.run(["mmdebstrap", "--quiet", "--variant=minbase", "--format=tar", "bookworm", str(tarball),
                                 *DEBIAN_SOURCES], capture_output=True, text=True)
        if result.returncode != 0:
            raise EngineError(f"mmdebstrap failed:\n{result.stderr[-3000:]}")
        engine.check("import", "--change", f"LABEL lakehouse.recipe={recipe}", "--change", 'CMD ["bash"]',
                     str(tarball), BASE_IMAGE)
    return Built("debian base", time.monotonic() - started, False)


def build(engine: Engine, name: str, tags: list[str], layout: Layout) -> Built:
    recipe = RECIPES[name]
    started = time.monotonic()
    context = engine.state / "contexts" / name
    shutil.rmtree(context, ignore_errors=True)
    shutil.copytree(IMAGES_DIR / recipe.directory, context)
    if recipe.inputs is not None:
        recipe.inputs(context, layout)
    tag_args = [arg for tag in tags for arg in ("--tag", tag)]
    output = engine.check("build", "--layers", *tag_args, str(context), timeout=1800)
    steps = len(re.findall(r"^STEP \d+/\d+", output, re.M))
    cached = steps > 1 and len(re.findall(r"^--> Using cache", output, re.M)) == steps - 1
    return Built(name, time.monotonic() - started, cached)


def build_all(engine: Engine, layout: Layout) -> list[Built]:
    """Every stand-in the compose file needs, tagged with the names it uses; returns what each took."""
    wanted = wanted_images()
    tags: dict[str, list[str]] = {}
    for image, stand_in in wanted.items():
        tags.setdefault(stand_in, []).append(qualified(image))
    done = [build_base(engine)]
    print(f"  {'cached' if done[0].cached else 'built '} {'debian':<10} {done[0].seconds:5.1f}s  {BASE_IMAGE} (mmdebstrap)", flush=True)
    order = ["java"] + sorted(tags, key=lambda n: (RECIPES[n].needs != JAVA_IMAGE, n))
    for name in order:
        built = build(engine, name, tags.get(name, [JAVA_IMAGE] if name == "java" else []), layout)
        done.append(built)
        print(f"  {'cached' if built.cached else 'built '} {name:<10} {built.seconds:5.1f}s  {' '.join(tags.get(name, [JAVA_IMAGE]))}",
              flush=True)
    missing = [image for image in wanted if engine.podman("image", "exists", qualified(image)).returncode != 0]
    if missing:
        raise EngineError(f"stand-in images missing after the build: {', '.join(missing)}")
    return done
