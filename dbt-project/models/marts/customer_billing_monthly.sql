{#- Energy and cost per customer per calendar month (UTC) and time-of-use period, from
    customer_billing_daily. Incremental: recomputes months touched since the watermark. -#}
{{ config(
    unique_key=['customer_id', 'billing_month', 'tou_period'],
    properties={'partitioning': "ARRAY['year(billing_month)']"}
) }}

{%- if is_incremental() -%}
    {%- set touched_months = [] -%}
    {%- do collect_dates(
        "select distinct date_trunc('month', billing_date) from " ~ ref('customer_billing_daily')
        ~ " where loaded_at > " ~ stored_max_timestamp(this, 'loaded_at'),
        touched_months
    ) -%}
{%- endif %}

select
    customer_id,
    date_trunc('month', billing_date) as billing_month,
    tou_period,
    arbitrary(tariff_id) as tariff_id,
    arbitrary(currency) as currency,
    sum(energy_kwh) as energy_kwh,
    sum(energy_cost) as energy_cost,
    count(*) as billed_day_count,
    max(loaded_at) as loaded_at
from {{ ref('customer_billing_daily') }}
{%- if is_incremental() %}
    where date_trunc('month', billing_date) in ({{ dates_relation(touched_months, 'billing_month') }})
{%- endif %}
group by 1, 2, 3
