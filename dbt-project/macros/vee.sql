{#-
    device_intervals' re-validation of later days: a long gap's profile estimate reads the hours
    of the vee_profile_days before its day, so a batch that changes those hours changes it.
-#}

{#- The meter-days (device_id, reading_date) in device_intervals whose profile a batch changed:
    later days within vee_profile_days that can hold a long gap, of a meter whose own hours
    changed, or of a meter of a segment whose hours changed when a long gap of the day had no own
    profile. A day can hold one when it misses more than the longest interpolated gap and has a
    reading to bound it: its own, or, on a day with none, the last interval of the day before and
    the first of the day after (a neighbour with a reading is the superset used). A day with only
    fault-log events, such as the later days of a backfill whose logs landed before its readings,
    has no gap to estimate. Days of either day type: a superset (re-validating a day is
    idempotent), which spares the holiday lookup here. `touched_dates` (sorted) bound the scan of
    device_intervals, one day wider on each side: its days are local and its bounds UTC, and the
    neighbour days at either end must be whole. -#}
{% macro vee_profile_dependent_days(touched_dates, watermark) -%}
    {%- set profile_days = var('vee_profile_days') | int -%}
    with

    meter_days as (
        select
            device_id,
            reading_date,
            missing_s,
            is_unprofiled,
            has_reading
            or coalesce(
                lag(reading_date) over by_day = reading_date - interval '1' day
                and lag(has_reading) over by_day
                and lead(reading_date) over by_day = reading_date + interval '1' day
                and lead(has_reading) over by_day,
                false
            ) as is_bounded
        from (
            select
                device_id,
                reading_date,
                count_if(reading_count = 0) * max(interval_minutes) filter (where reading_count = 0) * 60
                    as missing_s,
                bool_or(reading_count > 0) as has_reading,
                bool_or(
                    reading_count = 0 and coalesce(estimation_method, '') not in ('REGISTER_PROFILE', 'PROFILE')
                ) as is_unprofiled
            from {{ this }}
            where
                interval_end_at >= timestamp '{{ touched_dates[0] }} 00:00:00 UTC' - interval '1' day
                and interval_end_at
                < timestamp '{{ touched_dates[-1] }} 00:00:00 UTC' + interval '{{ profile_days + 3 }}' day
            group by device_id, reading_date
        )
        window by_day as (partition by device_id order by reading_date)
    )

    {%- for profile in ['device', 'segment'] %}
        select
            meter_days.device_id,
            meter_days.reading_date
        from meter_days
        {%- if profile == 'device' %}
            inner join (
                select distinct device_id, usage_date
                from {{ ref('int_device_hours_aggregated') }}
                where batch_id > {{ watermark }} and reading_count > 0
            ) as changed
                on meter_days.device_id = changed.device_id
        {%- else %}
            inner join {{ ref('int_devices_located') }} as devices on meter_days.device_id = devices.device_id
            inner join (
                select distinct customer_segment, usage_date
                from {{ ref('int_segment_hours_aggregated') }}
                where batch_id > {{ watermark }}
            ) as changed
                on devices.customer_segment = changed.customer_segment
        {%- endif %}
                and meter_days.reading_date > changed.usage_date
                and meter_days.reading_date <= changed.usage_date + interval '{{ profile_days }}' day
        where
            meter_days.missing_s > {{ (var('vee_estimation_max_gap_hours') | int) * 3600 }}
            and meter_days.is_bounded
            {%- if profile == 'segment' %}
                and meter_days.is_unprofiled
            {%- endif %}
        {{ 'union' if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{#- The (device_id, reading_date) `rows` that `sql` returned, as a VALUES relation; `sql` itself
    when there are too many for a statement's text. -#}
{% macro device_days_relation(rows, sql, max_rows=5000) -%}
    {%- if rows | length > max_rows -%}
        {{ sql }}
    {%- else -%}
        values
        {%- for row in rows %}
            ('{{ row[0] | replace("'", "''") }}', date '{{ row[1] }}'){{ ',' if not loop.last }}
        {%- endfor %}
    {%- endif -%}
{%- endmacro %}

{#- A rest day for the VEE profiles: Saturday, Sunday, or a public holiday (`holiday_dates`: an
    array of the meter's country's holiday dates, null without any). -#}
{% macro is_rest_day(date_sql, holiday_dates_sql) -%}
    (day_of_week({{ date_sql }}) >= 6 or coalesce(contains({{ holiday_dates_sql }}, {{ date_sql }}), false))
{%- endmacro %}
