-- One row per date × device × campaign from GA4 (the ad platforms' device split is fct_campaign_device_daily):
-- sessions and users by SESSION date, key events and revenue by CONVERSION date (last click). Feeds the simulator's device mix and the
-- device conversion rates (over a window long enough that the two clocks even out).

with sessions as (

    select
        session_date as date,
        device,
        platform,
        campaign_id,
        sum(sessions)  as sessions,
        sum(users)     as users,
        sum(new_users) as new_users
    from {{ ref('int_ga4__sessions_by_campaign') }}
    group by all

),

conversions as (

    select
        conversion_date as date,
        device,
        platform,
        campaign_id,
        key_events,
        revenue
    from {{ ref('int_ga4__conversions_by_campaign') }}

),

campaigns as (

    select * from {{ ref('dim_campaign') }}

),

joined as (

    select
        date,
        device,
        platform,
        campaign_id,
        coalesce(sessions.sessions, 0)       as sessions,
        coalesce(sessions.users, 0)          as users,
        coalesce(sessions.new_users, 0)      as new_users,
        coalesce(conversions.key_events, 0)  as key_events,
        coalesce(conversions.revenue, 0)     as revenue
    from sessions
    full outer join conversions using (date, device, platform, campaign_id)

)

select
    joined.date,
    joined.device,
    joined.platform,
    joined.campaign_id,
    campaigns.campaign_name,
    joined.sessions,
    joined.users,
    joined.new_users,
    joined.key_events,
    joined.revenue
from joined
left join campaigns using (platform, campaign_id)
