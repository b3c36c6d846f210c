{#-
    Schemas are the folder's schema (staging, intermediate, marts) as is, not prefixed with the
    target schema, so the contract names iceberg.staging.* and iceberg.marts.* hold.

    DBT_SCHEMA_SUFFIX (or the var schema_suffix) appends "_<suffix>" to every schema, so a test
    or a benchmark can run the whole project into isolated schemas (staging_t123, marts_t123)
    against its own Kafka topics without touching the shared tables.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set suffix = var('schema_suffix', env_var('DBT_SCHEMA_SUFFIX', '')) | string | trim -%}
    {%- set base = (custom_schema_name | trim) if custom_schema_name else target.schema -%}
    {%- if suffix -%}
        {{ base }}_{{ suffix }}
    {%- else -%}
        {{ base }}
    {%- endif -%}
{%- endmacro %}
