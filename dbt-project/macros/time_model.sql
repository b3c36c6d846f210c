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

{#- Appends to `into` the runs of consecutive hours among those `hours_sql` returns (one
    column, hour starts as timestamp with time zone), as [first hour, end] pairs of ISO strings
    with end exclusive; does nothing while parsing. A backfill touches hundreds of hours, and
    one range per run of hours keeps the predicate short. -#}
{% macro collect_hour_ranges(hours_sql, into) -%}
    {%- if execute -%}
        {%- set ranges_sql -%}
            select
                cast(min(hour_at) as varchar),
                cast(max(hour_at) + interval '1' hour as varchar)
            from (
                select
                    hour_at,
                    hour_at - row_number() over (order by hour_at) * interval '1' hour as island_at
                from (select distinct hour_at from ({{ hours_sql }}) as touched (hour_at))
            )
            group by island_at
            order by 1
        {%- endset -%}
        {%- for row in run_query(ranges_sql).rows -%}
            {%- do into.append([row[0], row[1]]) -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

{#- SQL predicate: the instant `ts_expr`, shifted back by `shift_seconds`, falls within an hour of
    one of the hour `ranges`. Each range reaches an hour to either side, so it covers every local
    hour that overlaps its UTC hours, in any zone (offsets are whole quarter hours). Literal
    bounds, so Iceberg prunes partitions and files. -#}
{% macro in_hours(ts_expr, ranges, shift_seconds=1) -%}
    {%- if ranges | length == 0 -%}
        false
    {%- else -%}
        (
        {%- for first_hour, end_hour in ranges %}
            {{ 'or ' if not loop.first }}({{ ts_expr }} >= timestamp '{{ first_hour }}' - interval '1' hour + interval '{{ shift_seconds }}' second
                and {{ ts_expr }} < timestamp '{{ end_hour }}' + interval '1' hour + interval '{{ shift_seconds }}' second)
        {%- endfor %}
        )
    {%- endif -%}
{%- endmacro %}

{#- SQL predicate: the instant `ts_expr` can fall within one of the local `dates` (ISO strings),
    in any zone (UTC-12 to UTC+14), or within `pad_hours` of it. Literal bounds, so Iceberg
    prunes partitions. -#}
{% macro in_local_days(ts_expr, dates, pad_hours=0) -%}
    {%- if dates | length == 0 -%}
        false
    {%- else -%}
        (
        {%- for day in dates %}
            {{ 'or ' if not loop.first }}({{ ts_expr }} >= timestamp '{{ day }} 00:00:00 UTC' - interval '{{ 14 + pad_hours }}' hour
                and {{ ts_expr }} <= timestamp '{{ day }} 00:00:00 UTC' + interval '{{ 36 + pad_hours }}' hour)
        {%- endfor %}
        )
    {%- endif -%}
{%- endmacro %}

{#- The interval end (epoch seconds) nearest the instant `epoch_s`, on a grid of `interval_s`:
    where VEE validation places a reading. -#}
{% macro nearest_interval_end_s(epoch_s, interval_s) -%}
    cast(round({{ epoch_s }} / {{ interval_s }}) as bigint) * {{ interval_s }}
{%- endmacro %}

{#- SQL predicate: the instant `epoch_s` is more than clock_drift_tolerance_s from the grid of
    `interval_s` (a drifting clock). -#}
{% macro is_off_grid(epoch_s, interval_s) -%}
    least({{ epoch_s }} % {{ interval_s }}, {{ interval_s }} - {{ epoch_s }} % {{ interval_s }})
    > {{ var('clock_drift_tolerance_s') }}
{%- endmacro %}

{#- SQL predicate: the instant `ts_expr` lies in (`start_at`, `end_at`] or within `pad_hours` of it. -#}
{% macro within_window(ts_expr, start_at, end_at, pad_hours=0) -%}
    {{ ts_expr }} > {{ start_at }} - interval '{{ pad_hours }}' hour
    and {{ ts_expr }} <= {{ end_at }} + interval '{{ pad_hours }}' hour
{%- endmacro %}
