"""Where native state lives under $LAKEHOUSE_HOME."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from smartmeter.config import REPO_ROOT


@dataclass(frozen=True)
class Layout:
    home: Path

    @property
    def cache(self) -> Path:
        """Downloads and unpacked distributions; kept across `initial-setup.sh`."""
        return self.home / "cache"

    @property
    def maven_repo(self) -> Path:
        return self.cache / "m2"

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def superset_venv(self) -> Path:
        """Superset's own virtualenv; kept across setups, like the downloads."""
        return self.home / "superset-venv"

    @property
    def superset_home(self) -> Path:
        """Superset's state (cache, the imported bundle); wiped with the data its database lives beside."""
        return self.data / "superset"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def run(self) -> Path:
        return self.home / "run"

    @property
    def conf(self) -> Path:
        """Config files rendered from the repository's templates."""
        return self.home / "conf"

    @property
    def supervisor_conf(self) -> Path:
        return self.conf / "supervisord.conf"

    @property
    def supervisor_socket(self) -> Path:
        return self.run / "supervisor.sock"

    @property
    def restarts_file(self) -> Path:
        """Unexpected exits per service since supervisord started (smartmeter/native/restarts.py)."""
        return self.run / "restarts.json"

    def wipeable(self) -> list[Path]:
        """Everything a fresh setup removes: data, logs, pid files and rendered configs."""
        return [self.data, self.logs, self.run, self.conf]

    def log_file(self, service: str) -> Path:
        return self.logs / f"{service}.log"



TRINO_ETC = REPO_ROOT / "trino-config" / "etc"
KAFKA_CONFIG = REPO_ROOT / "kafka-config"
OBJECTSTORE_CONFIG = REPO_ROOT / "objectstore"
POSTGRES_INIT = REPO_ROOT / "postgres-init"
DBT_PROJECT = REPO_ROOT / "dbt-project"
