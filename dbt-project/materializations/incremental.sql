{#-
    The incremental materialization for Trino, lean enough to run every pipeline cycle.

    dbt-trino's own version creates a temporary view, describes it and the target four times and
    drops the view again: seven metadata queries around each MERGE, which cost more than the MERGE
    on a small batch. This one runs the model's SQL straight inside its single INSERT or MERGE
    (rows and watermark still commit together) after one describe of the target.

    - first run, or --full-refresh: CREATE OR REPLACE TABLE ... AS (atomic), with the model's
      properties (partitioning);
    - append: INSERT INTO target SELECT ...;
    - merge: MERGE INTO target USING (...) ON unique_key, optionally updating a matched row only
      when merge_update_condition holds (macros/merge.sql). With merge_replaces_groups_by the
      MERGE reads its source three times, and Trino would run an inline query at each: the batch
      is first written to <model>__dbt_tmp (dropped after; a killed run's copy is dropped by the
      next writer), so the model runs once.

    New columns in the model are added to the table (on_schema_change append_new_columns) when
    the runner says the project changed (LAKEHOUSE_SCHEMA_CHECK=true); other runs skip that check.
-#}
{% materialization incremental, adapter='trino', supported_languages=['sql'] -%}
    {%- set unique_key = config.get('unique_key') -%}
    {%- set strategy = config.get('incremental_strategy') or 'append' -%}
    {%- set existing = load_cached_relation(this) -%}
    {%- set target = this.incorporate(type='table') -%}

    {{ run_hooks(pre_hooks) }}

    {%- if existing is none or existing.is_view or should_full_refresh() -%}
        {%- if existing is not none and existing.is_view -%}
            {%- do adapter.drop_relation(existing) -%}
        {%- endif -%}
        {%- call statement('main') -%}
            {{ trino__create_table_as(False, target, compiled_code, 'replace') }}
        {%- endcall -%}
    {%- else -%}
        {%- if env_var('LAKEHOUSE_SCHEMA_CHECK', 'false') == 'true' -%}
            {%- do lakehouse_add_new_columns(target, compiled_code) -%}
        {%- endif -%}
        {%- set dest_columns = adapter.get_columns_in_relation(target) -%}
        {%- set source -%}
            ({{ compiled_code }})
        {%- endset -%}
        {%- set staged = none -%}
        {%- if strategy == 'merge' and config.get('merge_replaces_groups_by') -%}
            {%- set staged = make_temp_relation(target) -%}
            {%- call statement('stage_batch') -%}
                create or replace table {{ staged }} as {{ compiled_code }}
            {%- endcall -%}
            {%- set source = staged -%}
        {%- endif -%}
        {%- call statement('main') -%}
            {%- if strategy == 'merge' -%}
                {{ trino__get_merge_sql(target, source, unique_key, dest_columns, none) }}
            {%- else -%}
                {%- set columns_csv = get_quoted_csv(dest_columns | map(attribute='name')) -%}
                insert into {{ target }} ({{ columns_csv }})
                select {{ columns_csv }} from {{ source }} as new_rows
            {%- endif -%}
        {%- endcall -%}
        {%- if staged is not none -%}
            {%- do adapter.drop_relation(staged) -%}
        {%- endif -%}
    {%- endif -%}

    {{ run_hooks(post_hooks) }}
    {%- do persist_docs(target, model) -%}
    {{ return({'relations': [target]}) }}
{%- endmaterialization %}

{#- Columns the model produces that the table lacks are added (existing ones are never changed
    or dropped). One describe of the table, and one of the query through dbt's empty subquery
    (`where false limit 0`): the adapter's method alone would run the model and fetch every row. -#}
{% macro lakehouse_add_new_columns(relation, sql) -%}
    {%- set existing = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list -%}
    {%- for column in get_column_schema_from_query(sql) if column.name | lower not in existing -%}
        {%- do log(relation ~ ": adding column " ~ column.name ~ " " ~ column.data_type, info=True) -%}
        {%- call statement('add_column_' ~ loop.index) -%}
            alter table {{ relation }} add column {{ adapter.quote(column.name) }} {{ column.data_type }}
        {%- endcall -%}
    {%- endfor -%}
{%- endmacro %}
