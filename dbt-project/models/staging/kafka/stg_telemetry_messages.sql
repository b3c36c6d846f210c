{#-
    Landing table: EVERY message of the telemetry topic, exactly once, valid or not, with its
    Kafka coordinates, parsed fields and reject_reason (null when usable). The raw text is kept
    for rejects only. Reads this run's bounded batch (macros/kafka_batches.sql).

    Parsing, fast path first: Trino's Kafka JSON decoder (trino-config/etc/kafka/*.json) reads
    every field as text, which can never fail a query. A message that is exactly the canonical
    layout rebuilt from those texts (the simulator's, json.dumps defaults) is proven well-formed
    and well-typed by that equality. Every other message goes through json_parse and a per-field
    type check. Both paths give the same result; the fast one skips json_parse.

    A message with `"is_correction": true` corrects a reading sent before (stg_telemetry_raw
    keeps it over the original). The canonical layout has no such field, so corrections take
    the json_parse path.
-#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    properties={'partitioning': "ARRAY['kafka_topic_id', 'kafka_partition', 'day(loaded_at)']"}
) }}

{%- set source_columns -%}
        _partition_id as kafka_partition,
        _partition_offset as kafka_offset,
        _timestamp as kafka_timestamp,
        _key as kafka_key,
        _message as raw_message,
        device_id as device_id_text,
        customer_id as customer_id_text,
        reading_timestamp as timestamp_text,
        status as status_text,
        energy_kwh as energy_kwh_text,
        voltage as voltage_text,
        battery_pct as battery_pct_text,
        register_kwh as register_kwh_text,
        interval_minutes as interval_minutes_text
{%- endset %}

with

source_messages as (
    {{ kafka_batch_messages(source('kafka', 'telemetry_raw'), 'telemetry', source_columns) }}
),

screened as (
    select
        *,
        coalesce(
            raw_message = concat(
                '{"device_id": "', device_id_text, '", "customer_id": "', customer_id_text,
                '", "timestamp": "', timestamp_text, '", "metrics": {"energy_kwh": ', energy_kwh_text,
                ', "voltage": ', voltage_text, ', "battery_pct": ', battery_pct_text,
                if(
                    register_kwh_text is null and interval_minutes_text is null,
                    concat('}, "status": "', status_text, '"}'),
                    concat(
                        ', "register_kwh": ', register_kwh_text, '}, "status": "', status_text,
                        '", "interval_minutes": ', interval_minutes_text, '}'
                    )
                )
            ),
            false
        ) as is_canonical
    from source_messages
),

parsed as (
    select
        *,
        if(not is_canonical, try(json_parse(raw_message))) as message_json
    from screened
),

extracted as (
    select
        *,
        json_extract(message_json, '$.device_id') as device_id_json,
        json_extract(message_json, '$.customer_id') as customer_id_json,
        json_extract(message_json, '$.timestamp') as timestamp_json,
        json_extract(message_json, '$.status') as status_json,
        json_extract(message_json, '$.metrics.energy_kwh') as energy_kwh_json,
        json_extract(message_json, '$.metrics.voltage') as voltage_json,
        json_extract(message_json, '$.metrics.battery_pct') as battery_pct_json,
        json_extract(message_json, '$.metrics.register_kwh') as register_kwh_json,
        json_extract(message_json, '$.interval_minutes') as interval_minutes_json,
        json_extract(message_json, '$.is_correction') as is_correction_json
    from parsed
),

-- Canonical messages have string ids, timestamp and status by construction; their metrics
-- texts are JSON numbers or literals (true, false), told apart by the cast below.
typed as (
    select
        kafka_partition,
        kafka_offset,
        kafka_timestamp,
        kafka_key,
        raw_message,
        kafka_topic_id,
        batch_id,
        is_canonical
        or (message_json is not null and substr(json_format(message_json), 1, 1) = '{') as is_json_object,
        if(is_canonical, 'string', {{ json_kind('device_id_json') }}) as device_id_kind,
        if(is_canonical, 'string', {{ json_kind('customer_id_json') }}) as customer_id_kind,
        if(is_canonical, 'string', {{ json_kind('timestamp_json') }}) as timestamp_kind,
        if(is_canonical, 'string', {{ json_kind('status_json') }}) as status_kind,
        if(is_canonical, 'number', {{ json_kind('energy_kwh_json') }}) as energy_kwh_kind,
        if(is_canonical, 'number', {{ json_kind('voltage_json') }}) as voltage_kind,
        if(is_canonical, 'number', {{ json_kind('battery_pct_json') }}) as battery_pct_kind,
        if(
            is_canonical, if(register_kwh_text is null, 'missing', 'number'), {{ json_kind('register_kwh_json') }}
        ) as register_kwh_kind,
        if(
            is_canonical, if(interval_minutes_text is null, 'missing', 'number'), {{ json_kind('interval_minutes_json') }}
        ) as interval_minutes_kind,
        if(is_canonical, 'missing', {{ json_kind('is_correction_json') }}) as is_correction_kind,
        trim(if(is_canonical, device_id_text, json_extract_scalar(device_id_json, '$'))) as device_id,
        trim(if(is_canonical, customer_id_text, json_extract_scalar(customer_id_json, '$'))) as customer_id,
        if(is_canonical, timestamp_text, json_extract_scalar(timestamp_json, '$')) as timestamp_text,
        if(is_canonical, status_text, json_extract_scalar(status_json, '$')) as status,
        try_cast(if(is_canonical, energy_kwh_text, json_extract_scalar(energy_kwh_json, '$')) as double) as energy_kwh,
        try_cast(if(is_canonical, voltage_text, json_extract_scalar(voltage_json, '$')) as double) as voltage_v,
        try_cast(if(is_canonical, battery_pct_text, json_extract_scalar(battery_pct_json, '$')) as double) as battery_pct,
        try_cast(if(is_canonical, register_kwh_text, json_extract_scalar(register_kwh_json, '$')) as double) as register_kwh,
        try_cast(
            if(is_canonical, interval_minutes_text, json_extract_scalar(interval_minutes_json, '$')) as double
        ) as interval_minutes,
        coalesce(not is_canonical and json_format(is_correction_json) = 'true', false) as is_correction
    from extracted
),

