{#-
    Telemetry and fault-log statistics per device per local day (macros/time_model.sql), the
    inputs of the health rules. Only meters that reported something that day have a row; the
    marts add the silent ones.

    Incremental by device-day: a run recomputes, from all of staging, exactly the device-days
    that have staging rows newer than this table's watermark (the highest batch_id here), and
    writes them in one MERGE. The work follows the batch: touched days are read with literal
    time bounds (partition pruning) and touched meters only (a dynamic filter).
-#}
{{ config(
    unique_key=['device_id', 'reading_date'],
    properties={'partitioning': "ARRAY['month(reading_date)']"}
) }}

{%- set interval_minutes = var('expected_reading_interval_minutes') | int -%}
{%- if is_incremental() -%}
    {%- set watermark = stored_max_batch_id(this) -%}
    {%- set touched_days = [] -%}
    {%- do collect_local_days(
        "select distinct " ~ local_date('readings.reading_at', 'devices.timezone') ~ ", devices.timezone"
        ~ " from " ~ ref('stg_telemetry_raw') ~ " as readings join " ~ ref('int_devices_located')
        ~ " as devices on readings.device_id = devices.device_id where readings.batch_id > " ~ watermark
        ~ " union select distinct cast(at_timezone(events.event_at, devices.timezone) as date), devices.timezone"
        ~ " from " ~ ref('stg_fault_logs') ~ " as events join " ~ ref('int_devices_located')
        ~ " as devices on events.device_id = devices.device_id where events.batch_id > " ~ watermark,
        touched_days
    ) -%}
    {%- if execute -%}
        {%- do log(this.identifier ~ " recomputes device-days of " ~ (touched_days | length) ~ " local day(s): "
            ~ (touched_days | map('join', ' ') | join(', ')), info=True) -%}
    {%- endif -%}
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
        readings.device_id,
        {{ local_date('readings.reading_at', 'devices.timezone') }} as reading_date
    from {{ ref('stg_telemetry_raw') }} as readings
    inner join devices on readings.device_id = devices.device_id
    where readings.batch_id > {{ watermark }}
    union
    select distinct
        events.device_id,
        cast(at_timezone(events.event_at, devices.timezone) as date) as reading_date
    from {{ ref('stg_fault_logs') }} as events
    inner join devices on events.device_id = devices.device_id
    where events.batch_id > {{ watermark }}
),

{% endif -%}
readings as (
    select
        readings.device_id,
        readings.customer_id,
        readings.reading_at,
        readings.energy_kwh,
        readings.voltage_v,
        readings.battery_pct,
        readings.register_kwh,
        readings.status,
        {{ local_date('readings.reading_at', 'devices.timezone') }} as reading_date,
        coalesce(readings.interval_minutes, {{ interval_minutes }}) * 60 as interval_seconds
    from {{ ref('stg_telemetry_raw') }} as readings
    inner join devices on readings.device_id = devices.device_id
    {%- if is_incremental() %}
        where
            {{ in_local_days('readings.reading_at', touched_days, 1) }}
            and readings.device_id in (select touched.device_id from touched)
    {%- endif %}
),

events as (
    select
        events.device_id,
        events.severity,
        events.event_code,
        cast(at_timezone(events.event_at, devices.timezone) as date) as reading_date
    from {{ ref('stg_fault_logs') }} as events
    inner join devices on events.device_id = devices.device_id
    {%- if is_incremental() %}
        where
            {{ in_local_days('events.event_at', touched_days, 0) }}
            and events.device_id in (select touched.device_id from touched)
    {%- endif %}
),

telemetry_days as (
    select
        device_id,
        reading_date,
        count(*) as reading_count,
        max(interval_seconds) as interval_seconds,
        sum(energy_kwh) as total_energy_kwh,
        sum(voltage_v) as total_voltage_v,
        min(voltage_v) as min_voltage_v,
        max(voltage_v) as max_voltage_v,
        count_if(
            voltage_v between {{ var('en50160_min_voltage_v') }} and {{ var('en50160_max_voltage_v') }}
        ) as compliant_voltage_count,
        avg(battery_pct) as avg_battery_pct,
        min(battery_pct) as min_battery_pct,
        count_if(status != 'OK') as warning_count,
        count_if(status = 'ERROR') as error_status_count,
        count_if(energy_kwh = 0) as zero_energy_reading_count,
        count_if(
            least(
                to_unixtime(reading_at) % interval_seconds,
                interval_seconds - to_unixtime(reading_at) % interval_seconds
            ) > 60
        ) as off_grid_reading_count,
        min(register_kwh) as min_register_kwh,
        max(register_kwh) as max_register_kwh,
        min(reading_at) as first_reading_at,
        max(reading_at) as last_reading_at
    from readings
    group by device_id, reading_date
),

fault_days as (
    select
        device_id,
        reading_date,
        count_if(severity = 'INFO') as info_event_count,
        count_if(severity = 'WARNING') as warning_event_count,
        count_if(severity = 'ERROR') as error_event_count,
        count_if(severity = 'CRITICAL') as critical_event_count,
        array_join(
            array_sort(array_distinct(array_agg(event_code) filter (where event_code is not null))),
            ','
        ) as fault_event_codes
    from events
    group by device_id, reading_date
),

device_days as (
    select
        device_id,
        reading_date
    from telemetry_days
    union
    select
        device_id,
        reading_date
    from fault_days
)

select
    device_days.device_id,
    devices.customer_id,
    device_days.reading_date,
    coalesce(telemetry_days.reading_count, 0) as reading_count,
    telemetry_days.interval_seconds,
    coalesce(telemetry_days.total_energy_kwh, 0) as total_energy_kwh,
    telemetry_days.total_voltage_v,
    telemetry_days.min_voltage_v,
    telemetry_days.max_voltage_v,
    coalesce(telemetry_days.compliant_voltage_count, 0) as compliant_voltage_count,
    telemetry_days.avg_battery_pct,
    telemetry_days.min_battery_pct,
    coalesce(telemetry_days.warning_count, 0) as warning_count,
    coalesce(telemetry_days.error_status_count, 0) as error_status_count,
    coalesce(telemetry_days.zero_energy_reading_count, 0) as zero_energy_reading_count,
    coalesce(telemetry_days.off_grid_reading_count, 0) as off_grid_reading_count,
    telemetry_days.min_register_kwh,
    telemetry_days.max_register_kwh,
    telemetry_days.first_reading_at,
    telemetry_days.last_reading_at,
    coalesce(fault_days.info_event_count, 0) as info_event_count,
    coalesce(fault_days.warning_event_count, 0) as warning_event_count,
    coalesce(fault_days.error_event_count, 0) as error_event_count,
    coalesce(fault_days.critical_event_count, 0) as critical_event_count,
    nullif(fault_days.fault_event_codes, '') as fault_event_codes,
    cast({{ pipeline_batch_id() }} as bigint) as batch_id,
    {{ run_loaded_at() }} as aggregated_at
from device_days
{%- if is_incremental() %}
inner join touched
    on
        device_days.device_id = touched.device_id
        and device_days.reading_date = touched.reading_date
{%- endif %}
left join devices on device_days.device_id = devices.device_id
left join telemetry_days
    on
        device_days.device_id = telemetry_days.device_id
        and device_days.reading_date = telemetry_days.reading_date
left join fault_days
    on
        device_days.device_id = fault_days.device_id
        and device_days.reading_date = fault_days.reading_date
