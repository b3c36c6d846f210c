"""Checks of the dbt project and its run loop that need no running services."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smartmeter.config import REPO_ROOT
from tests.helpers.contract import CONTRACT

DBT_PROJECT = REPO_ROOT / "dbt-project"
ENTRYPOINT = DBT_PROJECT / "entrypoint.sh"


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
            "customer_billing_daily"} <= unit_tested


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


# -- the run loop ------------------------------------------------------------------------------


def fake_dbt(tmp_path: Path, fail_first: bool) -> Path:
    """A stand-in for dbt: fails on its first call if asked, writes run_results.json."""
    script = tmp_path / "dbt"
    script.write_text(f"""#!{sys.executable}
import json, os, pathlib, sys
state = pathlib.Path({str(tmp_path / 'calls')!r})
calls = int(state.read_text()) + 1 if state.exists() else 1
state.write_text(str(calls))
target = pathlib.Path(os.environ["DBT_TARGET_PATH"])
target.mkdir(parents=True, exist_ok=True)
results = [{{"unique_id": "model.smartmeter.stg_telemetry_messages", "status": "success",
             "adapter_response": {{"rows_affected": 120}}}},
           {{"unique_id": "model.smartmeter.stg_telemetry_rejected", "status": "success",
             "adapter_response": {{"rows_affected": 3}}}}]
(target / "run_results.json").write_text(json.dumps({{"results": results}}))
print("fake dbt", sys.argv[1:], flush=True)
sys.exit(1 if {fail_first!r} and calls == 1 else 0)
""")
    script.chmod(0o755)
    return script


def run_loop(tmp_path: Path, env_extra: dict[str, str], seconds: float) -> str:
    env = {**os.environ, "DBT_BIN": str(fake_dbt(tmp_path, fail_first=True)), "DBT_PYTHON": sys.executable,
           "DBT_TARGET_PATH": str(tmp_path / "target"), "DBT_ORPHAN_WAIT_S": "0", "TRINO_PORT": "1", **env_extra}
    process = subprocess.Popen(["bash", str(ENTRYPOINT)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    time.sleep(seconds)
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0, out
    return out


def test_loop_survives_a_failed_run_and_logs_rows(tmp_path):
    out = run_loop(tmp_path, {"DBT_RUN_INTERVAL": "1"}, seconds=6)
    assert "run #1 FAILED (exit 1): rows_in=120 rejected=3" in out
    assert "run #2 ok: rows_in=120 rejected=3" in out
    assert "duration=" in out
    assert "build --exclude-resource-type unit_test" in out


def test_loop_idles_when_auto_run_is_off(tmp_path):
    out = run_loop(tmp_path, {"DBT_AUTO_RUN": "false"}, seconds=2)
    assert "idle" in out
    assert not (tmp_path / "calls").exists()


def test_loop_rejects_a_bad_interval(tmp_path):
    env = {**os.environ, "DBT_RUN_INTERVAL": "soon", "DBT_BIN": str(fake_dbt(tmp_path, fail_first=False))}
    result = subprocess.run(["bash", str(ENTRYPOINT)], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "DBT_RUN_INTERVAL" in result.stdout


def test_maintenance_rejects_bad_arguments(capsys):
    from smartmeter import maintenance

    with pytest.raises(SystemExit) as exc:
        maintenance.parse_args(["--retention", "a week"])
    assert exc.value.code == 2
    assert "Trino duration" in capsys.readouterr().err
    args = maintenance.parse_args(["--schema", "marts", "--retention", "2d"])
    assert args.schemas == ["marts"] and args.retention == "2d"
