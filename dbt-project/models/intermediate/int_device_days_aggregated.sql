{#-
    Telemetry and fault-log statistics per device per UTC day (the inputs of the health rules).

    Incremental by days touched: a run recomputes, from staging, every day that has staging rows
    loaded after this table's watermarks (telemetry_loaded_at, fault_logs_loaded_at; both stored
    in this table, so rows and watermarks commit in one MERGE). For each touched day it emits a
    row for every device that reported that day and every active meter installed by then, so a
    silent meter shows up with reading_count = 0.
-#}
{{ config(
    unique_key=['device_id', 'reading_date'],
    properties={'partitioning': "ARRAY['year(reading_date)']"}
) }}

{%- set interval_minutes = var('expected_reading_interval_minutes') | int -%}
{%- set run_day = run_date() | trim -%}
{%- set run_day_seconds = run_seconds_today() | trim -%}
{%- if is_incremental() -%}
    {%- set touched_dates = [] -%}
    {%- do collect_dates(
        "select distinct cast(reading_at as date) from " ~ ref('stg_telemetry_raw')
        ~ " where loaded_at > " ~ stored_max_timestamp(this, 'telemetry_loaded_at')
        ~ " union select distinct cast(event_at as date) from " ~ ref('stg_fault_logs')
        ~ " where loaded_at > " ~ stored_max_timestamp(this, 'fault_logs_loaded_at'),
        touched_dates
    ) -%}
    {%- if execute -%}
    {%- do log(this.identifier ~ " recomputes " ~ (touched_dates | length) ~ " day(s): "
        ~ (touched_dates | join(', ')), info=True) -%}
    {%- endif -%}
{%- endif %}

with

readings as (
    select
        device_id,
        customer_id,
        reading_at,
        energy_kwh,
        voltage_v,
        battery_pct,
        register_kwh,
        status,
        loaded_at,
        cast(reading_at as date) as reading_date,
        coalesce(interval_minutes, {{ interval_minutes }}) * 60 as interval_seconds
    from {{ ref('stg_telemetry_raw') }}
    {%- if is_incremental() %}
        where {{ in_utc_dates('reading_at', touched_dates) }}
    {%- endif %}
),

events as (
    select
        device_id,
        severity,
        event_code,
        loaded_at,
        cast(event_at as date) as reading_date
    from {{ ref('stg_fault_logs') }}
    {%- if is_incremental() %}
        where {{ in_utc_dates('event_at', touched_dates) }}
    {%- endif %}
),

devices as (
    select
        device_id,
        customer_id,
        install_date,
        is_active
    from {{ ref('stg_devices') }}
),

touched_dates as (
    {%- if is_incremental() %}
        {{ dates_relation(touched_dates, 'reading_date') }}
    {%- else %}
        select reading_date from readings
        union distinct
        select reading_date from events
    {%- endif %}
),

telemetry_days as (
    select
        device_id,
        reading_date,
        arbitrary(customer_id) as reported_customer_id,
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
        max(reading_at) as last_reading_at,
        max(loaded_at) as telemetry_loaded_at
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
        ) as fault_event_codes,
        max(loaded_at) as fault_logs_loaded_at
    from events
    group by device_id, reading_date
),

device_grid as (
    select
        devices.device_id,
        touched_dates.reading_date
    from devices
    cross join touched_dates
    where devices.is_active and devices.install_date <= touched_dates.reading_date
    union distinct
    select
        device_id,
        reading_date
    from telemetry_days
    union distinct
    select
        device_id,
        reading_date
    from fault_days
)

select
    device_grid.device_id,
    coalesce(devices.customer_id, telemetry_days.reported_customer_id) as customer_id,
    device_grid.reading_date,
    coalesce(telemetry_days.reading_count, 0) as reading_count,
    case
        when device_grid.reading_date < date '{{ run_day }}'
            then 86400 / coalesce(telemetry_days.interval_seconds, {{ interval_minutes * 60 }})
        when device_grid.reading_date = date '{{ run_day }}'
            then {{ run_day_seconds }} / coalesce(telemetry_days.interval_seconds, {{ interval_minutes * 60 }})
        else 0
    end as expected_reading_count,
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
    telemetry_days.telemetry_loaded_at,
    fault_days.fault_logs_loaded_at,
    {{ run_loaded_at() }} as aggregated_at
from device_grid
left join devices on device_grid.device_id = devices.device_id
left join telemetry_days
    on
        device_grid.device_id = telemetry_days.device_id
        and device_grid.reading_date = telemetry_days.reading_date
left join fault_days
    on
        device_grid.device_id = fault_days.device_id
        and device_grid.reading_date = fault_days.reading_date
