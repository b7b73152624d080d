-- One row per date × hour × campaign: ad delivery (conversions by click date and hour) next to GA4 sessions
-- started in that hour (devices summed on both sides; fct_campaign_device_daily has the devices). The hour-of-day shape of auctions and traffic that pacing and
-- hour-of-day bid modifiers act on.

with ads as (

    -- devices summed; the hour's impression share is impressions / eligible impressions over its devices (the
    -- impressions-weighted harmonic mean of the device shares), null where no device reported one (social)
    select
        date,
        hour,
        platform,
        campaign_id,
        sum(spend)              as spend,
        sum(impressions)        as impressions,
        sum(clicks)             as clicks,
        sum(conversions)        as conversions,
        sum(conversion_value)   as conversion_value,
        sum(impressions) filter (where search_impression_share > 0)
            / nullif(sum(impressions / search_impression_share) filter (where search_impression_share > 0), 0)
                                as search_impression_share
    from {{ ref('stg_ads__performance') }}
    group by all

),

sessions as (

    select
        session_date as date,
        session_hour as hour,
        platform,
        campaign_id,
        sum(sessions) as sessions
    from {{ ref('int_ga4__sessions_by_campaign') }}
    group by all

),

campaigns as (

    select * from {{ ref('dim_campaign') }}

),

joined as (

    -- full outer join: an hour can have GA4 sessions without ad delivery (a late visit from an earlier click
    -- still counts as a session of the hour it started)
    select
        date,
        hour,
        platform,
        campaign_id,
        coalesce(ads.spend, 0)              as spend,
        coalesce(ads.impressions, 0)        as impressions,
        coalesce(ads.clicks, 0)             as clicks,
        coalesce(ads.conversions, 0)        as conversions,
        coalesce(ads.conversion_value, 0)   as conversion_value,
        ads.search_impression_share         as impression_share,
        coalesce(sessions.sessions, 0)      as sessions
    from ads
    full outer join sessions using (date, hour, platform, campaign_id)

)

select
    joined.date,
    joined.hour,
    joined.platform,
    joined.campaign_id,
    campaigns.campaign_name,
    campaigns.product,
    campaigns.intent,
    joined.spend,
    joined.impressions,
    joined.clicks,
    joined.conversions,
    joined.conversion_value,
    joined.impression_share,
    joined.sessions
from joined
left join campaigns using (platform, campaign_id)
