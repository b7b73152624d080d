{#-
    Rows where column_name > other_column. With group_by, both columns are summed per group first, so the rule
    holds for e.g. a campaign-day rather than for each hour; the failing groups are returned with both sums.
-#}
{% test not_greater_than(model, column_name, other_column, group_by=none) %}

{% if group_by %}
with grouped as (
    select
        {{ group_by | join(', ') }},
        sum({{ column_name }})  as {{ column_name }},
        sum({{ other_column }}) as {{ other_column }}
    from {{ model }}
    group by {{ group_by | join(', ') }}
)
select * from grouped
where {{ column_name }} > {{ other_column }}
{% else %}
select *
from {{ model }}
where {{ column_name }} > {{ other_column }}
{% endif %}

{% endtest %}
