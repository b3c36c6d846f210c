{#-
    Energy and cost per customer per local day and time-of-use period of the customer's tariff
    (postgresql tariff_periods: WEEKDAY Mon-Fri / WEEKEND Sat-Sun of the local calendar, local
    hours [start_hour, end_hour)), from customer_usage_hourly. Cost = sum over hours of energy x
    that hour's price. Hours no period covers are kept as tou_period 'UNPRICED' with null cost
    (a test warns). Incremental: recomputes the customer-days whose hourly rows changed since
    this table's watermark (the highest batch_id here).
-#}
{{ config(
    unique_key=['customer_id', 'billing_date', 'tou_period'],
    properties={'partitioning': "ARRAY['month(billing_date)']"}
) }}

{%- if is_incremental() -%}
    {%- set watermark = stored_max_batch_id(this) -%}
    {%- set touched_dates = [] -%}
    {%- do collect_dates(
        "select distinct usage_date from " ~ ref('customer_usage_hourly') ~ " where batch_id > " ~ watermark,
        touched_dates
    ) -%}
{%- endif %}

with

hourly as (
    select
        customer_id,
        usage_date,
        usage_hour_at,
        energy_kwh,
        local_hour as usage_hour,
        case when day_of_week(usage_date) in (6, 7) then 'WEEKEND' else 'WEEKDAY' end as day_type
    from {{ ref('customer_usage_hourly') }}
    {%- if is_incremental() %}
        where
            usage_date in ({{ dates_relation(touched_dates, 'usage_date') }})
            and (customer_id, usage_date) in (
                select
                    changed.customer_id,
                    changed.usage_date
                from {{ ref('customer_usage_hourly') }} as changed
                where changed.batch_id > {{ watermark }}
            )
    {%- endif %}
),

customers as (
    select
        customer_id,
        tariff_id
    from {{ ref('stg_customers') }}
),

tariffs as (
    select
        tariff_id,
        currency
    from {{ ref('stg_tariffs') }}
),

periods as (
    select
        tariff_id,
        day_type,
        tou_period,
        price_per_kwh,
        start_hour,
        end_hour
    from {{ ref('stg_tariff_periods') }}
),

priced as (
    select
        hourly.customer_id,
        hourly.usage_date,
        customers.tariff_id,
        tariffs.currency,
        hourly.energy_kwh,
        coalesce(periods.tou_period, 'UNPRICED') as tou_period,
        hourly.energy_kwh * periods.price_per_kwh as energy_cost
    from hourly
    left join customers on hourly.customer_id = customers.customer_id
    left join tariffs on customers.tariff_id = tariffs.tariff_id
    left join periods
        on
            customers.tariff_id = periods.tariff_id
            and hourly.day_type = periods.day_type
            and hourly.usage_hour >= periods.start_hour
            and hourly.usage_hour < periods.end_hour
)

select
    customer_id,
    usage_date as billing_date,
    tou_period,
    arbitrary(tariff_id) as tariff_id,
    arbitrary(currency) as currency,
    sum(energy_kwh) as energy_kwh,
    sum(energy_cost) as energy_cost,
    count(*) as billed_hour_count,
    cast({{ pipeline_batch_id() }} as bigint) as batch_id
from priced
group by customer_id, usage_date, tou_period
