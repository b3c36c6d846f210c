"""The dashboards as code (dashboards/, smartmeter/dashboards.py) without Superset: the bundle
builds, every reference resolves, and every chart asks only for what its dataset has."""

from __future__ import annotations

import json
import re
import shutil
import textwrap
import zipfile

import pytest
import yaml

from smartmeter import dashboards
from smartmeter.config import REPO_ROOT, TRINO_ADMIN_USER, TRINO_DBT_USER
from smartmeter.errors import LakehouseError

ENV = {"TRINO_USER": "analyst", "TRINO_HOST": "trino.example", "TRINO_PORT": "8080"}
PASSWORD_ENV = {**ENV, "TRINO_AUTH": "password", "TRINO_CERT": "/state/conf/trino/trino.pem"}
FILTERS = {"Date range", "Customer", "Segment", "Region"}


@pytest.fixture(scope="module")
def bundle() -> dict[str, dict]:
    return {file: yaml.safe_load(text) for file, text in dashboards.bundle_contents(ENV).items()}


def _of(bundle, kind: str) -> dict[str, dict]:
    return {file: config for file, config in bundle.items() if file.startswith(f"{kind}/")}


def test_bundle_holds_three_dashboards_and_an_assets_metadata_file(bundle):
    assert bundle["metadata.yaml"]["type"] == "assets" and bundle["metadata.yaml"]["version"] == "1.0.0"
    titles = {c["dashboard_title"] for c in _of(bundle, "dashboards").values()}
    assert titles == {"Customer usage", "Meter health", "Pipeline"}
    (database,) = _of(bundle, "databases").values()
    assert database["sqlalchemy_uri"] == "trino://analyst@trino.example:8080/iceberg"
    assert "connect_args" not in database["extra"]["engine_params"], "plain HTTP without TRINO_AUTH=password"
    assert not database["allow_dml"] and not database["allow_ctas"], "dashboards read only"


def test_every_reference_resolves_to_a_file_of_the_bundle(bundle):
    uuids = {config["uuid"] for config in bundle.values() if "uuid" in config}
    for file, config in {**_of(bundle, "datasets"), **_of(bundle, "charts")}.items():
        for key in ("database_uuid", "dataset_uuid"):
            if key in config:
                assert config[key] in uuids, f"{file}: {key} {config[key]} is not in the bundle"
    for file, config in _of(bundle, "dashboards").items():
        charts = [c for c in config["position"].values() if isinstance(c, dict) and c["type"] == "CHART"]
        assert charts, file
        for chart in charts:
            assert chart["meta"]["uuid"] in uuids, f"{file}: chart {chart['meta']['sliceName']}"
        for native in config["metadata"]["native_filter_configuration"]:
            for target in native["targets"]:
                assert target.get("datasetUuid", next(iter(uuids))) in uuids


def _columns_used(params: dict) -> set[str]:
    used = set(params.get("groupby") or []) | set(params.get("all_columns") or [])
    used |= {params[key] for key in ("x_axis",) if params.get(key)}
    used |= {f["subject"] for f in params.get("adhoc_filters") or [] if f.get("expressionType") == "SIMPLE"}
    return used


def _metrics_used(params: dict) -> set[str]:
    """Saved metrics by name (ad-hoc ones, written as mappings, carry their own SQL)."""
    named = list(params.get("metrics") or []) + [params.get(key) for key in ("metric", "timeseries_limit_metric", "x_axis_sort")]
    return {metric for metric in named if isinstance(metric, str)}


def test_every_chart_asks_only_for_columns_and_metrics_its_dataset_has(bundle):
    datasets = {config["uuid"]: config for config in _of(bundle, "datasets").values()}
    for file, chart in _of(bundle, "charts").items():
        dataset = datasets[chart["dataset_uuid"]]
        columns = {c["column_name"] for c in dataset["columns"]}
        metrics = {m["metric_name"] for m in dataset.get("metrics", [])}
        assert _columns_used(chart["params"]) <= columns, f"{file}: {_columns_used(chart['params']) - columns}"
        assert _metrics_used(chart["params"]) <= metrics, f"{file}: {_metrics_used(chart['params']) - metrics}"
        if dataset.get("main_dttm_col"):
            assert dataset["main_dttm_col"] in columns
            assert any(f.get("operator") == "TEMPORAL_RANGE" for f in chart["params"]["adhoc_filters"]), \
                f"{file}: the dashboard's date filter needs a time-range filter on the chart"


