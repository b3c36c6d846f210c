{#-
    dbt-trino's MERGE, plus two configs. Without them, this is the adapter's merge as shipped:
    one statement, so rows and watermark commit together.
    - `merge_update_condition`: a predicate on DBT_INTERNAL_SOURCE and DBT_INTERNAL_DEST that a
      matched row must meet to be updated (e.g. keep the copy with the lowest Kafka coordinates).
    - `merge_replaces_groups_by`: key columns naming a group that each batch recomputes whole
      (a customer-day of a bill). Rows of such a group that the batch no longer has (a weekday's
      peak after the day became a holiday) are deleted by the same MERGE: the source adds them,
      marked stale, from the target. That reads the source three times, so the materialization
      writes such a batch to a table first (materializations/incremental.sql).
-#}
{% macro trino__get_merge_sql(target, source, unique_key, dest_columns, incremental_predicates) -%}
    {%- set predicates = [] if incremental_predicates is none else [] + incremental_predicates -%}
    {%- set dest_cols_csv = get_quoted_csv(dest_columns | map(attribute="name")) -%}
    {%- set update_columns = get_merge_update_columns(
        config.get('merge_update_columns'), config.get('merge_exclude_columns'), dest_columns
    ) -%}
    {%- set update_condition = config.get('merge_update_condition') -%}
    {%- set keys = [unique_key] if unique_key is string else unique_key -%}
    {%- for key in keys -%}
        {%- do predicates.append('DBT_INTERNAL_SOURCE.' ~ key ~ ' = DBT_INTERNAL_DEST.' ~ key) -%}
    {%- endfor -%}
    {%- set groups = config.get('merge_replaces_groups_by') -%}
    {{ config.get('sql_header', none) or '' }}
    merge into {{ target }} as DBT_INTERNAL_DEST
    {%- if groups %}
    using (
        select {{ dest_cols_csv }}, false as dbt_internal_is_stale from {{ source }}
        union all
        select {{ dest_cols_csv }}, true as dbt_internal_is_stale from {{ target }} as published
        where
            ({{ groups | join(', ') }}) in (select {{ groups | join(', ') }} from {{ source }})
            and not exists (
                select 1 from {{ source }} as batch
                where {% for key in keys %}batch.{{ key }} = published.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
            )
    ) as DBT_INTERNAL_SOURCE
    {%- else %}
    using {{ source }} as DBT_INTERNAL_SOURCE
    {%- endif %}
    on ({{ predicates | join(') and (') }})
    {%- if groups %}
    when matched and DBT_INTERNAL_SOURCE.dbt_internal_is_stale then delete
    {%- endif %}
    when matched {%- if update_condition %} and ({{ update_condition }}){% endif %} then update set
    {%- for column_name in update_columns %}
        {{ column_name }} = DBT_INTERNAL_SOURCE.{{ column_name }}{{ ',' if not loop.last }}
    {%- endfor %}
    when not matched then insert ({{ dest_cols_csv }})
    values ({% for column in dest_columns -%}
        DBT_INTERNAL_SOURCE.{{ adapter.quote(column.name) }}{{ ', ' if not loop.last }}
    {%- endfor %})
{%- endmacro %}

{#- merge_update_condition that keeps the copy with the lowest Kafka coordinates. -#}
{% macro lowest_copy_wins() -%}
    {{ return("DBT_INTERNAL_SOURCE.kafka_partition < DBT_INTERNAL_DEST.kafka_partition or ("
        ~ "DBT_INTERNAL_SOURCE.kafka_partition = DBT_INTERNAL_DEST.kafka_partition "
        ~ "and DBT_INTERNAL_SOURCE.kafka_offset < DBT_INTERNAL_DEST.kafka_offset)") }}
{%- endmacro %}

{#- A telemetry copy replaces the stored reading when it is a correction (each one lands after
    the stored copy), or when neither is one and it has lower Kafka coordinates. Rows stored
    before is_correction existed have it null: not a correction. -#}
{% macro reading_copy_wins() -%}
    {{ return("DBT_INTERNAL_SOURCE.is_correction or (not coalesce(DBT_INTERNAL_DEST.is_correction, false) and ("
        ~ lowest_copy_wins() ~ "))") }}
{%- endmacro %}

{#- Pre-hook for models that became tables: an older install has a view of that name, which
    CREATE OR REPLACE TABLE cannot replace. -#}
{% macro drop_if_view(relation) -%}
    {%- set existing = load_cached_relation(relation) -%}
    {%- if existing is not none and existing.is_view -%}
        {%- do adapter.drop_relation(existing) -%}
    {%- endif -%}
{%- endmacro %}
