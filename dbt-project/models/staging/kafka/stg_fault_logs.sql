{#- Parsed fault-log events, one row per usable Kafka message (appended by loaded_at). -#}
{{ config(properties={'partitioning': "ARRAY['day(event_at)']"}) }}

select
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
        and loaded_at > {{ stored_max_timestamp(this, 'loaded_at') }}
    {%- endif %}
