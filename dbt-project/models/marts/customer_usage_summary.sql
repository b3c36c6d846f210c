{#- Contract mart (its columns: tests/helpers/contract.py): one row per customer per local day
    with at least one reading, from device_health, and the energy estimated for its gaps, from
    device_intervals. Alert status considers every meter of the customer that day, silent ones
    included. Incremental: recomputes the local days whose device_health or device_intervals rows
    changed since this table's watermark, in one MERGE. -#}
{{ config(
    unique_key=['customer_id', 'reading_date'],
    properties={'partitioning': "ARRAY['month(reading_date)']"}
) }}

{%- if is_incremental() -%}
    {%- set watermark = stored_max_batch_id(this) -%}
    {%- set touched_dates = [] -%}
    {%- for upstream in [ref('device_health'), ref('device_intervals')] -%}
        {%- do collect_new_dates(upstream, 'reading_date', watermark, touched_dates) -%}
    {%- endfor -%}
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
),

estimates as (
    select
        customer_id,
        reading_date,
        sum(energy_kwh) as estimated_energy_kwh
    from {{ ref('device_intervals') }}
    where
        is_estimated
        {%- if is_incremental() %}
            and reading_date in ({{ dates_relation(touched_dates, 'reading_date') }})
            and {{ in_local_days('interval_end_at', touched_dates) }}
        {%- endif %}
    group by customer_id, reading_date
),

customer_days as (
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
    from device_days
    group by customer_id, reading_date
    having sum(reading_count) > 0
),

estimated as (
    select
        customer_days.*,
        coalesce(estimates.estimated_energy_kwh, 0) as estimated_energy_kwh
    from customer_days
    left join estimates
        on customer_days.customer_id = estimates.customer_id and customer_days.reading_date = estimates.reading_date
)

select
    *,
    estimated_energy_kwh / nullif(total_energy_kwh + estimated_energy_kwh, 0) as estimated_energy_share,
    coalesce(
        estimated_energy_kwh / nullif(total_energy_kwh + estimated_energy_kwh, 0) > {{ var('billing_max_estimated_share') }},
        false
    ) as is_billing_quality_flagged,
    cast({{ pipeline_batch_id() }} as bigint) as batch_id
from estimated
