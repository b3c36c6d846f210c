{#-
    Device health per device per UTC day: telemetry statistics, fault-log events by severity,
    read success rate, EN 50160 voltage compliance, battery, a 0-100 score, a status and
    machine-readable reason codes. Rules: device_health.yml (and the README).
    Incremental: re-scores the device-days int_device_days_aggregated recomputed since this
    table's watermark (max aggregated_at, stored here), in one MERGE.
-#}
{{ config(
    unique_key=['device_id', 'reading_date'],
    properties={'partitioning': "ARRAY['year(reading_date)']"}
) }}

with

device_days as (
    select *
    from {{ ref('int_device_days_aggregated') }}
    {%- if is_incremental() %}
        where aggregated_at > {{ stored_max_timestamp(this, 'aggregated_at') }}
    {%- endif %}
),

measured as (
    select
        *,
        case
            when expected_reading_count > 0
                then least(1.0, cast(reading_count as double) / expected_reading_count)
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
                case when strpos(codes, 'C301') > 0 then 'COMM_LOSS' end,
                case
                    when zero_energy_reading_count >= 8 or strpos(codes, 'R401') > 0
                        then 'STUCK_REGISTER'
                end,
                case
                    when off_grid_reading_count >= 4 or strpos(codes, 'T501') > 0
                        then 'CLOCK_DRIFT'
                end,
                case when strpos(codes, 'X601') > 0 then 'TAMPER' end,
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
    aggregated_at
from reasons
