{#-
    Watermarks live in the table they guard: each incremental model reads its own stored maximum
    (loaded_at, or Kafka offsets) at compile time and renders it as a literal, so the rows and the
    new watermark are written by the same single INSERT/MERGE and commit together.
-#}

{#- The run's load timestamp: one value for every model of a `dbt build`, UTC. -#}
{% macro run_loaded_at() -%}
    {%- if run_started_at is defined and run_started_at -%}
        timestamp '{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }} UTC'
    {%- else -%}
        current_timestamp
    {%- endif -%}
{%- endmacro %}

{#- Literal of the maximum of `column` in `relation` (a timestamp(6) with time zone), or the
    epoch when the relation is empty. Only queries while executing. -#}
{% macro stored_max_timestamp(relation, column) -%}
    {%- set value = none -%}
    {%- if execute -%}
        {%- set result = run_query(
            "select cast(max(" ~ column ~ ") as varchar) from " ~ relation
        ) -%}
        {%- if result.rows and result.rows[0][0] -%}
            {%- set value = result.rows[0][0] -%}
        {%- endif -%}
    {%- endif -%}
    {%- if value -%}
        cast(timestamp '{{ value }}' as timestamp(6) with time zone)
    {%- else -%}
        timestamp '1970-01-01 00:00:00.000000 UTC'
    {%- endif -%}
{%- endmacro %}

{#- Appends to the list `into` the distinct dates (ISO strings) that `sql` (one date column)
    returns; does nothing while parsing. (Filling a caller's list rather than returning one keeps
    the macro renderable by sqlfluff's Jinja templater.) -#}
{% macro collect_dates(sql, into) -%}
    {%- if execute -%}
        {%- for row in run_query(sql).rows -%}
            {%- if row[0] is not none and (row[0] | string) not in into -%}
                {%- do into.append(row[0] | string) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- do into.sort() -%}
    {%- endif -%}
{%- endmacro %}

{#- The run's UTC date as an ISO string, and the seconds elapsed on it. -#}
{% macro run_date() -%}
    {%- if run_started_at is defined and run_started_at -%}
        {{ run_started_at.strftime('%Y-%m-%d') }}
    {%- else -%}
        1970-01-01
    {%- endif -%}
{%- endmacro %}

{% macro run_seconds_today() -%}
    {%- if run_started_at is defined and run_started_at -%}
        {{ run_started_at.hour * 3600 + run_started_at.minute * 60 + run_started_at.second }}
    {%- else -%}
        0
    {%- endif -%}
{%- endmacro %}

{#- SQL predicate: `ts_expr` falls on one of `dates` (UTC), as literal ranges so Iceberg can prune
    files by partition and min/max statistics. `offset` shifts the day window (e.g. one second
    for interval-start attribution). -#}
{% macro in_utc_dates(ts_expr, dates, offset_seconds=0) -%}
    {%- if dates | length == 0 -%}
        false
    {%- else -%}
        (
        {%- for d in dates %}
            {{ 'or ' if not loop.first }}({{ ts_expr }} >= timestamp '{{ d }} 00:00:00 UTC' + interval '{{ offset_seconds }}' second
                and {{ ts_expr }} < timestamp '{{ d }} 00:00:00 UTC' + interval '1' day + interval '{{ offset_seconds }}' second)
        {%- endfor %}
        )
    {%- endif -%}
{%- endmacro %}

{#- A VALUES relation of dates with column `column_name`, or an empty relation. -#}
{% macro dates_relation(dates, column_name) -%}
    {%- if dates | length == 0 -%}
        select cast(null as date) as {{ column_name }} where false
    {%- else -%}
        select {{ column_name }} from (
            values {% for d in dates %}date '{{ d }}'{{ ', ' if not loop.last }}{% endfor %}
        ) as touched ({{ column_name }})
    {%- endif -%}
{%- endmacro %}
