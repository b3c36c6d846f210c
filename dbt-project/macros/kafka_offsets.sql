{#-
    Exactly-once reads from a Kafka topic through Trino's Kafka connector.

    The connector pushes down one `_partition_offset` range shared by all partitions, so we
    render one UNION ALL branch per partition already stored in {{ this }}, each with literal
    bounds (`_partition_id = p and _partition_offset > max_stored_offset`), plus one branch for
    partitions not seen yet. The stored offsets are the maximum kafka_offset per kafka_partition
    of the same Iceberg table the rows are appended to, so rows and watermark commit in one
    INSERT: a crash before the commit leaves both unchanged, a crash after it leaves both
    advanced.
-#}
{% macro kafka_new_messages(source_relation) -%}
    {%- set columns -%}
        _partition_id as kafka_partition,
        _partition_offset as kafka_offset,
        _timestamp as kafka_timestamp,
        _key as kafka_key,
        _message as raw_message
    {%- endset -%}
    {%- set stored = [] -%}
    {%- if is_incremental() and execute -%}
        {%- set result = run_query(
            "select kafka_partition, max(kafka_offset) from " ~ this
            ~ " group by kafka_partition order by kafka_partition"
        ) -%}
        {%- for row in result.rows -%}
            {%- do stored.append((row[0] | int, row[1] | int)) -%}
        {%- endfor -%}
        {%- do log(this.identifier ~ " stored offsets: "
            ~ (stored | map('join', '>') | join(', ') if stored else 'none'), info=True) -%}
    {%- endif -%}
    {%- for partition, offset in stored %}
    select {{ columns }}
    from {{ source_relation }}
    where _partition_id = {{ partition }} and _partition_offset > {{ offset }}
    union all
    {%- endfor %}
    select {{ columns }}
    from {{ source_relation }}
    {%- if stored %}
    where _partition_id not in ({% for partition, offset in stored %}{{ partition }}{{ ', ' if not loop.last }}{% endfor %})
    {%- endif %}
{%- endmacro %}

{#- Classify a JSON value: missing (absent or null), string, number or other. -#}
{% macro json_kind(json_expr) -%}
    case
        when {{ json_expr }} is null or json_format({{ json_expr }}) = 'null' then 'missing'
        when substr(json_format({{ json_expr }}), 1, 1) = '"' then 'string'
        when regexp_like(json_format({{ json_expr }}), '^-?[0-9]') then 'number'
        else 'other'
    end
{%- endmacro %}
