{#-
    Trino plans a WITH query afresh at each of its uses (it has no CTE materialization), so a
    subquery that a model reads in several places is computed that many times. run_table writes
    it once, before the model's statement, to a table of the run in the intermediate schema (which
    only dbt reads), and returns the table's name; the model drops it again in a post-hook
    (drop_run_table). While parsing, in commands that only compile (compile, docs generate, show:
    no post-hook drops the table), or with enabled false, it returns the subquery itself.
-#}
{% macro run_table(name, sql, enabled=true) -%}
    {%- if execute and enabled and flags.WHICH in ('run', 'build') -%}
        {%- set relation = run_table_relation(name) -%}
        {%- do run_query('create or replace table ' ~ relation ~ ' as ' ~ sql) -%}
        {{ return(relation) }}
    {%- else -%}
        {{ return('(' ~ sql ~ ')') }}
    {%- endif -%}
{%- endmacro %}

{% macro drop_run_table(name) -%}
    drop table if exists {{ run_table_relation(name) }}
{%- endmacro %}

{#- <model>__<name> in the intermediate schema of the model's scope. -#}
{% macro run_table_relation(name) -%}
    {{ return(api.Relation.create(
        database=this.database,
        schema=generate_schema_name('intermediate', model),
        identifier=this.identifier ~ '__' ~ name,
        type='table'
    )) }}
{%- endmacro %}
