"""Dashboards in Apache Superset: its virtualenv, its configuration, and the dashboards as code.

The folder dashboards/ holds a Superset v1 bundle as readable YAML (databases/, datasets/, charts/,
dashboards/). `bundle()` turns it into the zip Superset imports, expanding a few shorthands that
keep the files short (all optional; an export from Superset's UI works as it is):
- a dataset names its database by file (`database: trino`), lists `columns` as {name: TYPE or
  {type, verbose_name}} and `metrics` as {name: SQL or {expression, verbose_name, d3format}};
- a chart names its dataset by file (`dataset: device_health_daily`); it gets a time-range
  filter on its dataset's time column, so the dashboard's date filter reaches it;
- a dashboard gives `layout` as rows of {chart: width} (or [width, height]) instead of `position`,
  and `filters` as a short list instead of `metadata.native_filter_configuration`; a filter is
  scoped to the charts whose dataset has its column.
`${VAR}` in a database file is filled from the environment (hosts, ports and users differ between
native mode and compose). With TRINO_AUTH=password a Trino database logs in with a password over
HTTPS, trusting TRINO_CERT: the bundle holds Superset's password placeholder, and the import gives
it TRINO_PASSWORD (Superset stores it encrypted with SUPERSET_SECRET_KEY).

This module runs in two interpreters. The project's manages the service (install, health,
commands); Superset's own virtualenv runs `python -m smartmeter.dashboards init|import`, which
need Superset's packages, natively and in the compose init container alike.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import sys
import urllib.request
import uuid
import zipfile
from pathlib import Path
from typing import Any

import yaml

from smartmeter.config import REPO_ROOT, Settings
from smartmeter.errors import LakehouseError
from smartmeter.native.layout import Layout
from smartmeter.trino_sql import CA_BUNDLE_VARIABLES

DASHBOARDS_DIR = REPO_ROOT / "dashboards"
SUPERSET_CONFIG = REPO_ROOT / "superset-config" / "superset_config.py"
REQUIREMENTS = REPO_ROOT / "requirements-superset.txt"
BUNDLE_ROOT = "lakehouse_dashboards"
VERSION = "1.0.0"
TEMPORAL_TYPES = ("DATE", "TIMESTAMP")
DEFAULT_HEIGHT = 50
# Gunicorn threads per worker: a dashboard asks for all its charts at once.
THREADS = 4
# Superset's placeholder for a password that the import supplies (never written in a bundle).
PASSWORD_MASK = "X" * 10


# --------------------------------------------------------------------------- the bundle

def _load(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise LakehouseError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise LakehouseError(f"{path}: expected a mapping")
    return data


def _files(source: Path, kind: str) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Every YAML file of one kind, by file stem (unique across subfolders)."""
    found: dict[str, tuple[Path, dict[str, Any]]] = {}
    for path in sorted((source / kind).rglob("*.yaml")):
        if path.stem in found:
            raise LakehouseError(f"{path}: another {kind[:-1]} file is also named {path.stem}.yaml")
        found[path.stem] = (path, _load(path))
    return found


def _substitute(text: str, env: dict[str, str], path: Path) -> str:
    def one(match: re.Match) -> str:
        if not env.get(match[1]):
            raise LakehouseError(f"{path}: environment variable {match[1]} is not set")
        return env[match[1]]

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", one, text)


def _uuid(path: Path, config: dict[str, Any]) -> str:
    try:
        return str(uuid.UUID(str(config["uuid"])))
    except (KeyError, ValueError) as exc:
        raise LakehouseError(f"{path}: needs a `uuid` (python3 -c 'import uuid; print(uuid.uuid4())')") from exc


