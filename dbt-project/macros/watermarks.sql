{#-
    Watermarks live in the table they guard, and they are batch ids, not clock times: every row
    carries the batch_id of the run that last wrote it, and a model reads the upstream rows whose
    batch_id is above the highest one in its own table. Batch ids come from a PostgreSQL sequence,
    so a clock stepping back cannot hide rows, and the rows and the watermark commit together in
    the model's single INSERT/MERGE.

    The highest batch_id is read from the table's Iceberg metadata (`$partitions` keeps min/max
    per column per partition), so the cost follows the number of partitions, not the rows.
-#}

{% macro stored_max_batch_id(relation, column='batch_id') -%}
    {%- set value = none -%}
    {%- if execute -%}
        {%- set metadata = adapter.quote(relation.identifier ~ '$partitions') -%}
        {%- set result = run_query(
            "select max(data." ~ column ~ ".max) from " ~ relation.database ~ "." ~ adapter.quote(relation.schema)
            ~ "." ~ metadata
        ) -%}
        {%- if result.rows and result.rows[0][0] is not none -%}
            {%- set value = result.rows[0][0] | int -%}
        {%- endif -%}
    {%- endif -%}
    {{ return(value if value is not none else 0) }}
{%- endmacro %}

{#- The run's wall-clock start (UTC), recorded for people; never used as a watermark. -#}
{% macro run_loaded_at() -%}
    {%- if run_started_at is defined and run_started_at -%}
        timestamp '{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }} UTC'
    {%- else -%}
        current_timestamp
    {%- endif -%}
{%- endmacro %}

{#- Appends to the list `into` the distinct values (ISO strings) that `sql` (one date column)
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

{#- Appends to `into` the distinct values of `date_sql` (a date column or expression) over the
    rows of `upstream` written after `watermark`: the periods a run recomputes. -#}
{% macro collect_new_dates(upstream, date_sql, watermark, into) -%}
    {%- do collect_dates(
        "select distinct " ~ date_sql ~ " from " ~ upstream ~ " where batch_id > " ~ watermark, into
    ) -%}
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
