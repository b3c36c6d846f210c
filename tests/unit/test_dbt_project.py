"""Checks of the dbt project and its run loop that need no running services."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from smartmeter.config import REPO_ROOT
from tests.helpers.contract import CONTRACT

DBT_PROJECT = REPO_ROOT / "dbt-project"


def dbt_bin() -> str | None:
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else shutil.which("dbt")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> dict:
    dbt = dbt_bin()
    if not dbt:
        pytest.skip("dbt is not installed in this environment")
    target = tmp_path_factory.mktemp("dbt-target")
    env = {**os.environ, "DBT_PROFILES_DIR": str(DBT_PROJECT), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    result = subprocess.run(
        [dbt, "parse", "--target-path", str(target), "--log-path", str(target / "logs")],
        cwd=DBT_PROJECT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    return json.loads((target / "manifest.json").read_text())


def models(manifest: dict) -> dict[str, dict]:
    return {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}


def test_contract_marts_document_the_contract_columns_first(manifest):
    nodes = models(manifest)
    for name, columns in CONTRACT.items():
        assert list(nodes[name]["columns"])[:len(columns)] == columns, name
        assert nodes[name]["schema"] == "marts"
        sql = (DBT_PROJECT / nodes[name]["original_file_path"]).read_text()
        assert all(column in sql for column in columns), name


def test_layers_land_in_their_schemas(manifest):
    for name, node in models(manifest).items():
        folder = node["original_file_path"].split("/")[1]
        assert node["schema"] == folder, (name, node["schema"])
    names = set(models(manifest))
    assert {"stg_telemetry_raw", "stg_telemetry_rejected", "stg_fault_logs", "device_health", "customer_usage_hourly",
            "customer_billing_daily", "customer_billing_monthly", "health_score_evaluation"} <= names


def test_source_is_only_used_in_staging(manifest):
    for name, node in models(manifest).items():
        if node["depends_on"]["nodes"] and any(d.startswith("source.") for d in node["depends_on"]["nodes"]):
            assert node["original_file_path"].startswith("models/staging/"), name


def test_every_model_has_a_description_and_tests(manifest):
    tested = {d for n in manifest["nodes"].values() if n["resource_type"] == "test" for d in n["depends_on"]["nodes"]}
    for name, node in models(manifest).items():
        assert node["description"].strip(), f"{name} has no description"
        assert node["unique_id"] in tested, f"{name} has no data tests"


def test_logic_models_have_unit_tests(manifest):
    unit_tested = {u["model"] for u in manifest.get("unit_tests", {}).values()}
    assert {"stg_telemetry_messages", "stg_telemetry_raw", "stg_fault_log_messages", "device_health",
            "customer_billing_daily", "customer_billing_monthly"} <= unit_tested


def test_schema_suffix_isolates_every_schema(tmp_path):
    dbt = dbt_bin()
    if not dbt:
        pytest.skip("dbt is not installed in this environment")
    env = {**os.environ, "DBT_PROFILES_DIR": str(DBT_PROJECT), "DBT_SCHEMA_SUFFIX": "t1", "TELEMETRY_TOPIC": "telemetry_raw_test"}
    result = subprocess.run([dbt, "parse", "--target-path", str(tmp_path), "--log-path", str(tmp_path / "logs")],
                            cwd=DBT_PROJECT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert {n["schema"] for n in manifest["nodes"].values() if n["resource_type"] in ("model", "seed")} == {
        "staging_t1", "intermediate_t1", "marts_t1"}
    assert {s["identifier"] for s in manifest["sources"].values() if s["source_name"] == "kafka"} == {
        "telemetry_raw_test", "meter_fault_logs"}


def test_maintenance_rejects_bad_arguments(capsys):
    from smartmeter.pipeline import maintenance

    with pytest.raises(SystemExit) as exc:
        maintenance.parse_args(["--retention", "a week"])
    assert exc.value.code == 2
    assert "Trino duration" in capsys.readouterr().err
    args = maintenance.parse_args(["--schema", "marts", "--retention", "2d"])
    assert args.schemas == ["marts"] and args.retention == "2d"
