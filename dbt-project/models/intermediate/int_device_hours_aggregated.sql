{#-
    Telemetry and fault-log statistics per device per local hour (macros/time_model.sql: a reading
    counts in the hour that contains reading_at - 1 second, an event in the hour it happened), the
    first level of the marts' aggregation: device-days and customer-hours are sums over these rows.
    Every statistic is one that combines exactly (counts, sums, minimums, maximums).

    Incremental by device-hour: a run recomputes, from all of staging, exactly the device-hours
    that have staging rows newer than this table's watermark (the highest batch_id here), reading
    only those hours (literal time bounds). A batch of
    backfill covers a slice of time, so the work follows the batch, not the day.
-#}
{{ config(
    unique_key=['device_id', 'usage_hour_at'],
    properties={'partitioning': "ARRAY['day(usage_hour_at)']"}
) }}

{%- set interval_minutes = var('expected_reading_interval_minutes') | int -%}
{%- if is_incremental() -%}
    {%- set watermark = stored_max_batch_id(this) -%}
    {%- set touched_hours = [] -%}
    {%- do collect_hour_ranges(
        "select date_trunc('hour', readings.reading_at - interval '1' second)"
        ~ " from " ~ ref('stg_telemetry_raw') ~ " as readings where readings.batch_id > " ~ watermark
        ~ " union all select date_trunc('hour', events.event_at)"
        ~ " from " ~ ref('stg_fault_logs') ~ " as events where events.batch_id > " ~ watermark,
        touched_hours
    ) -%}
    {%- if execute and touched_hours -%}
        {%- do log(
            this.identifier ~ " recomputes device-hours in " ~ (touched_hours | length) ~ " run(s) of hours from "
            ~ touched_hours[0][0] ~ " to " ~ touched_hours[-1][1], info=True
        ) -%}
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

readings as (
    select
        readings.device_id,
        readings.reading_at,
        readings.energy_kwh,
        readings.voltage_v,
        readings.battery_pct,
        readings.register_kwh,
        readings.status,
        readings.batch_id,
        date_trunc('hour', {{ local_interval_start('readings.reading_at', 'devices.timezone') }}) as local_hour_start,
        coalesce(readings.interval_minutes, {{ interval_minutes }}) * 60 as interval_seconds
    from {{ ref('stg_telemetry_raw') }} as readings
    inner join devices on readings.device_id = devices.device_id
    {%- if is_incremental() %}
        where {{ in_hours('readings.reading_at', touched_hours, 1) }}
    {%- endif %}
),

events as (
    select
        events.device_id,
        events.severity,
        events.event_code,
        events.batch_id,
        date_trunc('hour', at_timezone(events.event_at, devices.timezone)) as local_hour_start
    from {{ ref('stg_fault_logs') }} as events
    inner join devices on events.device_id = devices.device_id
    {%- if is_incremental() %}
        where {{ in_hours('events.event_at', touched_hours, 0) }}
    {%- endif %}
),

checked_readings as (
    select
        *,
        status != 'OK'
        and voltage_v between {{ var('en50160_min_voltage_v') }} and {{ var('en50160_max_voltage_v') }}
        and battery_pct >= {{ var('low_battery_pct') }}
        and is_on_grid as is_unexplained_status
    from (
        select
            *,
            not {{ is_off_grid('to_unixtime(reading_at)', 'interval_seconds') }} as is_on_grid
        from readings
    )
),

telemetry_hours as (
    select
        device_id,
        local_hour_start,
        count(*) as reading_count,
        max(interval_seconds) as interval_seconds,
        sum(energy_kwh) as total_energy_kwh,
        max(energy_kwh) as max_energy_kwh,
        sum(voltage_v) as total_voltage_v,
        min(voltage_v) as min_voltage_v,
        max(voltage_v) as max_voltage_v,
        count_if(
            voltage_v between {{ var('en50160_min_voltage_v') }} and {{ var('en50160_max_voltage_v') }}
        ) as compliant_voltage_count,
        sum(battery_pct) as total_battery_pct,
        min(battery_pct) as min_battery_pct,
        count_if(status != 'OK') as warning_count,
        count_if(status = 'ERROR') as error_status_count,
        count_if(energy_kwh = 0) as zero_energy_reading_count,
        count_if(not is_on_grid) as off_grid_reading_count,
        min_by(battery_pct, reading_at) as first_battery_pct,
        {#- A status flag the measurements do not explain is the meter's own alarm: with zero
            energy its metrology check (a stuck register), otherwise a sensor such as the cover. -#}
        count_if(is_unexplained_status and energy_kwh = 0) as stuck_reading_count,
        count_if(is_unexplained_status and energy_kwh > 0) as unexplained_warning_count,
        min(register_kwh) as min_register_kwh,
        max(register_kwh) as max_register_kwh,
        min(reading_at) as first_reading_at,
        max(reading_at) as last_reading_at,
        max(batch_id) as max_batch_id
    from checked_readings
    group by device_id, local_hour_start
),

fault_hours as (
    select
        device_id,
        local_hour_start,
        count_if(severity = 'INFO') as info_event_count,
        count_if(severity = 'WARNING') as warning_event_count,
        count_if(severity = 'ERROR') as error_event_count,
        count_if(severity = 'CRITICAL') as critical_event_count,
        array_join(
            array_sort(array_distinct(array_agg(event_code) filter (where event_code is not null))), ','
        ) as fault_event_codes,
        max(batch_id) as max_batch_id
    from events
    group by device_id, local_hour_start
)

{#- One row per device-hour with a reading or an event. Both sides are unique on the key, so a
    full join pairs them; a union of their keys joined back to both would aggregate the readings
    twice (Trino computes a WITH query at each of its uses). -#}
select
    coalesce(telemetry_hours.device_id, fault_hours.device_id) as device_id,
    devices.customer_id,
    cast(
        at_timezone(coalesce(telemetry_hours.local_hour_start, fault_hours.local_hour_start), 'UTC')
        as timestamp(6) with time zone
    ) as usage_hour_at,
    cast(coalesce(telemetry_hours.local_hour_start, fault_hours.local_hour_start) as date) as usage_date,
    hour(coalesce(telemetry_hours.local_hour_start, fault_hours.local_hour_start)) as local_hour,
    coalesce(telemetry_hours.reading_count, 0) as reading_count,
    telemetry_hours.interval_seconds,
    coalesce(telemetry_hours.total_energy_kwh, 0) as total_energy_kwh,
    telemetry_hours.max_energy_kwh,
    telemetry_hours.total_voltage_v,
    telemetry_hours.min_voltage_v,
    telemetry_hours.max_voltage_v,
    coalesce(telemetry_hours.compliant_voltage_count, 0) as compliant_voltage_count,
    telemetry_hours.total_battery_pct,
    telemetry_hours.min_battery_pct,
    coalesce(telemetry_hours.warning_count, 0) as warning_count,
    coalesce(telemetry_hours.error_status_count, 0) as error_status_count,
    coalesce(telemetry_hours.zero_energy_reading_count, 0) as zero_energy_reading_count,
    coalesce(telemetry_hours.off_grid_reading_count, 0) as off_grid_reading_count,
    telemetry_hours.first_battery_pct,
    coalesce(telemetry_hours.stuck_reading_count, 0) as stuck_reading_count,
    coalesce(telemetry_hours.unexplained_warning_count, 0) as unexplained_warning_count,
    telemetry_hours.min_register_kwh,
    telemetry_hours.max_register_kwh,
    telemetry_hours.first_reading_at,
    telemetry_hours.last_reading_at,
    coalesce(fault_hours.info_event_count, 0) as info_event_count,
    coalesce(fault_hours.warning_event_count, 0) as warning_event_count,
    coalesce(fault_hours.error_event_count, 0) as error_event_count,
    coalesce(fault_hours.critical_event_count, 0) as critical_event_count,
    nullif(fault_hours.fault_event_codes, '') as fault_event_codes,
    cast({{ pipeline_batch_id() }} as bigint) as batch_id
from telemetry_hours
full outer join fault_hours
    on
        telemetry_hours.device_id = fault_hours.device_id
        and telemetry_hours.local_hour_start = fault_hours.local_hour_start
left join devices on coalesce(telemetry_hours.device_id, fault_hours.device_id) = devices.device_id
{%- if is_incremental() %}
    where
        greatest(coalesce(telemetry_hours.max_batch_id, -1), coalesce(fault_hours.max_batch_id, -1))
        > {{ watermark }}
{%- endif %}
