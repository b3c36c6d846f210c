{#-
    One row per distinct reading (device_id, reading_at), from the usable landed messages.
    A duplicate keeps the message with the lowest (kafka_partition, kafka_offset), whatever
    the order the copies arrived in: a new copy that sorts lower replaces the stored row
    (MERGE update, which also moves loaded_at so the marts recompute that day).
    Watermark: max(loaded_at) of this table; rows carry the loaded_at of their message, so a
    run that crashed after the landing table committed is picked up by the next run.
-#}
{{ config(
    incremental_strategy='merge',
    unique_key=['device_id', 'reading_at'],
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
        kafka_partition,
        kafka_offset,
        loaded_at
    from {{ ref('stg_telemetry_messages') }}
    where
        reject_reason is null
        {%- if is_incremental() %}
            and loaded_at > {{ stored_max_timestamp(this, 'loaded_at') }}
        {%- endif %}
),

ranked as (
    select
        *,
        row_number() over (
            partition by device_id, reading_at
            order by kafka_partition, kafka_offset
        ) as copy_rank
    from new_messages
),

batch_readings as (
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
        kafka_partition,
        kafka_offset,
        loaded_at
    from ranked
    where copy_rank = 1
),

stored_readings as (
    {%- if is_incremental() %}
        select
            device_id,
            reading_at,
            kafka_partition,
            kafka_offset
        from {{ this }}
        where
            reading_at >= (select min(batch_readings.reading_at) from batch_readings)
            and reading_at <= (select max(batch_readings.reading_at) from batch_readings)
    {%- else %}
        select
            cast(null as varchar) as device_id,
            cast(null as timestamp(6) with time zone) as reading_at,
            cast(null as integer) as kafka_partition,
            cast(null as bigint) as kafka_offset
        where false
    {%- endif %}
)

select batch_readings.*
from batch_readings
left join stored_readings
    on
        batch_readings.device_id = stored_readings.device_id
        and batch_readings.reading_at = stored_readings.reading_at
where
    stored_readings.device_id is null
    or batch_readings.kafka_partition < stored_readings.kafka_partition
    or (
        batch_readings.kafka_partition = stored_readings.kafka_partition
        and batch_readings.kafka_offset < stored_readings.kafka_offset
    )
