-- Days on which fct_ga4_traffic_daily's totals differ from GA4 staging's: sessions, users and new users by session
-- date (stg_ga4__sessions), key events and revenue by conversion date (stg_ga4__conversions). The mart must account
-- for every session and key event GA4 reported, whatever its channel, source/medium or campaign name; a row lost or
-- counted twice (a null key, a campaign matched twice) shows here as a day and the figure that differs. An error:
-- an analyst comparing the warehouse with GA4 must find the same totals.
{{ config(severity='error', meta={'dagster': {'ref': {'name': 'fct_ga4_traffic_daily'}}}) }}

with mart as (

    select
        date,
        sum(sessions)   as sessions,
        sum(users)      as users,
        sum(new_users)  as new_users,
        sum(key_events) as key_events,
        sum(revenue)    as revenue
    from {{ ref('fct_ga4_traffic_daily') }}
    group by date

),

staged_sessions as (

    select
        session_date     as date,
        sum(sessions)    as sessions,
        sum(total_users) as users,
        sum(new_users)   as new_users
    from {{ ref('stg_ga4__sessions') }}
    group by session_date

),

staged_conversions as (

    select
        conversion_date  as date,
        sum(key_events)  as key_events,
        sum(revenue)     as revenue
    from {{ ref('stg_ga4__conversions') }}
    group by conversion_date

),

compared as (

    select
        coalesce(mart.date, staged_sessions.date, staged_conversions.date)  as date,
        coalesce(mart.sessions, 0)              as mart_sessions,
        coalesce(staged_sessions.sessions, 0)   as staged_sessions,
        coalesce(mart.users, 0)                 as mart_users,
        coalesce(staged_sessions.users, 0)      as staged_users,
        coalesce(mart.new_users, 0)             as mart_new_users,
        coalesce(staged_sessions.new_users, 0)  as staged_new_users,
        coalesce(mart.key_events, 0)            as mart_key_events,
        coalesce(staged_conversions.key_events, 0) as staged_key_events,
        coalesce(mart.revenue, 0)               as mart_revenue,
        coalesce(staged_conversions.revenue, 0) as staged_revenue
    from mart
    full outer join staged_sessions on mart.date = staged_sessions.date
    full outer join staged_conversions
        on coalesce(mart.date, staged_sessions.date) = staged_conversions.date

)

select *
from compared
where mart_sessions != staged_sessions
   or mart_users != staged_users
   or mart_new_users != staged_new_users
   -- key events and revenue are doubles summed in another order: equal up to rounding
   or abs(mart_key_events - staged_key_events) > 1e-6 * greatest(1, abs(staged_key_events))
   or abs(mart_revenue - staged_revenue) > 1e-6 * greatest(1, abs(staged_revenue))
