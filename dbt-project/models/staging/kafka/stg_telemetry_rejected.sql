{#- Every landed telemetry message that cannot be used, with its raw text, Kafka coordinates
    and reason. Appended by loaded_at watermark; unique on (kafka_partition, kafka_offset). -#}
{{ config(properties={'partitioning': "ARRAY['day(loaded_at)']"}) }}

select
    kafka_partition,
    kafka_offset,
    kafka_timestamp_at,
    raw_message,
    reject_reason,
    device_id,
    reading_at,
    loaded_at
from {{ ref('stg_telemetry_messages') }}
where
    reject_reason is not null
    {%- if is_incremental() %}
        and loaded_at > {{ stored_max_timestamp(this, 'loaded_at') }}
    {%- endif %}