def _trino_auth(path: Path, config: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """A Trino database under TRINO_AUTH=password: the URI's user gets the password placeholder,
    and the driver speaks HTTPS trusting TRINO_CERT (Trino's self-signed certificate)."""
    uri = str(config.get("sqlalchemy_uri", ""))
    if env.get("TRINO_AUTH", "none") != "password" or not uri.startswith("trino://"):
        return config
    user, at, rest = uri.removeprefix("trino://").partition("@")
    if not at or ":" in user:
        raise LakehouseError(f"{path}: the Trino URI must read trino://USER@HOST:PORT/CATALOG (no password in the file)")
    if not env.get("TRINO_CERT"):
        raise LakehouseError(f"{path}: TRINO_AUTH=password needs TRINO_CERT, the certificate Trino's HTTPS presents")
    config["sqlalchemy_uri"] = f"trino://{user}:{PASSWORD_MASK}@{rest}"
    extra = config.setdefault("extra", {})
    engine_params = extra["engine_params"] = dict(extra.get("engine_params") or {})
    engine_params["connect_args"] = {**(engine_params.get("connect_args") or {}), "http_scheme": "https",
                                     "verify": env["TRINO_CERT"]}
    return config


def import_passwords(contents: dict[str, str], env: dict[str, str]) -> dict[str, str]:
    """The passwords of the bundle's databases that hold the placeholder: the analyst's TRINO_PASSWORD."""
    files = [f for f, text in contents.items() if f.startswith("databases/") and f":{PASSWORD_MASK}@" in text]
    if files and not env.get("TRINO_PASSWORD"):
        raise LakehouseError("TRINO_AUTH=password: TRINO_PASSWORD (the analyst's Trino password) is not set")
    return {f: env["TRINO_PASSWORD"] for f in files}


def _resolve(path: Path, config: dict[str, Any], key: str, targets: dict[str, tuple[Path, dict[str, Any]]]) -> None:
    """`key: file stem` -> `key_uuid: that file's uuid`."""
    if key in config:
        name = config.pop(key)
        if name not in targets:
            raise LakehouseError(f"{path}: {key} {name!r} has no file {key}s/{name}.yaml")
        config[f"{key}_uuid"] = _uuid(*targets[name])


def _column(name: str, spec: str | dict[str, Any]) -> dict[str, Any]:
    """`name: TYPE` or `name: {type: TYPE, verbose_name: ...}`; DATE and TIMESTAMP columns are temporal."""
    spec = {"type": spec} if isinstance(spec, str) else dict(spec)
    return {"column_name": name, "is_dttm": str(spec["type"]).upper().startswith(TEMPORAL_TYPES), "groupby": True,
            "filterable": True, **spec}


def _dataset(path: Path, config: dict[str, Any], databases) -> dict[str, Any]:
    config = dict(config)
    _resolve(path, config, "database", databases)
    columns = config.get("columns") or []
    if isinstance(columns, dict):
        config["columns"] = [_column(name, spec) for name, spec in columns.items()]
    metrics = config.get("metrics") or []
    if isinstance(metrics, dict):
        config["metrics"] = [
            {"metric_name": name, **({"expression": spec} if isinstance(spec, str) else spec)}
            for name, spec in metrics.items()
        ]
    config.setdefault("version", VERSION)
    config["uuid"] = _uuid(path, config)
    return config


def _time_filter(chart: dict[str, Any], dataset: dict[str, Any]) -> None:
    """A TEMPORAL_RANGE filter on the dataset's time column: what a dashboard's date filter sets."""
    column = dataset.get("main_dttm_col")
    filters = chart["params"].setdefault("adhoc_filters", [])
    if column and not any(f.get("operator") == "TEMPORAL_RANGE" for f in filters):
        filters.append({"clause": "WHERE", "comparator": "No filter", "expressionType": "SIMPLE",
                        "operator": "TEMPORAL_RANGE", "subject": column})


def _chart(path: Path, config: dict[str, Any], datasets: dict[str, tuple[Path, dict[str, Any]]],
           expanded: dict[str, dict[str, Any]]) -> dict[str, Any]:
    config = dict(config)
    name = config.get("dataset")
    _resolve(path, config, "dataset", datasets)
    params = dict(config.get("params") or {})
    params["viz_type"] = config.get("viz_type")
    config["params"] = params
    if name is not None:
        _time_filter(config, expanded[name])
    config.setdefault("version", VERSION)
    config["uuid"] = _uuid(path, config)
    return config


def _position(path: Path, title: str, layout: list, charts: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, int]]:
    """Superset's position tree from rows of {chart: width | [width, height]}; chart ids are
    placeholders that the import maps to the real ones."""
    position: dict[str, Any] = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
        "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
        "HEADER_ID": {"type": "HEADER", "id": "HEADER_ID", "meta": {"text": title}},
    }
    ids: dict[str, int] = {}
    for row_number, row in enumerate(layout, 1):
        if not isinstance(row, dict):
            raise LakehouseError(f"{path}: layout row {row_number} must be a mapping of chart: width")
        row_id = f"ROW-{row_number}"
        position["GRID_ID"]["children"].append(row_id)
        position[row_id] = {"type": "ROW", "id": row_id, "children": [], "parents": ["ROOT_ID", "GRID_ID"],
                            "meta": {"background": "BACKGROUND_TRANSPARENT"}}
        for name, size in row.items():
            if name not in charts:
                raise LakehouseError(f"{path}: layout names chart {name!r}, which has no file charts/**/{name}.yaml")
            width, height = (size, DEFAULT_HEIGHT) if isinstance(size, int) else size
            ids[name] = len(ids) + 1
            chart_id = f"CHART-{name}"
            position[row_id]["children"].append(chart_id)
            position[chart_id] = {
                "type": "CHART", "id": chart_id, "children": [], "parents": ["ROOT_ID", "GRID_ID", row_id],
                "meta": {"chartId": ids[name], "uuid": charts[name]["uuid"], "sliceName": charts[name]["slice_name"],
                         "width": width, "height": height},
            }
        if sum(w if isinstance(w, int) else w[0] for w in row.values()) > 12:
            raise LakehouseError(f"{path}: layout row {row_number} is wider than 12 columns")
    return position, ids


