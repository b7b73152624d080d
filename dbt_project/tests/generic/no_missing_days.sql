{#-
    Days between the first and the last date of `column_name` that have no row (after the test's `where`
    config, if any). A day that is missing at the very start or end of the history cannot be seen this way.
-#}
{% test no_missing_days(model, column_name) %}

with present as (
    select distinct cast({{ column_name }} as date) as day
    from {{ model }}
),

bounds as (
    select min(day) as first_day, max(day) as last_day from present
),

calendar as (
    select cast(unnest(generate_series(first_day, last_day, interval 1 day)) as date) as day
    from bounds
    where first_day is not null
)

select calendar.day as missing_day
from calendar
anti join present using (day)

{% endtest %}
