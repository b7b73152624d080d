-- One row per date × campaign × device: ad delivery and click-date conversions as the ad platforms report them per
-- device (segments.device), hours summed. Beside fct_device_daily (GA4: sessions by session date, key events by
-- conversion date), this is the ad platforms' side of the device split: what a click cost and bought on each
-- device, the input of device bid modifiers and of the simulator's device effects.

with ads as (

    select * from {{ ref('stg_ads__performance') }}

),

campaigns as (

    select * from {{ ref('dim_campaign') }}

),

daily as (

    select
        date,
        platform,
        campaign_id,
        device,
        sum(spend)              as spend,
        sum(impressions)        as impressions,
        sum(clicks)             as clicks,
        sum(conversions)        as conversions,
        sum(conversion_value)   as conversion_value,
        -- impressions / eligible impressions over the day's hours (harmonic mean of the hourly shares, weighted by
        -- impressions); hours the campaign was eligible for but never shown have no row, so this leans high
        sum(impressions) filter (where search_impression_share > 0)
            / nullif(sum(impressions / search_impression_share) filter (where search_impression_share > 0), 0)
                                as impression_share
    from ads
    group by all

)

select
    daily.date,
    daily.platform,
    daily.campaign_id,
    campaigns.campaign_name,
    daily.device,
    daily.spend,
    daily.impressions,
    daily.clicks,
    daily.conversions,
    daily.conversion_value,
    daily.impression_share
from daily
left join campaigns using (platform, campaign_id)
