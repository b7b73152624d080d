-- Hour-of-day profile per campaign over the whole history: for each of the 24 hours, the totals and the share of
-- the campaign's impressions, clicks, spend, conversions (by click hour) and GA4 sessions that fell in it. The
-- simulator's hour-of-day arrival and competition profiles are fitted to these shares; every campaign has all 24
-- hours (0 where nothing happened), and each share column sums to 1 per campaign (null when the total is 0).

with hourly as (

    select * from {{ ref('fct_campaign_hourly') }}

),

grid as (

    select campaigns.platform, campaigns.campaign_id, hours.hour
    from {{ ref('dim_campaign') }} as campaigns
    cross join (select cast(range as integer) as hour from range(24)) as hours

),

totals as (

    select
        grid.platform,
        grid.campaign_id,
        grid.hour,
        coalesce(sum(hourly.impressions), 0)  as impressions,
        coalesce(sum(hourly.clicks), 0)       as clicks,
        coalesce(sum(hourly.spend), 0)        as spend,
        coalesce(sum(hourly.conversions), 0)  as conversions,
        coalesce(sum(hourly.sessions), 0)     as sessions
    from grid
    left join hourly using (platform, campaign_id, hour)
    group by all

)

select
    platform,
    campaign_id,
    hour,
    impressions,
    clicks,
    spend,
    conversions,
    sessions,
    impressions / nullif(sum(impressions) over campaign, 0)  as impressions_share,
    clicks      / nullif(sum(clicks)      over campaign, 0)  as clicks_share,
    spend       / nullif(sum(spend)       over campaign, 0)  as spend_share,
    conversions / nullif(sum(conversions) over campaign, 0)  as conversions_share,
    sessions    / nullif(sum(sessions)    over campaign, 0)  as sessions_share
from totals
window campaign as (partition by platform, campaign_id)
