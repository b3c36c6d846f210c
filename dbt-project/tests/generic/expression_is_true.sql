{#- Fails for every row where `<column> <expression>` (or `<expression>` alone at model level)
    is not true. Rows where the expression is null pass, as in dbt_utils. -#}
{% test expression_is_true(model, expression, column_name=none) %}
select *
from {{ model }}
where not ({{ column_name ~ ' ' if column_name }}{{ expression }})
{% endtest %}
