{#-
    The time model, stated once. Timestamps are stored in UTC. A reading at time t carries the
    energy of the interval (t - interval, t], so it belongs to the day and hour that contain
    t - 1 second, read in the customer's zone (customers.timezone, else the utility's
    LAKEHOUSE_TIMEZONE). Days that people read or are billed on are these local days: a DST day
    has 23 or 25 hours.
-#}

{% macro utility_timezone() -%}
    '{{ env_var("LAKEHOUSE_TIMEZONE", "Europe/Berlin") }}'
{%- endmacro %}

{#- The zone of a customer row: its own, else the utility's. -#}
{% macro customer_timezone(timezone_column) -%}
    coalesce({{ timezone_column }}, {{ utility_timezone() }})
{%- endmacro %}

{#- The local interval start of a reading, as a zoned timestamp. -#}
{% macro local_interval_start(reading_at, timezone) -%}
    at_timezone({{ reading_at }} - interval '1' second, {{ timezone }})
{%- endmacro %}

{% macro local_date(reading_at, timezone) -%}
    cast({{ local_interval_start(reading_at, timezone) }} as date)
{%- endmacro %}

{#- Appends to `into` the distinct (local date, zone) pairs that `sql` returns (two columns);
    does nothing while parsing. -#}
{% macro collect_local_days(sql, into) -%}
    {%- if execute -%}
        {%- for row in run_query(sql).rows -%}
            {%- set pair = (row[0] | string, row[1] | string) -%}
            {%- if row[0] is not none and pair not in into -%}
                {%- do into.append(pair) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- do into.sort() -%}
    {%- endif -%}
{%- endmacro %}

{#- SQL predicate: the instant `ts_expr`, shifted back by `shift_seconds`, falls on one of the
    local days `days` ((date, zone) pairs). Literal bounds, so Iceberg prunes partitions and
    files; readings use shift_seconds=1 (interval-end attribution), events 0. -#}
{% macro in_local_days(ts_expr, days, shift_seconds=1) -%}
    {%- if days | length == 0 -%}
        false
    {%- else -%}
        (
        {%- for day, zone in days %}
            {{ 'or ' if not loop.first }}({{ ts_expr }} >= with_timezone(timestamp '{{ day }} 00:00:00', '{{ zone }}') + interval '{{ shift_seconds }}' second
                and {{ ts_expr }} < with_timezone(timestamp '{{ day }} 00:00:00' + interval '1' day, '{{ zone }}') + interval '{{ shift_seconds }}' second)
        {%- endfor %}
        )
    {%- endif -%}
{%- endmacro %}
