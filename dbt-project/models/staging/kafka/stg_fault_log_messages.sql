{#-
    Landing table: EVERY message of the fault-log topic, exactly once (this run's bounded batch,
    macros/kafka_batches.sql), parsed from one of four firmware dialects (ELX, KMF, SGX, NOTE).
    Their formats are defined in smartmeter/simulator/faultlogs.py; the patterns below follow it.
    reject_reason: UNPARSEABLE (no dialect matches, or its timestamp is not a valid date) or
    UNKNOWN_DEVICE; null when usable.
-#}
{{ config(properties={'partitioning': "ARRAY['kafka_topic_id', 'kafka_partition', 'day(loaded_at)']"}) }}

{%- set elx = '^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z) (INFO|WARN|ERROR|CRIT) (MTR-[0-9]+) ([A-Z][0-9]{3}) ([A-Z_]+) (.*)$' -%}
{%- set kmf = '^\\[([0-9]{2})/([0-9]{2})/([0-9]{4}) ([0-9]{2}:[0-9]{2}:[0-9]{2})\\] (MTR-[0-9]+) <(info|warning|error|critical)> code=([A-Z][0-9]{3}) type=([A-Z_]+) msg="([^"]*)"$' -%}
{%- set sgx = '^([0-9]{9,11})\\|([0-3])\\|([A-Z][0-9]{3})\\|(MTR-[0-9]+)\\|([^|]*)$' -%}
{%- set note = '^NOTE ([0-9]{4}-[0-9]{2}-[0-9]{2}) ([0-9]{2}:[0-9]{2}:[0-9]{2}) UTC (MTR-[0-9]+) (.+)$' -%}
{%- set source_columns -%}
        _partition_id as kafka_partition,
        _partition_offset as kafka_offset,
        _timestamp as kafka_timestamp,
        _message as raw_message
{%- endset %}

with

source_messages as (
    {{ kafka_batch_messages(source('kafka', 'meter_fault_logs'), 'fault_logs', source_columns) }}
),

lines as (
    select
        kafka_partition,
        kafka_offset,
        kafka_timestamp,
        raw_message,
        kafka_topic_id,
        batch_id,
        rtrim(raw_message, chr(13) || chr(10)) as line
    from source_messages
),

dialects as (
    select
        *,
        regexp_extract(line, '{{ kmf }}', 3) || '-' || regexp_extract(line, '{{ kmf }}', 2) || '-'
        || regexp_extract(line, '{{ kmf }}', 1) || 'T' || regexp_extract(line, '{{ kmf }}', 4) || 'Z' as kmf_iso_text,
        regexp_extract(line, '{{ note }}', 1) || 'T' || regexp_extract(line, '{{ note }}', 2) || 'Z' as note_iso_text,
        case
            when regexp_like(line, '{{ elx }}') then 'ELX'
            when regexp_like(line, '{{ kmf }}') then 'KMF'
            when regexp_like(line, '{{ sgx }}') then 'SGX'
            when regexp_like(line, '{{ note }}') then 'NOTE'
        end as log_dialect
    from lines
),

parsed as (
    select
        kafka_partition,
        kafka_offset,
        kafka_timestamp,
        raw_message,
        kafka_topic_id,
        batch_id,
        log_dialect,
        case log_dialect
            when 'ELX' then try(from_iso8601_timestamp(regexp_extract(line, '{{ elx }}', 1)))
            when 'KMF' then try(from_iso8601_timestamp(kmf_iso_text))
            when 'SGX' then try(from_unixtime(cast(regexp_extract(line, '{{ sgx }}', 1) as bigint), 'UTC'))
            when 'NOTE' then try(from_iso8601_timestamp(note_iso_text))
        end as event_timestamp,
        case log_dialect
            when 'ELX' then regexp_extract(line, '{{ elx }}', 3)
            when 'KMF' then regexp_extract(line, '{{ kmf }}', 5)
            when 'SGX' then regexp_extract(line, '{{ sgx }}', 4)
            when 'NOTE' then regexp_extract(line, '{{ note }}', 3)
        end as device_id,
        case log_dialect
            when 'ELX' then regexp_extract(line, '{{ elx }}', 2)
            when 'KMF' then upper(regexp_extract(line, '{{ kmf }}', 6))
            when 'SGX' then regexp_extract(line, '{{ sgx }}', 2)
            when 'NOTE' then 'INFO'
        end as severity_text,
        case log_dialect
            when 'ELX' then regexp_extract(line, '{{ elx }}', 4)
            when 'KMF' then regexp_extract(line, '{{ kmf }}', 7)
            when 'SGX' then regexp_extract(line, '{{ sgx }}', 3)
        end as event_code,
        case log_dialect
            when 'ELX' then regexp_extract(line, '{{ elx }}', 5)
            when 'KMF' then regexp_extract(line, '{{ kmf }}', 8)
            when 'NOTE' then 'NOTE'
        end as line_event_type,
        case log_dialect
            when 'ELX' then regexp_extract(line, '{{ elx }}', 6)
            when 'KMF' then regexp_extract(line, '{{ kmf }}', 9)
            when 'SGX' then regexp_extract(line, '{{ sgx }}', 5)
            when 'NOTE' then regexp_extract(line, '{{ note }}', 4)
        end as message
    from dialects
),

event_codes as (
    select
        event_code,
        event_type
    from {{ ref('fault_event_codes') }}
),

devices as (
    select device_id from {{ ref('stg_devices') }}
)

select
    parsed.kafka_topic_id,
    cast(parsed.kafka_partition as integer) as kafka_partition,
    cast(parsed.kafka_offset as bigint) as kafka_offset,
    cast(with_timezone(parsed.kafka_timestamp, 'UTC') as timestamp(6) with time zone) as kafka_timestamp_at,
    cast(parsed.raw_message as varchar) as raw_message,
    parsed.log_dialect,
    cast(parsed.event_timestamp at time zone 'UTC' as timestamp(6) with time zone) as event_at,
    parsed.device_id,
    case parsed.severity_text
        when 'WARN' then 'WARNING'
        when 'CRIT' then 'CRITICAL'
        when '0' then 'INFO'
        when '1' then 'WARNING'
        when '2' then 'ERROR'
        when '3' then 'CRITICAL'
        else parsed.severity_text
    end as severity,
    parsed.event_code,
    coalesce(parsed.line_event_type, event_codes.event_type, 'UNKNOWN') as event_type,
    parsed.message,
    case
        when parsed.log_dialect is null or parsed.event_timestamp is null then 'UNPARSEABLE'
        when devices.device_id is null then 'UNKNOWN_DEVICE'
    end as reject_reason,
    parsed.batch_id,
    {{ run_loaded_at() }} as loaded_at
from parsed
left join event_codes on parsed.event_code = event_codes.event_code
left join devices on parsed.device_id = devices.device_id
