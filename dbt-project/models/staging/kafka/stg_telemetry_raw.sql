{#-
    One row per distinct reading (device_id, reading_at), from the usable landed messages.
    A duplicate keeps the message with the lowest (kafka_partition, kafka_offset), whatever the
    order the copies arrived in: within a batch by rank, across batches by the MERGE's update
    condition. A correction (is_correction) wins over the copies before it instead: the latest
    one to land (by batch, then offset), also on a full refresh. Inserted and replaced rows carry this run's
    batch_id, which is what the models downstream pick up. Watermark: the highest batch_id here
    (macros/watermarks.sql).
-#}
{{ config(
    incremental_strategy='merge',
    unique_key=['device_id', 'reading_at'],
    merge_update_condition=reading_copy_wins(),
    properties={'partitioning': "ARRAY['day(reading_at)']"}
) }}

with

new_messages as (
    select
        device_id,
        customer_id,
        reading_at,
        energy_kwh,
        voltage_v,
        battery_pct,
        register_kwh,
        interval_minutes,
        status,
        is_correction,
        kafka_partition,
        kafka_offset,
        batch_id as landed_batch_id,
        loaded_at
    from {{ ref('stg_telemetry_messages') }}
    where
        reject_reason is null
        {%- if is_incremental() %}
            and batch_id > {{ stored_max_batch_id(this) }}
        {%- endif %}
),

ranked as (
    select
        *,
        row_number() over (
            partition by device_id, reading_at
            order by
                is_correction desc,
                if(is_correction, -landed_batch_id) asc,
                kafka_partition asc,
                if(is_correction, -kafka_offset, kafka_offset) asc
        ) as copy_rank
    from new_messages
)

select
    device_id,
    customer_id,
    reading_at,
    energy_kwh,
    voltage_v,
    battery_pct,
    register_kwh,
    interval_minutes,
    status,
    is_correction,
    kafka_partition,
    kafka_offset,
    cast({{ pipeline_batch_id() }} as bigint) as batch_id,
    loaded_at
from ranked
where copy_rank = 1
