{#-
    Device health per device per local day: telemetry statistics, fault-log events by severity,
    read success rate, EN 50160 voltage compliance, battery, a 0-100 score, a status and
    machine-readable reason codes. Rules: device_health.yml (and the README).

    Incremental by local day: for every day that int_device_days_aggregated changed since this
    table's watermark (the highest batch_id here), re-scores every meter of that day, including
    active meters that sent nothing (reading_count 0), in one MERGE. Expected readings count the
    interval ends of the local day (92, 96 or 100 at 15 min), and for the current day only
    those elapsed when the run started.
-#}
{{ config(
    unique_key=['device_id', 'reading_date'],
    properties={'partitioning': "ARRAY['day(reading_date)']"}
) }}

{%- set interval_minutes = var('expected_reading_interval_minutes') | int -%}
{%- if is_incremental() -%}
    {%- set touched_dates = [] -%}
    {%- do collect_new_dates(
        ref('int_device_days_aggregated'), 'reading_date', stored_max_batch_id(this), touched_dates
    ) -%}
{%- endif %}

with

aggregated as (
    select *
    from {{ ref('int_device_days_aggregated') }}
    {%- if is_incremental() %}
        where reading_date in ({{ dates_relation(touched_dates, 'reading_date') }})
    {%- endif %}
),

devices as (
    select
        device_id,
        customer_id,
        install_date,
        is_active,
        timezone
    from {{ ref('int_devices_located') }}
),

days as (
    select distinct reading_date from aggregated
),

device_grid as (
    select
        devices.device_id,
        days.reading_date
    from devices
    cross join days
    where devices.is_active and devices.install_date <= days.reading_date
    union distinct
    select
        device_id,
        reading_date
    from aggregated
),

device_days as (
    select
        device_grid.device_id,
        coalesce(devices.customer_id, aggregated.customer_id) as customer_id,
        device_grid.reading_date,
        coalesce(aggregated.reading_count, 0) as reading_count,
        coalesce(aggregated.total_energy_kwh, 0) as total_energy_kwh,
        aggregated.total_voltage_v,
        aggregated.min_voltage_v,
        aggregated.max_voltage_v,
        coalesce(aggregated.compliant_voltage_count, 0) as compliant_voltage_count,
        aggregated.avg_battery_pct,
        aggregated.min_battery_pct,
        aggregated.first_battery_pct,
        coalesce(aggregated.warning_count, 0) as warning_count,
        coalesce(aggregated.error_status_count, 0) as error_status_count,
        coalesce(aggregated.zero_energy_reading_count, 0) as zero_energy_reading_count,
        coalesce(aggregated.off_grid_reading_count, 0) as off_grid_reading_count,
        coalesce(aggregated.stuck_reading_count, 0) as stuck_reading_count,
        coalesce(aggregated.unexplained_warning_count, 0) as unexplained_warning_count,
        coalesce(aggregated.info_event_count, 0) as info_event_count,
        coalesce(aggregated.warning_event_count, 0) as warning_event_count,
        coalesce(aggregated.error_event_count, 0) as error_event_count,
        coalesce(aggregated.critical_event_count, 0) as critical_event_count,
        aggregated.fault_event_codes,
        coalesce(aggregated.interval_seconds, {{ interval_minutes * 60 }}) as interval_seconds,
        greatest(
            0,
            date_diff(
                'second',
                with_timezone(cast(device_grid.reading_date as timestamp(6)), coalesce(devices.timezone, {{ utility_timezone() }})),
                least(
                    with_timezone(
                        cast(device_grid.reading_date + interval '1' day as timestamp(6)),
                        coalesce(devices.timezone, {{ utility_timezone() }})
                    ),
                    {{ run_loaded_at() }}
                )
            )
        ) as elapsed_day_seconds
    from device_grid
    left join devices on device_grid.device_id = devices.device_id
    left join aggregated
        on
            device_grid.device_id = aggregated.device_id
            and device_grid.reading_date = aggregated.reading_date
),

measured as (
    select
        *,
        elapsed_day_seconds / interval_seconds as expected_reading_count,
        case
            when elapsed_day_seconds / interval_seconds > 0
                then least(1.0, cast(reading_count as double) / (elapsed_day_seconds / interval_seconds))
        end as read_success_rate,
        case
            when reading_count > 0 then cast(compliant_voltage_count as double) / reading_count
        end as voltage_compliance_share,
        case
            when reading_count > 0 then cast(warning_count as double) / reading_count
        end as warning_share,
        total_voltage_v / nullif(reading_count, 0) as avg_voltage_v,
        coalesce(fault_event_codes, '') as codes
    from device_days
),

reasons as (
    select
        *,
        filter(
            array[
                case
                    when min_battery_pct < {{ var('critical_battery_pct') }}
                        or first_battery_pct - min_battery_pct >= {{ var('battery_failure_drop_pct') }}
                        or strpos(codes, 'B102') > 0
                        then 'BATTERY_FAILURE'
                end,
                case
                    when min_battery_pct < {{ var('low_battery_pct') }} or strpos(codes, 'B101') > 0
                        then 'LOW_BATTERY'
                end,
                case
                    when voltage_compliance_share < {{ var('voltage_compliance_min_share') }}
                        or strpos(codes, 'V201') > 0 or strpos(codes, 'V202') > 0
                        then 'VOLTAGE_OUT_OF_RANGE'
                end,
                case
                    when read_success_rate < {{ var('missing_readings_min_share') }}
                        then 'MISSING_READINGS'
                end,
                {#- C301: the link went down that day; C302: it came back, after a dropout. -#}
                case when strpos(codes, 'C301') > 0 or strpos(codes, 'C302') > 0 then 'COMM_LOSS' end,
                case
                    when zero_energy_reading_count >= {{ var('stuck_register_min_zero_readings') }}
                        or stuck_reading_count > 0
                        or strpos(codes, 'R401') > 0
                        then 'STUCK_REGISTER'
                end,
                case
                    when off_grid_reading_count >= {{ var('clock_drift_min_readings') }} or strpos(codes, 'T501') > 0
                        then 'CLOCK_DRIFT'
                end,
                case
                    when strpos(codes, 'X601') > 0
                        or unexplained_warning_count >= {{ var('tamper_min_unexplained_warnings') }}
                        then 'TAMPER'
                end,
                case when critical_event_count > 0 then 'CRITICAL_EVENT' end
            ],
            reason -> reason is not null
        ) as reason_list,
        greatest(
            0.0,
            least(
                100.0,
                100.0
                - 40.0 * (1.0 - coalesce(read_success_rate, 1.0))
                - 30.0 * (1.0 - coalesce(voltage_compliance_share, 1.0))
                - 20.0 * coalesce(warning_share, 0.0)
                - case
                    when min_battery_pct < {{ var('critical_battery_pct') }} then 25.0
                    when min_battery_pct < {{ var('low_battery_pct') }} then 10.0
                    else 0.0
                end
                - least(
                    50.0,
                    5.0 * warning_event_count + 10.0 * error_event_count + 25.0 * critical_event_count
                )
            )
        ) as raw_health_score
    from measured
)

select
    device_id,
    customer_id,
    reading_date,
    reading_count,
    expected_reading_count,
    read_success_rate,
    total_energy_kwh,
    avg_voltage_v,
    min_voltage_v,
    max_voltage_v,
    voltage_compliance_share,
    avg_battery_pct,
    min_battery_pct,
    warning_count,
    error_status_count,
    info_event_count,
    warning_event_count,
    error_event_count,
    critical_event_count,
    fault_event_codes,
    round(raw_health_score, 1) as health_score_pct,
    case
        when
            cardinality(array_intersect(reason_list, array['TAMPER', 'BATTERY_FAILURE', 'STUCK_REGISTER'])) > 0
            or read_success_rate < 0.5
            or raw_health_score < 50
            then 'UNHEALTHY'
        when cardinality(reason_list) > 0 or raw_health_score < 80 then 'DEGRADED'
        else 'HEALTHY'
    end as device_health_status,
    nullif(array_join(array_sort(reason_list), ','), '') as health_reasons,
    cast({{ pipeline_batch_id() }} as bigint) as batch_id,
    {{ run_loaded_at() }} as scored_at
from reasons