def _native_filters(path: Path, filters: list, ids: dict[str, int], charts: dict[str, dict[str, Any]],
                    datasets: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    by_uuid = {d["uuid"]: d for d in datasets.values()}

    def has_column(chart: str, column: str | None) -> bool:
        dataset = by_uuid.get(charts[chart].get("dataset_uuid"), {})
        if column is None:
            return bool(dataset.get("main_dttm_col"))
        return any(c["column_name"] == column for c in dataset.get("columns", []))

    native = []
    for spec in filters:
        name, column = spec["name"], spec.get("column")
        target: dict[str, Any] = {}
        if column is not None:
            dataset = spec.get("dataset")
            if dataset not in datasets:
                raise LakehouseError(f"{path}: filter {name!r} needs `dataset:` naming a file in datasets/")
            target = {"column": {"name": column}, "datasetUuid": datasets[dataset]["uuid"]}
        native.append({
            "id": "NATIVE_FILTER-" + re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower(),
            "name": name,
            "type": "NATIVE_FILTER",
            "filterType": "filter_time" if column is None else "filter_select",
            "targets": [target],
            "controlValues": {"enableEmptyFilter": False} if column is None else {
                "enableEmptyFilter": False, "multiSelect": True, "defaultToFirstItem": False,
                "inverseSelection": False, "searchAllOptions": bool(spec.get("search", False)),
            },
            "defaultDataMask": {"extraFormData": {}, "filterState": {}, "ownState": {}},
            "cascadeParentIds": [],
            "scope": {"rootPath": ["ROOT_ID"], "excluded": sorted(i for c, i in ids.items() if not has_column(c, column))},
            "description": spec.get("description", ""),
        })
    return native


def _dashboard(path: Path, config: dict[str, Any], charts: dict[str, dict[str, Any]],
               datasets: dict[str, dict[str, Any]]) -> dict[str, Any]:
    config = dict(config)
    ids: dict[str, int] = {}
    if "layout" in config:
        config["position"], ids = _position(path, config["dashboard_title"], config.pop("layout"), charts)
    metadata = dict(config.get("metadata") or {})
    if "filters" in config:
        metadata["native_filter_configuration"] = _native_filters(path, config.pop("filters"), ids, charts, datasets)
    metadata.setdefault("cross_filters_enabled", False)
    config["metadata"] = metadata
    config.setdefault("version", VERSION)
    config["uuid"] = _uuid(path, config)
    return config


def bundle_contents(env: dict[str, str], source: Path = DASHBOARDS_DIR) -> dict[str, str]:
    """The bundle as {path in the zip: YAML}, shorthands expanded and references checked."""
    databases = _files(source, "databases")
    for name, (path, _config) in databases.items():
        databases[name] = (path, _trino_auth(path, yaml.safe_load(_substitute(path.read_text(), env, path)), env))
    datasets = _files(source, "datasets")
    charts = _files(source, "charts")
    dashboards = _files(source, "dashboards")
    if not dashboards:
        raise LakehouseError(f"{source}/dashboards holds no dashboard")
    out: dict[str, dict[str, Any]] = {}
    for name, (path, config) in databases.items():
        config.setdefault("version", VERSION)
        config["uuid"] = _uuid(path, config)
        out[f"databases/{name}.yaml"] = config
    expanded = {name: _dataset(path, config, databases) for name, (path, config) in datasets.items()}
    out.update({f"datasets/{name}.yaml": config for name, config in expanded.items()})
    expanded_charts = {name: _chart(path, config, datasets, expanded) for name, (path, config) in charts.items()}
    out.update({f"charts/{name}.yaml": config for name, config in expanded_charts.items()})
    for name, (path, config) in dashboards.items():
        out[f"dashboards/{name}.yaml"] = _dashboard(path, config, expanded_charts, expanded)
    seen: dict[str, str] = {}
    for file, config in out.items():
        if config["uuid"] in seen:
            raise LakehouseError(f"{file} and {seen[config['uuid']]} have the same uuid")
        seen[config["uuid"]] = file
    contents = {"metadata.yaml": yaml.safe_dump({"version": VERSION, "type": "assets", "timestamp": "1970-01-01T00:00:00+00:00"})}
    contents.update({file: yaml.safe_dump(config, sort_keys=False, allow_unicode=True) for file, config in out.items()})
    return contents


def write_bundle(target: Path, env: dict[str, str], source: Path = DASHBOARDS_DIR) -> Path:
    """The zip Superset imports (also through its UI: Dashboards, Import)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file, text in sorted(bundle_contents(env, source).items()):
            archive.writestr(f"{BUNDLE_ROOT}/{file}", text)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(buffer.getvalue())
    return target


# --------------------------------------------------------------------------- the service (project interpreter)

def install(layout: Layout) -> Path:
    """Superset's own virtualenv with the pinned lock."""
    venv = layout.superset_venv
    stamp = venv / f".requirements-{hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]}"
    if stamp.exists():
        return venv
    print(f"  installing Apache Superset into {venv} (first run only, about 2 minutes) ...", flush=True)
    steps = ([sys.executable, "-m", "venv", "--clear", str(venv)],
             [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "-r", str(REQUIREMENTS)])
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True)
        if result.returncode != 0:
            raise LakehouseError(f"installing Superset failed (`{' '.join(step[:3])} ...`):\n{result.stderr[-3000:]}")
    stamp.touch()
    return venv


