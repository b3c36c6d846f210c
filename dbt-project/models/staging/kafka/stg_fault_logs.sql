{#- Parsed fault-log events, one row per distinct event. An event is identified by what it says
    (device, time, severity, code, type, message), so a log file shipped twice, or a line sent
    again, counts once; the copy with the lowest Kafka coordinates is kept. -#}
{{ config(
    incremental_strategy='merge',
    unique_key='fault_event_id',
    merge_update_condition=lowest_copy_wins(),
    properties={'partitioning': "ARRAY['day(event_at)']"}
) }}

with

new_events as (
    select
        to_hex(md5(to_utf8(concat_ws(
            '|', device_id, cast(event_at as varchar), severity, coalesce(event_code, '-'), event_type, message
        )))) as fault_event_id,
        kafka_partition,
        kafka_offset,
        event_at,
        device_id,
        severity,
        event_code,
        event_type,
        message,
        log_dialect,
        loaded_at
    from {{ ref('stg_fault_log_messages') }}
    where
        reject_reason is null
        {%- if is_incremental() %}
            and batch_id > {{ stored_max_batch_id(this) }}
        {%- endif %}
),

ranked as (
    select
        *,
        row_number() over (partition by fault_event_id order by kafka_partition, kafka_offset) as copy_rank
    from new_events
)

select
    fault_event_id,
    kafka_partition,
    kafka_offset,
    event_at,
    device_id,
    severity,
    event_code,
    event_type,
    message,
    log_dialect,
    cast({{ pipeline_batch_id() }} as bigint) as batch_id,
    loaded_at
from ranked
where copy_rank = 1
