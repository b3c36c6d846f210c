{#-
    Energy per customer per local hour. A reading's energy is the consumption of the interval
    that ends at reading_at, so it counts in the local hour that contains reading_at - 1 second
    (macros/time_model.sql): a DST day has 23 or 25 rows. usage_hour_at is that hour's start as
    a UTC instant (the key; unambiguous when the clocks go back), local_hour its hour on the
    local clock (0-23), usage_date its local date.
    Incremental: recomputes every hour of the customer-days that have readings newer than this
    table's watermark (the highest batch_id here), in one MERGE.
-#}
{{ config(
    unique_key=['customer_id', 'usage_hour_at'],
    properties={'partitioning': "ARRAY['month(usage_date)']"}
) }}

{%- if is_incremental() -%}
    {%- set watermark = stored_max_batch_id(this) -%}
    {%- set touched_days = [] -%}
    {%- do collect_local_days(
        "select distinct " ~ local_date('readings.reading_at', 'devices.timezone') ~ ", devices.timezone"
        ~ " from " ~ ref('stg_telemetry_raw') ~ " as readings join " ~ ref('int_devices_located')
        ~ " as devices on readings.device_id = devices.device_id where readings.batch_id > " ~ watermark,
        touched_days
    ) -%}
{%- endif %}

with

devices as (
    select
        device_id,
        customer_id,
        timezone
    from {{ ref('int_devices_located') }}
),

{% if is_incremental() -%}
touched as (
    select distinct
        devices.customer_id,
        {{ local_date('readings.reading_at', 'devices.timezone') }} as usage_date
    from {{ ref('stg_telemetry_raw') }} as readings
    inner join devices on readings.device_id = devices.device_id
    where readings.batch_id > {{ watermark }}
),

{% endif -%}
readings as (
    select
        devices.customer_id,
        devices.timezone,
        readings.device_id,
        readings.energy_kwh,
        readings.voltage_v,
        date_trunc('hour', {{ local_interval_start('readings.reading_at', 'devices.timezone') }}) as local_hour_start
    from {{ ref('stg_telemetry_raw') }} as readings
    inner join devices on readings.device_id = devices.device_id
    {%- if is_incremental() %}
        where
            {{ in_local_days('readings.reading_at', touched_days, 1) }}
            and devices.customer_id in (select touched.customer_id from touched)
    {%- endif %}
),

hourly as (
    select
        customer_id,
        local_hour_start,
        arbitrary(timezone) as timezone,
        sum(energy_kwh) as energy_kwh,
        count(*) as reading_count,
        count(distinct device_id) as device_count,
        avg(voltage_v) as avg_voltage_v
    from readings
    group by customer_id, local_hour_start
)

select
    hourly.customer_id,
    cast(at_timezone(hourly.local_hour_start, 'UTC') as timestamp(6) with time zone) as usage_hour_at,
    cast(hourly.local_hour_start as date) as usage_date,
    hour(hourly.local_hour_start) as local_hour,
    hourly.timezone,
    hourly.energy_kwh,
    hourly.reading_count,
    hourly.device_count,
    hourly.avg_voltage_v,
    cast({{ pipeline_batch_id() }} as bigint) as batch_id
from hourly
{%- if is_incremental() %}
inner join touched
    on
        hourly.customer_id = touched.customer_id
        and cast(hourly.local_hour_start as date) = touched.usage_date
{%- endif %}
