{#- Every landed telemetry message that cannot be used, with its raw text, Kafka coordinates
    and reason. Appended by batch; unique on (kafka_topic_id, kafka_partition, kafka_offset). -#}
{{ config(properties={'partitioning': "ARRAY['day(loaded_at)']"}) }}

select
    kafka_topic_id,
    kafka_partition,
    kafka_offset,
    kafka_timestamp_at,
    raw_message,
    reject_reason,
    device_id,
    reading_at,
    energy_kwh,
    batch_id,
    loaded_at
from {{ ref('stg_telemetry_messages') }}
where
    reject_reason is not null
    {%- if is_incremental() %}
        and batch_id > {{ stored_max_batch_id(this) }}
    {%- endif %}