def test_datasets_aggregate_in_sql_or_read_marts_never_raw_staging(bundle):
    """Chart SQL stays fast at 100,000 meters: no dataset scans the raw readings table."""
    for file, dataset in _of(bundle, "datasets").items():
        sql = dataset["sql"].lower()
        assert "stg_telemetry_raw " not in sql and "stg_telemetry_raw\n" not in sql, f"{file} scans raw readings"


def test_filters_reach_exactly_the_charts_whose_dataset_has_the_column(bundle):
    datasets = {config["uuid"]: config for config in _of(bundle, "datasets").values()}
    charts = {config["uuid"]: config for config in _of(bundle, "charts").values()}
    for file, config in _of(bundle, "dashboards").items():
        ids = {c["meta"]["chartId"]: charts[c["meta"]["uuid"]] for c in config["position"].values()
               if isinstance(c, dict) and c["type"] == "CHART"}
        natives = config["metadata"]["native_filter_configuration"]
        names = {n["name"] for n in natives}
        assert names == FILTERS or (file == "dashboards/pipeline.yaml" and names == {"Date range"}), f"{file}: {names}"
        for native in natives:
            column = native["targets"][0].get("column", {}).get("name")
            for chart_id, chart in ids.items():
                dataset = datasets[chart["dataset_uuid"]]
                has = (column in {c["column_name"] for c in dataset["columns"]}) if column else bool(dataset.get("main_dttm_col"))
                assert (chart_id in native["scope"]["excluded"]) != has, f"{file}: {native['name']} and {chart['slice_name']}"


def test_layout_rows_fit_the_twelve_column_grid(bundle):
    for file, config in _of(bundle, "dashboards").items():
        for row in (c for c in config["position"].values() if isinstance(c, dict) and c["type"] == "ROW"):
            width = sum(config["position"][child]["meta"]["width"] for child in row["children"])
            assert width <= 12, f"{file}: {row['id']} is {width} columns wide"


def test_write_bundle_zips_under_one_root_folder(tmp_path):
    target = dashboards.write_bundle(tmp_path / "b.zip", ENV)
    with zipfile.ZipFile(target) as archive:
        names = archive.namelist()
    assert names and all(n.startswith(f"{dashboards.BUNDLE_ROOT}/") for n in names)
    assert f"{dashboards.BUNDLE_ROOT}/metadata.yaml" in names


@pytest.fixture
def folder(tmp_path):
    copy = tmp_path / "dashboards"
    shutil.copytree(dashboards.DASHBOARDS_DIR, copy)
    return copy


def test_a_missing_variable_names_the_database_file(folder):
    with pytest.raises(LakehouseError, match=r"trino\.yaml: environment variable TRINO_PORT is not set"):
        dashboards.bundle_contents({k: v for k, v in ENV.items() if k != "TRINO_PORT"}, folder)


def test_an_unknown_dataset_names_the_chart_file(folder):
    chart = folder / "charts" / "pipeline" / "pipeline_lag.yaml"
    chart.write_text(chart.read_text().replace("dataset: pipeline_runs", "dataset: no_such_dataset"))
    with pytest.raises(LakehouseError, match=r"pipeline_lag\.yaml: dataset 'no_such_dataset' has no file"):
        dashboards.bundle_contents(ENV, folder)


def test_a_layout_naming_an_unknown_chart_is_refused(folder):
    board = folder / "dashboards" / "pipeline.yaml"
    board.write_text(board.read_text().replace("pipeline_gaps_table:", "no_such_chart:"))
    with pytest.raises(LakehouseError, match=r"pipeline\.yaml: layout names chart 'no_such_chart'"):
        dashboards.bundle_contents(ENV, folder)


def test_a_file_without_uuid_is_refused(folder):
    chart = folder / "charts" / "pipeline" / "pipeline_lag.yaml"
    chart.write_text("\n".join(line for line in chart.read_text().splitlines() if not line.startswith("uuid:")))
    with pytest.raises(LakehouseError, match=r"pipeline_lag\.yaml: needs a `uuid`"):
        dashboards.bundle_contents(ENV, folder)