def environment(settings: Settings, layout: Layout, base: dict[str, str]) -> dict[str, str]:
    """What every Superset process reads (superset-config/superset_config.py, the database file):
    its own secrets and, of the stack's, only the analyst's Trino password (TRINO_AUTH=password)."""
    from smartmeter.security import SECRETS

    role = settings.postgres_roles["superset"]
    required = {"SUPERSET_SECRET_KEY": settings.superset_secret_key, "SUPERSET_ADMIN_PASSWORD": settings.superset_admin_password,
                role.password_env: role.password}
    trino = {"TRINO_AUTH": settings.trino_auth}
    if settings.trino_auth == "password":
        required["TRINO_PASSWORD"] = settings.trino_password
        trino["TRINO_CERT"] = str(settings.trino_certificate)
    missing = [name for name, value in required.items() if not value]
    if missing:
        raise LakehouseError(f"set {', '.join(missing)} in .env (./lakehouse up writes every secret .env lacks)")
    return {
        # The stack's other secrets (PostgreSQL's admin and other roles, S3, Trino's dbt and admin
        # users, the internal secret) stay out of Superset's processes, and so do the CA bundle
        # variables, which would replace TRINO_CERT.
        **{name: value for name, value in base.items() if name not in (*SECRETS, *CA_BUNDLE_VARIABLES)},
        **required,
        **trino,
        "SUPERSET_CONFIG_PATH": str(SUPERSET_CONFIG),
        "SUPERSET_HOME": str(layout.superset_home),
        "FLASK_APP": "superset.app:create_app()",
        "PYTHONPATH": str(REPO_ROOT),
        "PATH": f"{layout.superset_venv / 'bin'}{os.pathsep}{base.get('PATH', os.defpath)}",
        "SUPERSET_ADMIN_USER": settings.superset_admin_user,
        "SUPERSET_DB": settings.superset_db,
        "POSTGRES_SUPERSET_USER": role.user,
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": str(settings.postgres_port),
        "TRINO_HOST": "127.0.0.1",
        "TRINO_PORT": str(settings.trino_port),
        # The analyst (trino-config/etc/rules.json): reads the marts, staging and the pipeline's record.
        "TRINO_USER": settings.trino_user,
        "PYTHONUNBUFFERED": "1",
    }


