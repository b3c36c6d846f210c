{#- Energy and cost per customer per local calendar month and time-of-use period, from
    customer_billing_daily. Incremental: recomputes the customer-months whose daily rows changed
    since this table's watermark (the highest batch_id here), each one whole (a period the month
    no longer has is deleted by the same MERGE). The billing-quality flag is the whole bill's:
    the customer-month, all periods together. -#}
{{ config(
    unique_key=['customer_id', 'billing_month', 'tou_period'],
    merge_replaces_groups_by=['customer_id', 'billing_month'],
    properties={'partitioning': "ARRAY['year(billing_month)']"}
) }}

{%- if is_incremental() -%}
    {%- set watermark = stored_max_batch_id(this) -%}
    {%- set touched_months = [] -%}
    {%- do collect_new_dates(
        ref('customer_billing_daily'), "date_trunc('month', billing_date)", watermark, touched_months
    ) -%}
{%- endif %}

with

periods as (
    select
        customer_id,
        date_trunc('month', billing_date) as billing_month,
        tou_period,
        arbitrary(tariff_id) as tariff_id,
        arbitrary(currency) as currency,
        sum(energy_kwh) as energy_kwh,
        sum(energy_cost) as energy_cost,
        sum(estimated_energy_kwh) as estimated_energy_kwh,
        sum(estimated_energy_cost) as estimated_energy_cost,
        count(*) as billed_day_count
    from {{ ref('customer_billing_daily') }}
    {%- if is_incremental() %}
        where
            date_trunc('month', billing_date) in ({{ dates_relation(touched_months, 'billing_month') }})
            and (customer_id, date_trunc('month', billing_date)) in (
                select
                    changed.customer_id,
                    date_trunc('month', changed.billing_date) as billing_month
                from {{ ref('customer_billing_daily') }} as changed
                where changed.batch_id > {{ watermark }}
            )
    {%- endif %}
    group by 1, 2, 3
),

bills as (
    select
        *,
        sum(estimated_energy_kwh) over (partition by customer_id, billing_month)
        / nullif(sum(energy_kwh + estimated_energy_kwh) over (partition by customer_id, billing_month), 0)
            as bill_estimated_energy_share
    from periods
)

select
    customer_id,
    billing_month,
    tou_period,
    tariff_id,
    currency,
    energy_kwh,
    energy_cost,
    estimated_energy_kwh,
    estimated_energy_cost,
    estimated_energy_kwh / nullif(energy_kwh + estimated_energy_kwh, 0) as estimated_energy_share,
    coalesce(bill_estimated_energy_share > {{ var('billing_max_estimated_share') }}, false)
        as is_billing_quality_flagged,
    billed_day_count,
    cast({{ pipeline_batch_id() }} as bigint) as batch_id
from bills
