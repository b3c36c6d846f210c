{#-
    Exactly-once, bounded reads from Kafka through Trino's Kafka connector.

    The pipeline runner (smartmeter/pipeline, behind every `./lakehouse dbt`, `catch-up` and the
    loop) holds the single-writer lock, reads each partition's next unread offset from the landing
    table's own Iceberg metadata, checks it against Kafka's log start and end, and passes this
    run's batch as vars:

      batch_id:     the run's id, from a PostgreSQL sequence: monotonic, whatever the clock does
      kafka_batch:  {telemetry: {topic_id: "...", partitions: [[partition, start, end], ...]},
                     fault_logs: {...}}     start inclusive, end exclusive, at most
                                            PIPELINE_MAX_MESSAGES_PER_PARTITION apart
      leaves_backlog:      whether Kafka holds more than this batch takes
      day_tails_batch_id:  the last run that wrote device_intervals leaving no backlog

    The connector pushes one `_partition_offset` range down for all partitions, so each partition
    gets its own UNION ALL branch with literal bounds. Rows carry kafka_topic_id and batch_id and
    are appended by one INSERT, so the data and the offsets they advance commit together.
-#}

{#- The runner passes the batch in the environment (LAKEHOUSE_BATCH, JSON), read only while
    executing: dbt vars would be cheaper to read but would make dbt re-parse the whole project on
    every run (partial parsing restarts when vars change). -#}
{% macro pipeline_batch() -%}
    {%- if not execute -%}
        {{ return({'batch_id': 0, 'kafka_batch': {}}) }}
    {%- endif -%}
    {%- set batch = var('pipeline_batch', none) or fromjson(env_var('LAKEHOUSE_BATCH', 'null')) -%}
    {%- if batch is none -%}
        {{ exceptions.raise_compiler_error(
            "This project loads Kafka in bounded batches planned by the pipeline runner. "
            ~ "Run dbt through it: ./lakehouse dbt " ~ (flags.WHICH or 'build')
            ~ " (in Docker: docker exec dbt-transformations dbt ...)."
        ) }}
    {%- endif -%}
    {{ return(batch) }}
{%- endmacro %}

{% macro pipeline_batch_id() -%}
    {{ return(pipeline_batch_value('batch_id', 0) | int) }}
{%- endmacro %}

{#- A value the runner passes with the batch beside the Kafka ranges, or `default`. -#}
{% macro pipeline_batch_value(key, default) -%}
    {{ return(pipeline_batch().get(key, default) if execute else default) }}
{%- endmacro %}

{#- This run's batch of one topic: {topic_id, partitions: [[p, start, end], ...]}. -#}
{% macro kafka_batch(topic_key) -%}
    {%- set empty = {'topic_id': '', 'partitions': []} -%}
    {{ return(pipeline_batch()['kafka_batch'].get(topic_key, empty) if execute else empty) }}
{%- endmacro %}

{#- SELECT of this run's messages of one topic: `columns` (connector column expressions) plus
    kafka_topic_id and batch_id, one literal-bounded branch per partition. -#}
{% macro kafka_batch_messages(source_relation, topic_key, columns) -%}
    {%- set batch = kafka_batch(topic_key) -%}
    {%- set ranges = [] -%}
    {%- for partition, start, end in batch['partitions'] if (end | int) > (start | int) -%}
        {%- do ranges.append((partition | int, start | int, end | int)) -%}
    {%- endfor -%}
    {%- if execute -%}
        {%- do log(this.identifier ~ " batch " ~ pipeline_batch_id() ~ ": "
            ~ (ranges | map('join', '..') | join(', ') if ranges else 'nothing new'), info=True) -%}
    {%- endif -%}
    {%- set extra -%}
        '{{ batch['topic_id'] }}' as kafka_topic_id,
        cast({{ pipeline_batch_id() }} as bigint) as batch_id
    {%- endset -%}
    {%- for partition, start, end in ranges %}
    select {{ columns }},
        {{ extra }}
    from {{ source_relation }}
    where _partition_id = {{ partition }} and _partition_offset >= {{ start }} and _partition_offset < {{ end }}
    {{ 'union all' if not loop.last }}
    {%- else %}
    select {{ columns }},
        {{ extra }}
    from {{ source_relation }}
    where false
    {%- endfor %}
{%- endmacro %}

{#- Classify a JSON value: missing (absent or null), string, number, boolean or other. -#}
{% macro json_kind(json_expr) -%}
    case
        when {{ json_expr }} is null or json_format({{ json_expr }}) = 'null' then 'missing'
        when substr(json_format({{ json_expr }}), 1, 1) = '"' then 'string'
        when regexp_like(json_format({{ json_expr }}), '^-?[0-9]') then 'number'
        when json_format({{ json_expr }}) in ('true', 'false') then 'boolean'
        else 'other'
    end
{%- endmacro %}