def test_the_readmes_example_chart_bundles_onto_its_dashboard(folder):
    """README, "To add a chart": its YAML, placed as it says, gives a chart of the dashboard."""
    readme = (dashboards.REPO_ROOT / "README.md").read_text()
    section = readme.split("To add a chart:", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    config = yaml.safe_load(textwrap.dedent(example))
    (folder / "charts" / "meter_health" / "health_score_by_segment.yaml").write_text(yaml.safe_dump(config))
    (row,) = yaml.safe_load(section.split("add the row\n", 1)[1].split("`", 2)[1])
    board = folder / "dashboards" / "meter_health.yaml"
    layout = yaml.safe_load(board.read_text())
    layout["layout"].append(row)
    board.write_text(yaml.safe_dump(layout))
    bundle = {file: yaml.safe_load(text) for file, text in dashboards.bundle_contents(ENV, folder).items()}
    chart = bundle["charts/health_score_by_segment.yaml"]
    dataset = next(d for d in _of(bundle, "datasets").values() if d["uuid"] == chart["dataset_uuid"])
    assert _columns_used(chart["params"]) <= {c["column_name"] for c in dataset["columns"]}
    names = {c["meta"]["sliceName"] for c in bundle["dashboards/meter_health.yaml"]["position"].values()
             if isinstance(c, dict) and c["type"] == "CHART"}
    assert "Mean health score by segment" in names


# --------------------------------------------------------------------------- Trino: the analyst, its rules and its password

def test_with_password_authentication_the_connection_uses_https_and_the_analysts_password():
    contents = dashboards.bundle_contents(PASSWORD_ENV)
    database = yaml.safe_load(contents["databases/trino.yaml"])
    assert database["sqlalchemy_uri"] == f"trino://analyst:{dashboards.PASSWORD_MASK}@trino.example:8080/iceberg"
    assert database["extra"]["engine_params"]["connect_args"] == {"http_scheme": "https", "verify": PASSWORD_ENV["TRINO_CERT"]}
    assert dashboards.import_passwords(contents, {**PASSWORD_ENV, "TRINO_PASSWORD": "an4lyst"}) == {"databases/trino.yaml": "an4lyst"}
    with pytest.raises(LakehouseError, match="TRINO_PASSWORD"):
        dashboards.import_passwords(contents, PASSWORD_ENV)
    assert dashboards.import_passwords(dashboards.bundle_contents(ENV), {**ENV, "TRINO_PASSWORD": "pa"}) == {}


def test_with_password_authentication_the_certificate_is_required():
    with pytest.raises(LakehouseError, match="TRINO_CERT"):
        dashboards.bundle_contents({k: v for k, v in PASSWORD_ENV.items() if k != "TRINO_CERT"})


def _first(rules: list[dict], user: str, **names: str) -> dict | None:
    """Trino's file-based access control: the first rule whose user and names match."""
    for rule in rules:
        if re.fullmatch(rule.get("user", ".*"), user) and all(re.fullmatch(rule.get(k, ".*"), v) for k, v in names.items()):
            return rule
    return None


def test_the_analyst_may_read_every_table_the_datasets_read(bundle):
    """rules.json lets the analyst (Superset's Trino user) SELECT from every table a dataset names,
    the pipeline's record in PostgreSQL included, and from no other PostgreSQL table."""
    rules = json.loads((REPO_ROOT / "trino-config" / "etc" / "rules.json").read_text())
    analyst = ENV["TRINO_USER"]
    assert analyst not in (TRINO_DBT_USER, TRINO_ADMIN_USER)
    read = set()
    for config in _of(bundle, "datasets").values():
        for catalog, schema, table in re.findall(r'\b(iceberg|postgresql|kafka|system)\.("?[\w$]+"?)\.("?[\w$]+"?)', config["sql"]):
            read.add((catalog, schema.strip('"'), table.strip('"')))
    assert ("postgresql", "pipeline", "runs") in read and ("iceberg", "marts", "device_health") in read
    for catalog, schema, table in sorted(read):
        assert _first(rules["catalogs"], analyst, catalog=catalog)["allow"] in ("read-only", "all"), catalog
        rule = _first(rules["tables"], analyst, catalog=catalog, schema=schema, table=table)
        assert rule and "SELECT" in rule["privileges"], f"the analyst may not read {catalog}.{schema}.{table}"
    # Least privilege: of PostgreSQL, the analyst reads the pipeline's record only, the state as a row filter.
    for schema, table in (("public", "customers"), ("pipeline", "run_offsets"), ("pipeline", "locks")):
        assert _first(rules["tables"], analyst, catalog="postgresql", schema=schema, table=table) is None, table
    state = _first(rules["tables"], analyst, catalog="postgresql", schema="pipeline", table="state")
    assert state["filter"] == "state_key = 'loop_heartbeat'"
    assert _first(rules["catalogs"], analyst, catalog="kafka")["allow"] == "none"