timed as (
    select
        *,
        regexp_like(
            timestamp_text,
            '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$'
        ) as is_iso_timestamp,
        {{ run_loaded_at() }} as loaded_at
    from typed
),

converted as (
    select
        *,
        case
            when is_iso_timestamp
                then cast(try(from_iso8601_timestamp(timestamp_text)) at time zone 'UTC' as timestamp(6) with time zone)
        end as reading_at
    from timed
),

devices as (
    select device_id from {{ ref('stg_devices') }}
),

known as (
    select
        converted.*,
        devices.device_id is not null as is_known_device
    from converted
    left join devices on converted.device_id = devices.device_id
),

classified as (
    select
        *,
        case
            when not coalesce(is_json_object, false) then 'MALFORMED_JSON'
            when
                'missing' in (
                    device_id_kind, customer_id_kind, timestamp_kind, status_kind,
                    energy_kwh_kind, voltage_kind, battery_pct_kind
                )
                then 'MISSING_FIELD'
            when device_id_kind = 'string' and device_id = '' then 'MISSING_FIELD'
            when customer_id_kind = 'string' and customer_id = '' then 'MISSING_FIELD'
            when
                device_id_kind != 'string'
                or customer_id_kind != 'string'
                or timestamp_kind != 'string'
                or status_kind != 'string'
                or energy_kwh_kind != 'number'
                or voltage_kind != 'number'
                or battery_pct_kind != 'number'
                or register_kwh_kind not in ('missing', 'number')
                or interval_minutes_kind not in ('missing', 'number')
                or is_correction_kind not in ('missing', 'boolean')
                or energy_kwh is null or voltage_v is null or battery_pct is null
                or (register_kwh_kind = 'number' and register_kwh is null)
                or (interval_minutes_kind = 'number' and interval_minutes is null)
                or reading_at is null
                then 'WRONG_TYPE'
            when
                not is_finite(energy_kwh) or not is_finite(voltage_v)
                or not is_finite(battery_pct)
                or (register_kwh is not null and not is_finite(register_kwh))
                or (interval_minutes is not null and not is_finite(interval_minutes))
                or energy_kwh < 0 or energy_kwh > {{ var('max_energy_kwh_per_reading') }}
                or voltage_v <= 0 or voltage_v > {{ var('max_voltage_v') }}
                or battery_pct < 0 or battery_pct > 100
                or register_kwh < 0
                or interval_minutes <= 0 or interval_minutes > 1440
                then 'OUT_OF_RANGE'
            when not is_known_device then 'UNKNOWN_DEVICE'
            when reading_at > loaded_at + interval '{{ var("future_tolerance_hours") }}' hour
                then 'FUTURE_TIMESTAMP'
        end as reject_reason
    from known
)

select
    kafka_topic_id,
    cast(kafka_partition as integer) as kafka_partition,
    cast(kafka_offset as bigint) as kafka_offset,
    cast(with_timezone(kafka_timestamp, 'UTC') as timestamp(6) with time zone) as kafka_timestamp_at,
    cast(kafka_key as varchar) as kafka_key,
    -- Valid messages are fully represented by their parsed fields; rejects keep their text.
    if(reject_reason is not null, cast(raw_message as varchar)) as raw_message,
    device_id,
    customer_id,
    reading_at,
    energy_kwh,
    voltage_v,
    battery_pct,
    register_kwh,
    -- try_cast: a huge or infinite interval is an OUT_OF_RANGE reject, and must not fail the load.
    try_cast(interval_minutes as integer) as interval_minutes,
    status,
    is_correction,
    reject_reason,
    batch_id,
    loaded_at
from classified
