{#-
    Every Kafka offset this run planned for `topic_key` (var kafka_batch, from the pipeline
    runner) landed exactly once in `model`, and nothing else did: per partition the batch's rows
    are the contiguous range [start, end). Kafka clamps a range it no longer holds silently
    (retention), so this is where such a loss would show. Cheap: reads this batch's rows only.
-#}
{% test kafka_batch_complete(model, topic_key) %}
{%- set planned = kafka_batch(topic_key)['partitions'] -%}
with

planned as (
    {%- for partition, start, end in planned if (end | int) > (start | int) %}
    select {{ partition }} as kafka_partition, cast({{ start }} as bigint) as start_offset, cast({{ end }} as bigint) as end_offset
    {{ 'union all' if not loop.last }}
    {%- else %}
    select cast(null as integer) as kafka_partition, cast(null as bigint) as start_offset, cast(null as bigint) as end_offset
    where false
    {%- endfor %}
),

landed as (
    select
        kafka_partition,
        count(*) as row_count,
        count(distinct kafka_offset) as offset_count,
        min(kafka_offset) as first_offset,
        max(kafka_offset) as last_offset
    from {{ model }}
    where batch_id = {{ pipeline_batch_id() }}
    group by kafka_partition
)

select
    coalesce(planned.kafka_partition, landed.kafka_partition) as kafka_partition,
    planned.start_offset,
    planned.end_offset,
    landed.row_count,
    landed.first_offset,
    landed.last_offset
from planned
full outer join landed on planned.kafka_partition = landed.kafka_partition
where
    planned.kafka_partition is null
    or landed.kafka_partition is null
    or landed.row_count != planned.end_offset - planned.start_offset
    or landed.offset_count != landed.row_count
    or landed.first_offset != planned.start_offset
    or landed.last_offset != planned.end_offset - 1
{% endtest %}
