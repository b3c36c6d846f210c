{#- Fault-log lines that cannot be used (UNPARSEABLE, UNKNOWN_DEVICE), with raw text and Kafka
    coordinates. A table of its own, separate from stg_telemetry_rejected. -#}
{{ config(properties={'partitioning': "ARRAY['day(loaded_at)']"}) }}

select
    kafka_partition,
    kafka_offset,
    kafka_timestamp_at,
    raw_message,
    reject_reason,
    loaded_at
from {{ ref('stg_fault_log_messages') }}
where
    reject_reason is not null
    {%- if is_incremental() %}
        and loaded_at > {{ stored_max_timestamp(this, 'loaded_at') }}
    {%- endif %}
