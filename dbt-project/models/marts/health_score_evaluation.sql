{#-
    Precision and recall of device_health against the simulator's ground truth (postgresql
    fault_labels). A device-day (the device's local day) is a true fault of a type when a label of
    that type overlaps it ([started_at, ended_at), open labels run to now). Scored: the meters
    that sent a reading, on the days they sent at least 90 % of the readings of their busiest day
    (the edges of a simulated window, and the current day, hold part of a day).

    Two overall rows (fault_type 'ALL'): NOT_HEALTHY (DEGRADED or UNHEALTHY counts as a fault)
    and UNHEALTHY, against a label of any type. Then one row per fault type: the device-day is
    predicted as that fault when one of the type's reasons fired and the status is at least the
    one the fault deserves (rules below; the README says why).
-#}
{{ config(materialized='view') }}

with

rules as (
    {#- positive_status_rule: the lowest status that counts as predicting the fault. ALL rows
        take any status at or above it; a fault type's row also needs one of its reasons. -#}
    select
        rule_values.fault_type,
        rule_values.positive_status_rule,
        split(rule_values.reason_codes, ',') as reason_codes
    from (
        values
        ('ALL', 'NOT_HEALTHY', null),
        ('ALL', 'UNHEALTHY', null),
        ('BATTERY_FAILURE', 'UNHEALTHY', 'BATTERY_FAILURE,LOW_BATTERY'),
        ('REGISTER_STUCK', 'UNHEALTHY', 'STUCK_REGISTER'),
        ('TAMPER', 'UNHEALTHY', 'TAMPER'),
        ('COMM_DROPOUT', 'NOT_HEALTHY', 'COMM_LOSS,MISSING_READINGS'),
        ('CLOCK_DRIFT', 'NOT_HEALTHY', 'CLOCK_DRIFT'),
        ('VOLTAGE_INSTABILITY', 'NOT_HEALTHY', 'VOLTAGE_OUT_OF_RANGE')
    ) as rule_values (fault_type, positive_status_rule, reason_codes)
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
    {#- Per fault type, and once more as ALL for a label of any type. -#}
    select distinct
        health.device_id,
        health.reading_date,
        fault_type.name as fault_type
    from health
    inner join labels
        on
            health.device_id = labels.device_id
            and health.day_end_at > labels.started_at
            and health.day_start_at < labels.ended_at
    cross join unnest(array[labels.fault_type, 'ALL']) as fault_type (name)
),

scored as (
    select
        rules.positive_status_rule,
        rules.fault_type,
        (
            rules.reason_codes is null
            or cardinality(array_intersect(health.reasons, rules.reason_codes)) > 0
        )
        and case
            when rules.positive_status_rule = 'UNHEALTHY' then health.device_health_status = 'UNHEALTHY'
            else health.device_health_status != 'HEALTHY'
        end as is_predicted_fault,
        labelled_days.device_id is not null as is_labelled_fault
    from health
    cross join rules
    left join labelled_days
        on
            health.device_id = labelled_days.device_id
            and health.reading_date = labelled_days.reading_date
            and rules.fault_type = labelled_days.fault_type
),

counted as (
    select
        positive_status_rule,
        fault_type,
        count_if(is_predicted_fault and is_labelled_fault) as true_positive_count,
        count_if(is_predicted_fault and not is_labelled_fault) as false_positive_count,
        count_if(not is_predicted_fault and is_labelled_fault) as false_negative_count,
        count_if(not is_predicted_fault and not is_labelled_fault) as true_negative_count
    from scored
    group by positive_status_rule, fault_type
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
