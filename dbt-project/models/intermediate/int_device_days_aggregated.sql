{#-
    Telemetry and fault-log statistics per device per local day (macros/time_model.sql), the inputs
    of the health rules: the sum of the day's rows of int_device_hours_aggregated (23, 24 or 25 of
    them). Only device-days with a reading or an event have a row; device_health adds the silent
    meters.

    Incremental by device-day: a run recomputes the device-days whose hours changed since this
    table's watermark (the highest batch_id here), in one MERGE, reading hour rows only.
-#}
{{ config(
    unique_key=['device_id', 'reading_date'],
    properties={'partitioning': "ARRAY['month(reading_date)']"}
) }}

{%- if is_incremental() -%}
    {%- set watermark = stored_max_batch_id(this) -%}
    {%- set touched_dates = [] -%}
    {%- do collect_new_dates(ref('int_device_hours_aggregated'), 'usage_date', watermark, touched_dates) -%}
{%- endif %}

with

hours as (
    select *
    from {{ ref('int_device_hours_aggregated') }}
    {%- if is_incremental() %}
        where usage_date in ({{ dates_relation(touched_dates, 'usage_date') }})
    {%- endif %}
),

days as (
    select
        device_id,
        usage_date,
        arbitrary(customer_id) as customer_id,
        sum(reading_count) as reading_count,
        max(interval_seconds) as interval_seconds,
        sum(total_energy_kwh) as total_energy_kwh,
        max(max_energy_kwh) as max_energy_kwh,
        sum(total_voltage_v) as total_voltage_v,
        min(min_voltage_v) as min_voltage_v,
        max(max_voltage_v) as max_voltage_v,
        sum(compliant_voltage_count) as compliant_voltage_count,
        sum(total_battery_pct) as total_battery_pct,
        min(min_battery_pct) as min_battery_pct,
        sum(warning_count) as warning_count,
        sum(error_status_count) as error_status_count,
        sum(zero_energy_reading_count) as zero_energy_reading_count,
        sum(off_grid_reading_count) as off_grid_reading_count,
        min_by(first_battery_pct, first_reading_at) as first_battery_pct,
        sum(stuck_reading_count) as stuck_reading_count,
        sum(unexplained_warning_count) as unexplained_warning_count,
        min(min_register_kwh) as min_register_kwh,
        max(max_register_kwh) as max_register_kwh,
        min(first_reading_at) as first_reading_at,
        max(last_reading_at) as last_reading_at,
        sum(info_event_count) as info_event_count,
        sum(warning_event_count) as warning_event_count,
        sum(error_event_count) as error_event_count,
        sum(critical_event_count) as critical_event_count,
        array_join(array_sort(array_distinct(flatten(
            array_agg(split(fault_event_codes, ',')) filter (where fault_event_codes is not null)
        ))), ',') as fault_event_codes
    from hours
    group by device_id, usage_date
    {%- if is_incremental() %}
        having max(batch_id) > {{ watermark }}
    {%- endif %}
)

select
    days.device_id,
    days.customer_id,
    days.usage_date as reading_date,
    days.reading_count,
    days.interval_seconds,
    days.total_energy_kwh,
    days.max_energy_kwh,
    days.total_voltage_v,
    days.min_voltage_v,
    days.max_voltage_v,
    days.compliant_voltage_count,
    days.total_battery_pct / nullif(days.reading_count, 0) as avg_battery_pct,
    days.min_battery_pct,
    days.warning_count,
    days.error_status_count,
    days.zero_energy_reading_count,
    days.off_grid_reading_count,
    days.first_battery_pct,
    days.stuck_reading_count,
    days.unexplained_warning_count,
    days.min_register_kwh,
    days.max_register_kwh,
    days.first_reading_at,
    days.last_reading_at,
    days.info_event_count,
    days.warning_event_count,
    days.error_event_count,
    days.critical_event_count,
    nullif(days.fault_event_codes, '') as fault_event_codes,
    cast({{ pipeline_batch_id() }} as bigint) as batch_id,
    {{ run_loaded_at() }} as aggregated_at
from days
