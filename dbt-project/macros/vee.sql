{#-
    device_intervals' re-validation of later days: a long gap's profile estimate reads the hours
    of the vee_profile_days before its day, so a batch that changes those hours changes it.
-#}

{#- The meter-days (device_id, reading_date) in device_intervals whose profile a batch changed:
    later days within vee_profile_days that miss more than the longest interpolated gap (only
    they can hold a long gap), of a meter whose own hours changed, or of a meter of a segment
    whose hours changed when a long gap of the day had no own profile. Days of either day type:
    a superset (re-validating a day is idempotent), which spares the holiday lookup here.
    `touched_dates` (sorted) bound the scan of device_intervals. -#}
{% macro vee_profile_dependent_days(touched_dates, watermark) -%}
    {%- set profile_days = var('vee_profile_days') | int -%}
    {%- for profile in ['device', 'segment'] %}
        select
            intervals.device_id,
            intervals.reading_date
        from {{ this }} as intervals
        {%- if profile == 'device' %}
            inner join (
                select distinct device_id, usage_date
                from {{ ref('int_device_hours_aggregated') }}
                where batch_id > {{ watermark }} and reading_count > 0
            ) as changed
                on intervals.device_id = changed.device_id
        {%- else %}
            inner join {{ ref('int_devices_located') }} as devices on intervals.device_id = devices.device_id
            inner join (
                select distinct customer_segment, usage_date
                from {{ ref('int_segment_hours_aggregated') }}
                where batch_id > {{ watermark }}
            ) as changed
                on devices.customer_segment = changed.customer_segment
        {%- endif %}
                and intervals.reading_date > changed.usage_date
                and intervals.reading_date <= changed.usage_date + interval '{{ profile_days }}' day
        where
            intervals.reading_count = 0
            and intervals.interval_end_at >= timestamp '{{ touched_dates[0] }} 00:00:00 UTC'
            and intervals.interval_end_at
                < timestamp '{{ touched_dates[-1] }} 00:00:00 UTC' + interval '{{ profile_days + 2 }}' day
        group by intervals.device_id, intervals.reading_date
        having
            count(distinct intervals.interval_end_at) * max(intervals.interval_minutes) * 60
                > {{ (var('vee_estimation_max_gap_hours') | int) * 3600 }}
            {%- if profile == 'segment' %}
                and bool_or(coalesce(intervals.estimation_method, '') not in ('REGISTER_PROFILE', 'PROFILE'))
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
