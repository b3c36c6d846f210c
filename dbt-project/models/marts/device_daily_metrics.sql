{#- Contract mart (its columns: tests/helpers/contract.py): exactly these columns, one row per
    device per UTC day with at least one reading. A view over the incremental device_health
    table, which carries the watermark columns this contract leaves out. -#}
{{ config(materialized='view') }}

select
    device_id,
    customer_id,
    reading_date,
    total_energy_kwh,
    avg_voltage_v as avg_voltage,
    min_voltage_v as min_voltage,
    max_voltage_v as max_voltage,
    avg_battery_pct,
    reading_count,
    warning_count,
    health_score_pct,
    device_health_status
from {{ ref('device_health') }}
where reading_count > 0
