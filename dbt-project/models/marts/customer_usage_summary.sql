{#- Contract mart (its columns: tests/helpers/contract.py): one row per customer per local day
    with at least one reading, from device_health. Alert status considers every meter of the
    customer that day, silent ones included. Incremental: recomputes the local days whose
    device_health rows changed since this table's watermark, in one MERGE. -#}
{{ config(
    unique_key=['customer_id', 'reading_date'],
    properties={'partitioning': "ARRAY['month(reading_date)']"}
) }}

{%- if is_incremental() -%}
    {%- set touched_dates = [] -%}
    {%- do collect_dates(
        "select distinct reading_date from " ~ ref('device_health') ~ " where batch_id > " ~ stored_max_batch_id(this),
        touched_dates
    ) -%}
{%- endif %}

with

device_days as (
    select
        customer_id,
        reading_date,
        total_energy_kwh,
        avg_voltage_v,
        reading_count,
        warning_count,
        health_score_pct,
        device_health_status
    from {{ ref('device_health') }}
    {%- if is_incremental() %}
        where reading_date in ({{ dates_relation(touched_dates, 'reading_date') }})
    {%- endif %}
)

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
    end as customer_alert_status,
    cast({{ pipeline_batch_id() }} as bigint) as batch_id
from device_days
group by customer_id, reading_date
having sum(reading_count) > 0
