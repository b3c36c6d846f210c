{#-
    Energy and cost per customer per local day and time-of-use period of the customer's tariff:
    the actual energy of customer_usage_hourly, and the energy VEE estimated for gaps
    (device_intervals), each interval in the local hour that holds its end - 1 second, as a
    reading. Each local day gets a day type in the customer's zone: HOLIDAY (a public holiday of
    the zone's country), SATURDAY, SUNDAY or WEEKDAY. It is priced by the
    tariff's periods of the first day type the tariff has: HOLIDAY -> SUNDAY -> WEEKEND,
    SATURDAY -> WEEKEND, SUNDAY -> WEEKEND, WEEKDAY; the local hour picks the period
    [start_hour, end_hour). Cost = sum over hours of energy x that hour's price. Hours no
    period covers are kept as tou_period 'UNPRICED' with null cost (a test warns).
    Incremental: recomputes the customer-days whose hourly rows or intervals changed since this
    table's watermark (the highest batch_id here), each one whole: a period it no longer has (a
    weekday's PEAK once the day is a holiday, a tariff changed) is deleted by the same MERGE. An
    estimate can change with no new reading in its hour (a late reading shortens its gap), hence
    the intervals. Holidays and tariffs changed later apply to the days recomputed later.
-#}
{{ config(
    unique_key=['customer_id', 'billing_date', 'tou_period'],
    merge_replaces_groups_by=['customer_id', 'billing_date'],
    properties={'partitioning': "ARRAY['month(billing_date)']"}
) }}

{%- if is_incremental() -%}
    {%- set watermark = stored_max_batch_id(this) -%}
    {%- set touched_dates = [] -%}
    {%- do collect_new_dates(ref('customer_usage_hourly'), 'usage_date', watermark, touched_dates) -%}
    {%- do collect_new_dates(ref('device_intervals'), 'reading_date', watermark, touched_dates) -%}
{%- endif %}

with

changed_days as (
    {#- The customer-days to recompute (none on a full build), read by both inputs below. #}
    {%- if is_incremental() %}
        select
            customer_id,
            usage_date
        from {{ ref('customer_usage_hourly') }}
        where batch_id > {{ watermark }} and usage_date in ({{ dates_relation(touched_dates, 'usage_date') }})
        union distinct
        select
            customer_id,
            reading_date
        from {{ ref('device_intervals') }}
        where batch_id > {{ watermark }} and reading_date in ({{ dates_relation(touched_dates, 'reading_date') }})
    {%- else %}
        select
            cast(null as varchar) as customer_id,
            cast(null as date) as usage_date
        where false
    {%- endif %}
),

customers as (
    select
        customer_id,
        tariff_id,
        timezone
    from {{ ref('stg_customers') }}
),

actual_hours as (
    select
        customer_id,
        usage_date,
        usage_hour_at,
        local_hour,
        energy_kwh
    from {{ ref('customer_usage_hourly') }}
    {%- if is_incremental() %}
        where
            usage_date in ({{ dates_relation(touched_dates, 'usage_date') }})
            and (customer_id, usage_date) in (
                select
                    changed_days.customer_id,
                    changed_days.usage_date
                from changed_days
            )
    {%- endif %}
),

estimated_intervals as (
    select
        intervals.customer_id,
        intervals.energy_kwh,
        date_trunc(
            'hour',
            {{ local_interval_start('intervals.interval_end_at', customer_timezone('customers.timezone')) }}
        ) as local_hour_start
    from {{ ref('device_intervals') }} as intervals
    left join customers on intervals.customer_id = customers.customer_id
    where
        intervals.is_estimated
        {%- if is_incremental() %}
            and intervals.reading_date in ({{ dates_relation(touched_dates, 'reading_date') }})
            and {{ in_local_days('intervals.interval_end_at', touched_dates) }}
            and (intervals.customer_id, intervals.reading_date) in (
                select
                    changed_days.customer_id,
                    changed_days.usage_date
                from changed_days
            )
        {%- endif %}
),

estimated_hours as (
    select
        customer_id,
        cast(at_timezone(local_hour_start, 'UTC') as timestamp(6) with time zone) as usage_hour_at,
        cast(local_hour_start as date) as usage_date,
        hour(local_hour_start) as local_hour,
        sum(energy_kwh) as estimated_energy_kwh
    from estimated_intervals
    group by customer_id, local_hour_start
),

hourly as (
    select
        coalesce(actual_hours.customer_id, estimated_hours.customer_id) as customer_id,
        coalesce(actual_hours.usage_date, estimated_hours.usage_date) as usage_date,
        coalesce(actual_hours.local_hour, estimated_hours.local_hour) as usage_hour,
        coalesce(actual_hours.energy_kwh, 0) as energy_kwh,
        coalesce(estimated_hours.estimated_energy_kwh, 0) as estimated_energy_kwh
    from actual_hours
    full outer join estimated_hours
        on
            actual_hours.customer_id = estimated_hours.customer_id
            and actual_hours.usage_hour_at = estimated_hours.usage_hour_at
),

timezone_countries as (
    select
        timezone,
        country_code
    from {{ ref('stg_timezone_countries') }}
),

public_holidays as (
    select
        country_code,
        holiday_date
    from {{ ref('stg_public_holidays') }}
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

tariff_day_types as (
    select
        tariff_id,
        bool_or(day_type = 'SATURDAY') as has_saturday_periods,
        bool_or(day_type = 'SUNDAY') as has_sunday_periods,
        bool_or(day_type = 'HOLIDAY') as has_holiday_periods
    from periods
    group by tariff_id
),

calendar_days as (
    select
        hourly.customer_id,
        hourly.usage_date,
        hourly.usage_hour,
        hourly.energy_kwh,
        hourly.estimated_energy_kwh,
        customers.tariff_id,
        public_holidays.holiday_date is not null as is_holiday,
        case
            when public_holidays.holiday_date is not null then 'HOLIDAY'
            when day_of_week(hourly.usage_date) = 6 then 'SATURDAY'
            when day_of_week(hourly.usage_date) = 7 then 'SUNDAY'
            else 'WEEKDAY'
        end as calendar_day_type
    from hourly
    left join customers on hourly.customer_id = customers.customer_id
    left join timezone_countries on customers.timezone = timezone_countries.timezone
    left join public_holidays
        on
            timezone_countries.country_code = public_holidays.country_code
            and hourly.usage_date = public_holidays.holiday_date
),

-- The tariff's own periods for the day type if it has any, else those it falls back to.
typed as (
    select
        calendar_days.customer_id,
        calendar_days.usage_date,
        calendar_days.usage_hour,
        calendar_days.energy_kwh,
        calendar_days.estimated_energy_kwh,
        calendar_days.tariff_id,
        calendar_days.is_holiday,
        case
            when calendar_days.calendar_day_type = 'WEEKDAY' then 'WEEKDAY'
            when calendar_days.calendar_day_type = 'HOLIDAY' and tariff_day_types.has_holiday_periods then 'HOLIDAY'
            when
                calendar_days.calendar_day_type in ('HOLIDAY', 'SUNDAY')
                and tariff_day_types.has_sunday_periods
                then 'SUNDAY'
            when
                calendar_days.calendar_day_type = 'SATURDAY'
                and tariff_day_types.has_saturday_periods
                then 'SATURDAY'
            else 'WEEKEND'
        end as day_type
    from calendar_days
    left join tariff_day_types on calendar_days.tariff_id = tariff_day_types.tariff_id
),

priced as (
    select
        typed.customer_id,
        typed.usage_date,
        typed.day_type,
        typed.is_holiday,
        typed.tariff_id,
        tariffs.currency,
        typed.energy_kwh,
        typed.estimated_energy_kwh,
        coalesce(periods.tou_period, 'UNPRICED') as tou_period,
        typed.energy_kwh * periods.price_per_kwh as energy_cost,
        typed.estimated_energy_kwh * periods.price_per_kwh as estimated_energy_cost
    from typed
    left join tariffs on typed.tariff_id = tariffs.tariff_id
    left join periods
        on
            typed.tariff_id = periods.tariff_id
            and typed.day_type = periods.day_type
            and typed.usage_hour >= periods.start_hour
            and typed.usage_hour < periods.end_hour
)

select
    customer_id,
    usage_date as billing_date,
    tou_period,
    arbitrary(day_type) as day_type,
    arbitrary(is_holiday) as is_holiday,
    arbitrary(tariff_id) as tariff_id,
    arbitrary(currency) as currency,
    sum(energy_kwh) as energy_kwh,
    sum(energy_cost) as energy_cost,
    sum(estimated_energy_kwh) as estimated_energy_kwh,
    sum(estimated_energy_cost) as estimated_energy_cost,
    sum(estimated_energy_kwh) / nullif(sum(energy_kwh) + sum(estimated_energy_kwh), 0) as estimated_energy_share,
    count(*) as billed_hour_count,
    cast({{ pipeline_batch_id() }} as bigint) as batch_id
from priced
group by customer_id, usage_date, tou_period
