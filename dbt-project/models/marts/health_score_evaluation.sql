{#-
    Precision and recall of device_health against the simulator's ground truth (postgresql
    fault_labels). A device-day (the device's local day) is a true fault of a type when a label of
    that type overlaps it ([started_at, ended_at), open labels run to now). Scored: the meters
    that sent a reading, on the days they sent at least 90 % of the readings of their busiest day
    (the edges of a simulated window, and the current day, hold part of a day).

    Two overall rows (fault_type 'ALL'): NOT_HEALTHY (DEGRADED or UNHEALTHY counts as a fault)
    and UNHEALTHY, against a label of any type. Then one row per fault type: the device-day is
    predicted as that fault when one of the type's reasons fired and the status is at least the
    one the fault deserves (fault_types below; the README says why).
-#}
{{ config(materialized='view') }}

with

fault_types as (
    select
        rules.fault_type,
        rules.expected_status,
        split(rules.reason_codes, ',') as reason_codes
    from (
        values
        ('BATTERY_FAILURE', 'UNHEALTHY', 'BATTERY_FAILURE,LOW_BATTERY'),
        ('REGISTER_STUCK', 'UNHEALTHY', 'STUCK_REGISTER'),
        ('TAMPER', 'UNHEALTHY', 'TAMPER'),
        ('COMM_DROPOUT', 'DEGRADED', 'COMM_LOSS,MISSING_READINGS'),
        ('CLOCK_DRIFT', 'DEGRADED', 'CLOCK_DRIFT'),
        ('VOLTAGE_INSTABILITY', 'DEGRADED', 'VOLTAGE_OUT_OF_RANGE')
    ) as rules (fault_type, expected_status, reason_codes)
),

reporting_devices as (
    {#- The labels come from the simulated fleet: a meter in master data that never sent a
        reading was not simulated, so it has no ground truth. -#}
    select device_id
    from {{ ref('device_health') }}
    group by device_id
    having sum(reading_count) > 0
),

fleet_days as (
    select
        health.reading_date,
        sum(health.reading_count) as fleet_reading_count
    from {{ ref('device_health') }} as health
    inner join reporting_devices on health.device_id = reporting_devices.device_id
    group by health.reading_date
),

busiest_day as (
    select max(fleet_reading_count) as fleet_reading_count from fleet_days
),

scored_days as (
    {#- The edges of a simulated window (and the current day) hold part of a day. -#}
    select fleet_days.reading_date
    from fleet_days
    cross join busiest_day
    where fleet_days.fleet_reading_count >= 0.9 * busiest_day.fleet_reading_count
),

health as (
    select
        health.device_id,
        health.reading_date,
        health.device_health_status,
        coalesce(split(health.health_reasons, ','), array[]) as reasons,
        with_timezone(cast(health.reading_date as timestamp(6)), coalesce(devices.timezone, {{ utility_timezone() }}))
            as day_start_at,
        with_timezone(
            cast(health.reading_date + interval '1' day as timestamp(6)), coalesce(devices.timezone, {{ utility_timezone() }})
        ) as day_end_at
    from {{ ref('device_health') }} as health
    inner join reporting_devices on health.device_id = reporting_devices.device_id
    inner join scored_days on health.reading_date = scored_days.reading_date
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

labelled_device_days as (
    select distinct
        device_id,
        reading_date
    from labelled_days
),

overall_rules as (
    select rule_values.rule from (values 'NOT_HEALTHY', 'UNHEALTHY') as rule_values (rule)
),

overall_scored as (
    select
        overall_rules.rule,
        case
            when overall_rules.rule = 'UNHEALTHY' then health.device_health_status = 'UNHEALTHY'
            else health.device_health_status != 'HEALTHY'
        end as is_predicted_fault,
        labelled_device_days.device_id is not null as is_labelled_fault
    from health
    cross join overall_rules
    left join labelled_device_days
        on
            health.device_id = labelled_device_days.device_id
            and health.reading_date = labelled_device_days.reading_date
),

type_scored as (
    select
        fault_types.fault_type,
        fault_types.expected_status,
        cardinality(array_intersect(health.reasons, fault_types.reason_codes)) > 0
        and (
            health.device_health_status = 'UNHEALTHY'
            or (fault_types.expected_status = 'DEGRADED' and health.device_health_status = 'DEGRADED')
        ) as is_predicted_fault,
        labelled_days.device_id is not null as is_labelled_fault
    from health
    cross join fault_types
    left join labelled_days
        on
            health.device_id = labelled_days.device_id
            and health.reading_date = labelled_days.reading_date
            and fault_types.fault_type = labelled_days.fault_type
),

counted as (
    select
        if(rule = 'UNHEALTHY', 'UNHEALTHY', 'NOT_HEALTHY') as positive_status_rule,
        'ALL' as fault_type,
        count_if(is_predicted_fault and is_labelled_fault) as true_positive_count,
        count_if(is_predicted_fault and not is_labelled_fault) as false_positive_count,
        count_if(not is_predicted_fault and is_labelled_fault) as false_negative_count,
        count_if(not is_predicted_fault and not is_labelled_fault) as true_negative_count
    from overall_scored
    group by rule
    union all
    select
        if(expected_status = 'UNHEALTHY', 'UNHEALTHY', 'NOT_HEALTHY') as positive_status_rule,
        fault_type,
        count_if(is_predicted_fault and is_labelled_fault) as true_positive_count,
        count_if(is_predicted_fault and not is_labelled_fault) as false_positive_count,
        count_if(not is_predicted_fault and is_labelled_fault) as false_negative_count,
        count_if(not is_predicted_fault and not is_labelled_fault) as true_negative_count
    from type_scored
    group by fault_type, expected_status
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
from counted
where (select count(*) from labels) > 0