def initialise(layout: Layout, env: dict[str, str], log: Path) -> None:
    """Migrate the metadata database, make the admin, then import the dashboards (idempotent).
    Its output goes to the service's log; a failure names it."""
    layout.superset_home.mkdir(parents=True, exist_ok=True)
    print("  superset: migrations, admin and the dashboards import (one to three minutes the first time)", flush=True)
    command = [str(layout.superset_venv / "bin" / "python"), "-m", "smartmeter.dashboards", "init"]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        result = subprocess.run(command, env=env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise LakehouseError(f"Superset's initialisation failed (full log: {log}):\n{tail}")


def import_dashboards(layout: Layout, env: dict[str, str]) -> None:
    """Re-import dashboards/ into a running Superset (after editing the YAML)."""
    command = [str(layout.superset_venv / "bin" / "python"), "-m", "smartmeter.dashboards", "import"]
    if subprocess.run(command, env=env, cwd=REPO_ROOT).returncode != 0:
        raise LakehouseError("importing the dashboards failed (see above)")


def serve_command(settings: Settings, layout: Layout) -> list[str]:
    return [
        str(layout.superset_venv / "bin" / "gunicorn"),
        "--bind", f"{settings.bind_address}:{settings.superset_port}",
        "--workers", str(settings.superset_workers), "--worker-class", "gthread", "--threads", str(THREADS),
        "--timeout", "120", "--limit-request-line", "0", "--limit-request-field_size", "0",
        "superset.app:create_app()",
    ]


def healthy(settings: Settings) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{settings.superset_port}/health", timeout=3) as response:
            return response.status == 200
    except OSError:
        return False


# --------------------------------------------------------------------------- inside Superset's interpreter

def _run(*command: str) -> None:
    print(f"[dashboards] {' '.join(command)}", flush=True)
    if subprocess.run(command).returncode != 0:
        raise LakehouseError(f"`{' '.join(command)}` failed")


def _ensure_admin(security_manager) -> Any:
    """The admin from SUPERSET_ADMIN_USER / SUPERSET_ADMIN_PASSWORD; the password follows .env."""
    from werkzeug.security import check_password_hash, generate_password_hash

    name, password = os.environ.get("SUPERSET_ADMIN_USER", "admin"), os.environ["SUPERSET_ADMIN_PASSWORD"]
    user = security_manager.find_user(username=name)
    if user is None:
        user = security_manager.add_user(name, "Lakehouse", "Admin", f"{name}@localhost", security_manager.find_role("Admin"),
                                         password=password)
        if not user:
            raise LakehouseError(f"could not create the Superset admin {name!r}")
        print(f"[dashboards] created admin {name!r}", flush=True)
    elif not check_password_hash(user.password, password):
        user.password = generate_password_hash(password)
        security_manager.update_user(user)
        print(f"[dashboards] admin {name!r}: password set from SUPERSET_ADMIN_PASSWORD", flush=True)
    return user


def _import(user) -> None:
    from superset.commands.importers.v1.assets import ImportAssetsCommand
    from superset.commands.importers.v1.utils import get_contents_from_bundle
    from superset.utils.core import override_user

    target = write_bundle(Path(os.environ.get("SUPERSET_HOME", "/tmp")) / f"{BUNDLE_ROOT}.zip", dict(os.environ))
    with zipfile.ZipFile(target) as archive:
        contents = get_contents_from_bundle(archive)
    passwords = import_passwords(contents, dict(os.environ))
    with override_user(user):
        ImportAssetsCommand(contents, passwords=passwords).run()
    names = sorted(f.removeprefix("dashboards/").removesuffix(".yaml") for f in contents if f.startswith("dashboards/"))
    print(f"[dashboards] imported {target}: {', '.join(names)}", flush=True)


def _migrated() -> bool:
    """Superset's metadata database is at the installed version's last migration (a restart then
    skips `db upgrade` and `init`, half a minute on two cores)."""
    import superset
    from alembic.script import ScriptDirectory
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError
    from superset.extensions import db

    head = ScriptDirectory(str(Path(superset.__file__).parent / "migrations")).get_current_head()
    try:
        return db.session.execute(text("select version_num from alembic_version")).scalar() == head
    except SQLAlchemyError:
        db.session.rollback()
        return False


def _superset(command: str) -> None:
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        if command == "init" and not _migrated():
            _run("superset", "db", "upgrade")
            _run("superset", "init")
        from superset import security_manager

        user = _ensure_admin(security_manager)
        _import(user)


def main(argv: list[str]) -> int:
    """`init`: migrate, roles, admin, import (what a first start and the compose init container run);
    `import`: the dashboards only; `bundle FILE`: write the zip (no Superset needed)."""
    try:
        if argv[:1] == ["bundle"] and len(argv) == 2:
            print(write_bundle(Path(argv[1]), dict(os.environ)))
        elif argv in (["init"], ["import"]):
            _superset(argv[0])
        else:
            print("usage: python -m smartmeter.dashboards init | import | bundle FILE.zip", file=sys.stderr)
            return 2
    except LakehouseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
