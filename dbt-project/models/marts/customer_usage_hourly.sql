{#-
    Energy per customer per UTC hour. A reading's energy is the consumption of the interval that
    ends at reading_at, so it is attributed to the hour containing the interval's start:
    usage_hour_at = date_trunc('hour', reading_at - 1 second) (a 00:00:00 reading counts for
    23:00-24:00 of the previous day). Incremental: recomputes every day touched by staging rows
    loaded after this table's watermark (max loaded_at, stored here), in one MERGE.
-#}
{{ config(
    unique_key=['customer_id', 'usage_hour_at'],
    properties={'partitioning': "ARRAY['month(usage_date)']"}
) }}

{%- if is_incremental() -%}
    {%- set touched_dates = [] -%}
    {%- do collect_dates(
        "select distinct cast(reading_at - interval '1' second as date) from "
        ~ ref('stg_telemetry_raw') ~ " where loaded_at > " ~ stored_max_timestamp(this, 'loaded_at'),
        touched_dates
    ) -%}
{%- endif %}

with

readings as (
    select
        device_id,
        customer_id,
        energy_kwh,
        voltage_v,
        loaded_at,
        date_trunc('hour', reading_at - interval '1' second) as usage_hour_at
    from {{ ref('stg_telemetry_raw') }}
    {%- if is_incremental() %}
        where {{ in_utc_dates('reading_at', touched_dates, 1) }}
    {%- endif %}
),

devices as (
    select
        device_id,
        customer_id
    from {{ ref('stg_devices') }}
)

select
    coalesce(devices.customer_id, readings.customer_id) as customer_id,
    readings.usage_hour_at,
    cast(readings.usage_hour_at as date) as usage_date,
    sum(readings.energy_kwh) as energy_kwh,
    count(*) as reading_count,
    count(distinct readings.device_id) as device_count,
    avg(readings.voltage_v) as avg_voltage_v,
    max(readings.loaded_at) as loaded_at
from readings
left join devices on readings.device_id = devices.device_id
group by 1, 2, 3
