{#- Contract mart (DESIGN.md §5): exactly these columns, one row per customer per UTC day with
    at least one reading. A view over the incremental device_health table. Alert status
    considers every meter of the customer that day, including silent ones. -#}
{{ config(materialized='view') }}

select
    customer_id,
    reading_date,
    sum(total_energy_kwh) as total_energy_kwh,
    sum(avg_voltage_v * reading_count) / nullif(sum(reading_count), 0) as avg_voltage,
    count_if(reading_count > 0) as active_device_count,
    sum(warning_count) as total_warnings,
    round(avg(health_score_pct), 1) as avg_device_health,
    case
        when count_if(device_health_status = 'UNHEALTHY') > 0 then 'ACTION_REQUIRED'
        when count_if(device_health_status = 'DEGRADED') > 0 or avg(health_score_pct) < 80
            then 'MONITOR'
        else 'NORMAL'
    end as customer_alert_status
from {{ ref('device_health') }}
group by customer_id, reading_date
having sum(reading_count) > 0
