{#-
    Energy and reading time per customer segment per local date and hour, summed over the
    segment's meters in int_device_hours_aggregated: the fallback profile for a long gap of a
    meter without a profile of its own (device_intervals). A meter counts in its customer's
    segment when the date was last aggregated.

    Incremental by date: a run recomputes the local dates whose device-hours changed since this
    table's watermark (the highest batch_id here), from those dates' hour rows only.
-#}
{{ config(
    unique_key=['customer_segment', 'usage_date', 'local_hour'],
    properties={'partitioning': "ARRAY['month(usage_date)']"}
) }}

{%- if is_incremental() -%}
    {%- set touched_dates = [] -%}
    {%- do collect_new_dates(
        ref('int_device_hours_aggregated'), 'usage_date', stored_max_batch_id(this), touched_dates
    ) -%}
{%- endif %}

with

hours as (
    select
        device_id,
        usage_date,
        local_hour,
        reading_count,
        interval_seconds,
        total_energy_kwh
    from {{ ref('int_device_hours_aggregated') }}
    where
        reading_count > 0
        {%- if is_incremental() %}
            and usage_date in ({{ dates_relation(touched_dates, 'usage_date') }})
            {#- A local date lies within a day either side of the same UTC date (prunes partitions). #}
            and usage_hour_at >= timestamp '{{ touched_dates[0] if touched_dates else "1970-01-01" }} 00:00:00 UTC'
            - interval '1' day
            and usage_hour_at < timestamp '{{ touched_dates[-1] if touched_dates else "1970-01-01" }} 00:00:00 UTC'
            + interval '2' day
        {%- endif %}
),

devices as (
    select
        device_id,
        customer_segment
    from {{ ref('int_devices_located') }}
)

select
    devices.customer_segment,
    hours.usage_date,
    hours.local_hour,
    count(distinct hours.device_id) as device_count,
    sum(hours.reading_count) as reading_count,
    sum(hours.reading_count * hours.interval_seconds) as reading_seconds,
    sum(hours.total_energy_kwh) as total_energy_kwh,
    cast({{ pipeline_batch_id() }} as bigint) as batch_id
from hours
inner join devices on hours.device_id = devices.device_id
where devices.customer_segment is not null
group by devices.customer_segment, hours.usage_date, hours.local_hour
