"""`./lakehouse docs`: which models and columns it reports as undescribed."""

from smartmeter.commands.docs import undocumented


def _manifest(**models):
    nodes = {f"model.smartmeter.{name}": {"resource_type": "model", "package_name": "smartmeter", "name": name,
                                          "description": description, "columns": columns}
             for name, (description, columns) in models.items()}
    nodes["test.smartmeter.not_null_x"] = {"resource_type": "test", "package_name": "smartmeter", "name": "not_null_x"}
    return {"metadata": {"project_name": "smartmeter"}, "nodes": nodes}


def _catalog(**tables):
    return {"nodes": {f"model.smartmeter.{name}": {"columns": {c: {"name": c} for c in columns}}
                      for name, columns in tables.items()}}


def test_a_fully_described_model_passes():
    manifest = _manifest(billing=("Daily bills.", {"customer_id": {"description": "The customer."}}))
    assert undocumented(manifest, _catalog(billing=["customer_id"])) == []


def test_a_warehouse_column_missing_from_the_yaml_is_reported():
    manifest = _manifest(billing=("Daily bills.", {"customer_id": {"description": "The customer."},
                                                   "cost_eur": {"description": "  "}}))
    found = undocumented(manifest, _catalog(billing=["customer_id", "cost_eur", "energy_kwh"]))
    assert found == ["column billing.cost_eur", "column billing.energy_kwh"]


def test_a_model_without_description_is_reported_and_column_case_is_ignored():
    manifest = _manifest(usage=("", {"Device_ID": {"description": "The meter."}}))
    assert undocumented(manifest, _catalog(usage=["device_id"])) == ["model usage"]
