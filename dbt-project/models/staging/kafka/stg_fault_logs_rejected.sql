{#- Fault-log lines that cannot be used (UNPARSEABLE, UNKNOWN_DEVICE), with raw text and Kafka
    coordinates. Appended by batch. -#}
{{ config(properties={'partitioning': "ARRAY['day(loaded_at)']"}) }}

select
    kafka_topic_id,
    kafka_partition,
    kafka_offset,
    kafka_timestamp_at,
    raw_message,
    reject_reason,
    batch_id,
    loaded_at
from {{ ref('stg_fault_log_messages') }}
where
    reject_reason is not null
    {%- if is_incremental() %}
        and batch_id > {{ stored_max_batch_id(this) }}
    {%- endif %}
