-- Ad platform delivery rolled up from hours to days per campaign, conversions still by click date.
--
-- Impression share is not averaged: a day's share is its impressions over its eligible impressions, as the
-- platforms compute it. Each hour's eligible impressions are impressions / share, so the day's share is the
-- impressions-weighted harmonic mean of the hourly shares. Hours without a share (social) are left out; a
-- campaign-day with none (social platforms) has a null share.

with hourly as (

    select * from {{ ref('stg_ads__performance') }}

)

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
    count(*)                 as active_hours
from hourly
group by all
