{#- Rows where the column is negative (nulls pass: not_null is its own test). -#}
{% test non_negative(model, column_name) %}

select *
from {{ model }}
where {{ column_name }} < 0

{% endtest %}
