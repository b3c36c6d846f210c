{#-
    Precision and recall of device_health_status against the simulator's ground truth
    (postgresql fault_labels). A device-day (the device's local day) is a true fault when a
    label interval [started_at, ended_at) overlaps it (open labels run to now). Two positive rules:
    NOT_HEALTHY (DEGRADED or UNHEALTHY) and UNHEALTHY. One row per rule with fault_type 'ALL',
    plus per fault type (recall only: a false positive has no type). Empty without labels.
-#}
{{ config(materialized='view') }}

with

health as (
    select
        health.device_id,
        health.reading_date,
        health.device_health_status,
        with_timezone(cast(health.reading_date as timestamp(6)), coalesce(devices.timezone, {{ utility_timezone() }}))
            as day_start_at,
        with_timezone(
            cast(health.reading_date + interval '1' day as timestamp(6)), coalesce(devices.timezone, {{ utility_timezone() }})
        ) as day_end_at
    from {{ ref('device_health') }} as health
    left join {{ ref('int_devices_located') }} as devices on health.device_id = devices.device_id
),

labels as (
    select
        device_id,
        fault_type,
        started_at,
        coalesce(ended_at, current_timestamp) as ended_at
    from {{ ref('stg_fault_labels') }}
),

labelled_days as (
    select distinct
        health.device_id,
        health.reading_date,
        labels.fault_type
    from health
    inner join labels
        on
            health.device_id = labels.device_id
            and health.day_end_at > labels.started_at
            and health.day_start_at < labels.ended_at
),

rules as (
    select rule_values.rule from (values 'NOT_HEALTHY', 'UNHEALTHY') as rule_values (rule)
),

labelled_device_days as (
    select distinct
        device_id,
        reading_date
    from labelled_days
),

scored as (
    select
        rules.rule,
        health.device_id,
        health.reading_date,
        case
            when rules.rule = 'UNHEALTHY' then health.device_health_status = 'UNHEALTHY'
            else health.device_health_status != 'HEALTHY'
        end as is_predicted_fault,
        labelled_device_days.device_id is not null as is_labelled_fault
    from health
    cross join rules
    left join labelled_device_days
        on
            health.device_id = labelled_device_days.device_id
            and health.reading_date = labelled_device_days.reading_date
),

overall as (
    select
        rule as positive_status_rule,
        'ALL' as fault_type,
        count_if(is_predicted_fault and is_labelled_fault) as true_positive_count,
        count_if(is_predicted_fault and not is_labelled_fault) as false_positive_count,
        count_if(not is_predicted_fault and is_labelled_fault) as false_negative_count,
        count_if(not is_predicted_fault and not is_labelled_fault) as true_negative_count
    from scored
    group by rule
),

per_type as (
    select
        scored.rule as positive_status_rule,
        labelled_days.fault_type,
        count_if(scored.is_predicted_fault) as true_positive_count,
        cast(null as bigint) as false_positive_count,
        count_if(not scored.is_predicted_fault) as false_negative_count,
        cast(null as bigint) as true_negative_count
    from scored
    inner join labelled_days
        on
            scored.device_id = labelled_days.device_id
            and scored.reading_date = labelled_days.reading_date
    group by scored.rule, labelled_days.fault_type
),

combined as (
    select * from overall where (select count(*) from labels) > 0
    union all
    select * from per_type
)

select
    positive_status_rule,
    fault_type,
    true_positive_count,
    false_positive_count,
    false_negative_count,
    true_negative_count,
    cast(true_positive_count as double)
    / nullif(true_positive_count + false_positive_count, 0) as precision_share,
    cast(true_positive_count as double)
    / nullif(true_positive_count + false_negative_count, 0) as recall_share
from combined
