"""Which running dbt writes belong to a writer's scope (the ones it may cancel as orphaned)."""

from __future__ import annotations

import dataclasses
import re

import pytest

from smartmeter.config import load_settings
from smartmeter.pipeline.lakehouse import WRITE_STATEMENT, scope_pattern

MERGE = 'merge into "iceberg"."{schema}"."stg_telemetry_raw" as DBT_INTERNAL_DEST using (select 1)'
INSERT = 'insert into "iceberg"."{schema}"."stg_telemetry_rejected" ("kafka_topic_id") select 1'


@pytest.mark.parametrize("statement", [MERGE, INSERT])
def test_a_scope_owns_its_own_writes_and_no_other_scopes(statement):
    default = dataclasses.replace(load_settings(), dbt_schema_suffix="")
    scoped = dataclasses.replace(default, dbt_schema_suffix="t1234")
    for owner, other in ((default, scoped), (scoped, default)):
        for base in ("staging", "intermediate", "marts"):
            write = statement.format(schema=owner.schema(base))
            assert re.search(scope_pattern(owner), write), (owner.dbt_schema_suffix, write)
            assert not re.search(scope_pattern(other), write), (other.dbt_schema_suffix, write)


@pytest.mark.parametrize("statement", [
    MERGE,
    INSERT,
    'create or replace table "iceberg"."{schema}"."customer_billing_daily__dbt_tmp" as select 1',
    'create table "iceberg"."{schema}"."customer_usage_summary__dbt_tmp" as select 1',
    'alter table "iceberg"."{schema}"."customer_usage_summary" add column x double',
    'drop table if exists "iceberg"."{schema}"."device_intervals__windows"',
])
def test_a_statement_that_changes_a_table_is_a_write(statement):
    assert re.search(WRITE_STATEMENT, statement.format(schema="marts").lower()), statement


def test_a_read_is_not_a_write():
    assert not re.search(WRITE_STATEMENT, 'select * from "iceberg"."marts"."customer_usage_summary"')
