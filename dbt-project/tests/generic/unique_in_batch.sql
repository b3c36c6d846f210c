{#-
    The key `columns` is unique for every row this run wrote (batch_id = this run), checked
    against the whole table: the cheap per-cycle form of unique_combination_of_columns, since
    rows the run did not touch were checked by the runs that wrote them.
-#}
{% test unique_in_batch(model, columns) %}
with

written as (
    select distinct {{ columns | join(', ') }}
    from {{ model }}
    where batch_id = {{ pipeline_batch_id() }}
)

select
    {%- for column in columns %}
    stored.{{ column }},
    {%- endfor %}
    count(*) as row_count
from {{ model }} as stored
inner join written
    on
    {%- for column in columns %}
        {{ 'and ' if not loop.first }}stored.{{ column }} = written.{{ column }}
    {%- endfor %}
group by {% for column in columns %}stored.{{ column }}{{ ', ' if not loop.last }}{% endfor %}
having count(*) > 1
{% endtest %}
