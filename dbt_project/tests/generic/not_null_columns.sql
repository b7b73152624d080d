{#- The columns of `columns` that hold nulls, one row each with how many. One scan of the relation checks all of
    them: a `not_null` test per column scans it once per column and costs dbt a node each (a loop day built 89 of
    them, over a second of its dbt build). The failing rows name the columns. -#}
{% test not_null_columns(model, columns) %}

select column_name, null_rows
from (
    select
    {%- for column in columns %}
        count(*) filter (where "{{ column }}" is null) as "{{ column }}"{{ "," if not loop.last }}
    {%- endfor %}
    from {{ model }}
)
unpivot (null_rows for column_name in ({% for column in columns %}"{{ column }}"{{ ", " if not loop.last }}{% endfor %}))
where null_rows > 0

{% endtest %}
