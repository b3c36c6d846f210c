{#- Fails for every row whose range [lower_column, upper_column) starts before an earlier range
    (same `partition_by` values, sorted by start, then end) has ended. -#}
{% test no_overlapping_ranges(model, partition_by, lower_column, upper_column) %}
with

ranges as (
    select
        {{ partition_by | join(', ') }},
        {{ lower_column }},
        {{ upper_column }},
        max({{ upper_column }}) over (
            partition by {{ partition_by | join(', ') }}
            order by {{ lower_column }}, {{ upper_column }}
            rows between unbounded preceding and 1 preceding
        ) as earlier_upper_bound
    from {{ model }}
)

select *
from ranges
where {{ lower_column }} < earlier_upper_bound
{% endtest %}
