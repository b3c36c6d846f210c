{#-
    Energy per customer per local hour: the sum over the customer's meters of
    int_device_hours_aggregated. A reading's energy counts in the local hour that contains
    reading_at - 1 second (macros/time_model.sql), so a DST day has 23 or 25 rows.
    usage_hour_at is that hour's start as a UTC instant (the key; unambiguous when the clocks go
    back), local_hour its hour on the local clock (0-23), usage_date its local date.
    Incremental: recomputes the customer-hours whose device-hours changed since this table's
    watermark (the highest batch_id here), in one MERGE.
-#}
{{ config(
    unique_key=['customer_id', 'usage_hour_at'],
    properties={'partitioning': "ARRAY['month(usage_date)']"}
) }}

{%- if is_incremental() -%}
    {%- set watermark = stored_max_batch_id(this) -%}
    {%- set touched_dates = [] -%}
    {%- do collect_new_dates(ref('int_device_hours_aggregated'), 'usage_date', watermark, touched_dates) -%}
{%- endif %}

with

hours as (
    select
        customer_id,
        device_id,
        usage_hour_at,
        usage_date,
        local_hour,
        reading_count,
        total_energy_kwh,
        total_voltage_v,
        batch_id
    from {{ ref('int_device_hours_aggregated') }}
    where
        reading_count > 0
        {%- if is_incremental() %}
            and usage_date in ({{ dates_relation(touched_dates, 'usage_date') }})
        {%- endif %}
),

customers as (
    select
        customer_id,
        timezone
    from {{ ref('stg_customers') }}
),

hourly as (
    select
        customer_id,
        usage_hour_at,
        arbitrary(usage_date) as usage_date,
        arbitrary(local_hour) as local_hour,
        sum(total_energy_kwh) as energy_kwh,
        sum(reading_count) as reading_count,
        count(*) as device_count,
        sum(total_voltage_v) / sum(reading_count) as avg_voltage_v
    from hours
    group by customer_id, usage_hour_at
    {%- if is_incremental() %}
        having max(batch_id) > {{ watermark }}
    {%- endif %}
)

select
    hourly.customer_id,
    hourly.usage_hour_at,
    hourly.usage_date,
    hourly.local_hour,
    customers.timezone,
    hourly.energy_kwh,
    hourly.reading_count,
    hourly.device_count,
    hourly.avg_voltage_v,
    cast({{ pipeline_batch_id() }} as bigint) as batch_id
from hourly
left join customers on hourly.customer_id = customers.customer_id
