-- One row per date × campaign with what the ad platforms and GA4 reported, side by side.
--
-- Two attribution clocks, deliberately not mixed:
--   * spend, impressions, clicks and the ads' conversions/conversion_value are by CLICK (delivery) date: a day's
--     conversions belong to that day's spend, so cpa and roas below are "what this day's money bought" (and are
--     still growing for recent days);
--   * sessions/users are by SESSION date (same day as the click), while GA4 key_events/revenue are by
--     CONVERSION date (the day they happened, credited to the last-click campaign): final the next day, but they
--     belong to clicks bought on earlier days.
-- A row exists when either side reported something for the campaign that day (or settings were in force);
-- missing figures are 0. daily_budget / bid / bid_kind are the settings in force that day (null before the
-- settings report was first pulled).

with ads as (

    select * from {{ ref('int_ads__daily') }}

),

sessions as (

    select
        session_date as date,
        platform,
        campaign_id,
        sum(sessions)  as sessions,
        sum(users)     as users,
        sum(new_users) as new_users
    from {{ ref('int_ga4__sessions_by_campaign') }}
    group by all

),

ga4_conversions as (

    select
        conversion_date as date,
        platform,
        campaign_id,
        sum(key_events) as key_events,
        sum(revenue)    as revenue
    from {{ ref('int_ga4__conversions_by_campaign') }}
    group by all

),

settings as (

    select date, platform, campaign_id, daily_budget, bid, bid_kind from {{ ref('stg_ads__settings') }}

),

campaigns as (

    select * from {{ ref('dim_campaign') }}

),

-- every (date, campaign) any source reported
keys as (

    select date, platform, campaign_id from ads
    union
    select date, platform, campaign_id from sessions
    union
    select date, platform, campaign_id from ga4_conversions
    union
    select date, platform, campaign_id from settings

),

joined as (

    select
        keys.date,
        keys.platform,
        keys.campaign_id,
        coalesce(ads.spend, 0)                    as spend,
        coalesce(ads.impressions, 0)              as impressions,
        coalesce(ads.clicks, 0)                   as clicks,
        coalesce(ads.conversions, 0)              as conversions,
        coalesce(ads.conversion_value, 0)         as conversion_value,
        ads.search_impression_share               as impression_share,
        coalesce(sessions.sessions, 0)            as sessions,
        coalesce(sessions.users, 0)               as users,
        coalesce(sessions.new_users, 0)           as new_users,
        coalesce(ga4_conversions.key_events, 0)   as key_events,
        coalesce(ga4_conversions.revenue, 0)      as revenue,
        settings.daily_budget,
        settings.bid,
        settings.bid_kind
    from keys
    left join ads             using (date, platform, campaign_id)
    left join sessions        using (date, platform, campaign_id)
    left join ga4_conversions using (date, platform, campaign_id)
    left join settings        using (date, platform, campaign_id)

)

select
    joined.date,
    joined.platform,
    joined.campaign_id,
    campaigns.campaign_name,
    campaigns.product,
    campaigns.intent,
    campaigns.ga4_channel_group                                as channel_group,
    joined.spend,
    joined.impressions,
    joined.clicks,
    joined.conversions,
    joined.conversion_value,
    joined.sessions,
    joined.users,
    joined.new_users,
    joined.key_events,
    joined.revenue,
    joined.clicks / nullif(joined.impressions, 0)              as ctr,
    joined.spend / nullif(joined.clicks, 0)                    as cpc,
    joined.spend / nullif(joined.conversions, 0)               as cpa,
    joined.conversion_value / nullif(joined.spend, 0)          as roas,
    joined.impression_share,
    joined.daily_budget,
    joined.bid,
    joined.bid_kind,
    joined.spend / nullif(joined.daily_budget, 0)              as budget_utilisation
from joined
left join campaigns using (platform, campaign_id)   -- unknown campaigns keep their spend (and fail tests)
