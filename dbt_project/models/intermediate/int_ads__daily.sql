-- Ad platform delivery rolled up from hours and devices to days per campaign, conversions still by click date.
--
-- Impression share is the platform's own daily figure (stg_ads__impression_share): a share is not additive, and
-- rebuilding it from hours misses the hours the campaign was eligible for but not shown (they have no hourly
-- row), which biases it upwards. Where the daily figure is missing, the impressions-weighted harmonic mean of
-- the hourly shares stands in. Social platforms report no share (null).

with hourly as (

    select * from {{ ref('stg_ads__performance') }}

),

daily_share as (

    select * from {{ ref('stg_ads__impression_share') }}

),

rolled as (

select
    date,
    platform,
    campaign_id,
    sum(impressions)         as impressions,
    sum(clicks)              as clicks,
    sum(spend)               as spend,
    sum(conversions)         as conversions,
    sum(conversion_value)    as conversion_value,
    sum(impressions / search_impression_share)
        filter (where search_impression_share > 0)                    as eligible_impressions,
    sum(impressions) filter (where search_impression_share > 0)
        / nullif(sum(impressions / search_impression_share)
                 filter (where search_impression_share > 0), 0)       as search_impression_share,
    count(distinct hour)     as active_hours
from hourly
group by all

)

select
    rolled.date,
    rolled.platform,
    rolled.campaign_id,
    rolled.impressions,
    rolled.clicks,
    rolled.spend,
    rolled.conversions,
    rolled.conversion_value,
    rolled.impressions / nullif(coalesce(daily_share.search_impression_share, rolled.search_impression_share), 0)
                                                                         as eligible_impressions,
    coalesce(daily_share.search_impression_share, rolled.search_impression_share) as search_impression_share,
    rolled.active_hours
from rolled
left join daily_share using (date, platform, campaign_id)
