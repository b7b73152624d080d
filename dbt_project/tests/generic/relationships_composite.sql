{#-
    Keys of `model` (a combination of columns, e.g. platform + campaign_id) that do not exist in `to`: the
    multi-column version of dbt's `relationships`. Returns each missing key with its row count.
-#}
{% test relationships_composite(model, columns, to) %}

{%- set key = columns | join(', ') %}
with child as (
    select {{ key }}, count(*) as n_rows
    from {{ model }}
    group by {{ key }}
),

parent as (
    select distinct {{ key }} from {{ to }}
)

select child.*
from child
anti join parent using ({{ key }})

{% endtest %}
