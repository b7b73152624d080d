-- Day-of-week profile per campaign over the whole history (ISO day of week: 1 = Monday … 7 = Sunday).
--
-- A history rarely holds the same number of each weekday, so totals are turned into averages per calendar day of
-- that weekday (days without any activity count, as zeros) before shares are taken: `*_share` is the weekday's
-- part of an average week, and share × 7 is its index against an average day (1.0 = average). Conversions are by
-- click date, GA4 key events by conversion date.

with daily as (

    select * from {{ ref('fct_campaign_daily') }}

),

calendar as (

    -- every day of the history, with how many of each weekday it holds
    select cast(unnest(generate_series(min(date), max(date), interval 1 day)) as date) as date
    from daily

),

weekdays as (

    select isodow(date) as day_of_week, count(*) as n_days
    from calendar
    group by all

),

grid as (

    select campaigns.platform, campaigns.campaign_id, weekdays.day_of_week, weekdays.n_days
    from {{ ref('dim_campaign') }} as campaigns
    cross join weekdays

),

totals as (

    select
        grid.platform,
        grid.campaign_id,
        grid.day_of_week,
        grid.n_days,
        coalesce(sum(daily.impressions), 0)  as impressions,
        coalesce(sum(daily.clicks), 0)       as clicks,
        coalesce(sum(daily.spend), 0)        as spend,
        coalesce(sum(daily.conversions), 0)  as conversions,
        coalesce(sum(daily.sessions), 0)     as sessions,
        coalesce(sum(daily.key_events), 0)   as key_events
    from grid
    left join daily
        on  daily.platform = grid.platform
        and daily.campaign_id = grid.campaign_id
        and isodow(daily.date) = grid.day_of_week
    group by all

),

per_day as (

    select
        *,
        impressions / n_days  as impressions_per_day,
        clicks / n_days       as clicks_per_day,
        spend / n_days        as spend_per_day,
        conversions / n_days  as conversions_per_day,
        sessions / n_days     as sessions_per_day,
        key_events / n_days   as key_events_per_day
    from totals

)

select
    platform,
    campaign_id,
    day_of_week,
    n_days,
    impressions,
    clicks,
    spend,
    conversions,
    sessions,
    key_events,
    impressions_per_day,
    clicks_per_day,
    spend_per_day,
    conversions_per_day,
    sessions_per_day,
    key_events_per_day,
    impressions_per_day / nullif(sum(impressions_per_day) over campaign, 0)  as impressions_share,
    clicks_per_day      / nullif(sum(clicks_per_day)      over campaign, 0)  as clicks_share,
    spend_per_day       / nullif(sum(spend_per_day)       over campaign, 0)  as spend_share,
    conversions_per_day / nullif(sum(conversions_per_day) over campaign, 0)  as conversions_share,
    sessions_per_day    / nullif(sum(sessions_per_day)    over campaign, 0)  as sessions_share,
    key_events_per_day  / nullif(sum(key_events_per_day)  over campaign, 0)  as key_events_share
from per_day
window campaign as (partition by platform, campaign_id)
