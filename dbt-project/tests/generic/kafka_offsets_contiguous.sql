{#-
    Data lost to retention: Kafka clamps a stored offset that has fallen below the log start
    silently, so the latest load of a partition then starts after a gap. Fails (use severity
    warn) for each partition whose newest load's first offset is more than one past the
    previous loads' last offset (or, on the first load, past offset 0). Transactional producers
    leave control-record gaps too; the simulator does not use transactions.
-#}
{% test kafka_offsets_contiguous(model) %}
with latest as (
    select max(loaded_at) as loaded_at from {{ model }}
),

newest_load as (
    select
        kafka_partition,
        min(kafka_offset) as first_new_offset
    from {{ model }}
    where loaded_at = (select latest.loaded_at from latest)
    group by kafka_partition
),

earlier_loads as (
    select
        kafka_partition,
        max(kafka_offset) as last_stored_offset
    from {{ model }}
    where loaded_at < (select latest.loaded_at from latest)
    group by kafka_partition
)

select
    newest_load.kafka_partition,
    earlier_loads.last_stored_offset,
    newest_load.first_new_offset,
    newest_load.first_new_offset - coalesce(earlier_loads.last_stored_offset, -1) - 1 as skipped_offsets
from newest_load
left join earlier_loads on newest_load.kafka_partition = earlier_loads.kafka_partition
where newest_load.first_new_offset > coalesce(earlier_loads.last_stored_offset, -1) + 1
{% endtest %}
