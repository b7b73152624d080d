-- How long after the click each campaign's conversions arrive: one row per campaign × lag bucket, over the click
-- dates that are mature, i.e. at least `conversion_lag_mature_days` (30) days before the latest date in the ads
-- data. Younger click dates are left out because their late conversions have not been reported yet, which would
-- bias the distribution towards short lags. (Lags longer than 30 days are only complete for click dates that
-- are older still; they are rare.)
--
-- Every campaign gets every known bucket (0 where it had none), so share and cumulative_share form a complete
-- distribution a simulator can sample and from which the maturity of a recent day can be read:
-- cumulative_share at lag d = the part of a click date's conversions reported d days after it.

with lag as (

    select * from {{ ref('stg_ads__conversion_lag') }}

),

latest as (

    -- the ads delivery table has a row every day the account spends; the lag table only on days with conversions
    select max(date) as latest_date from {{ ref('stg_ads__performance') }}

),

mature as (

    select lag.*
    from lag
    cross join latest
    where lag.click_date <= latest.latest_date - {{ var('conversion_lag_mature_days') }}

),

by_bucket as (

    select
        platform,
        campaign_id,
        conversion_lag_bucket,
        sum(conversions)       as conversions,
        sum(conversion_value)  as conversion_value
    from mature
    group by all

),

-- campaigns × buckets: the known buckets always, UNKNOWN/UNSPECIFIED only where they were reported
grid as (

    select
        campaigns.platform,
        campaigns.campaign_id,
        buckets.conversion_lag_bucket,
        buckets.lag_days_min,
        buckets.lag_days_max,
        buckets.bucket_order
    from {{ ref('dim_campaign') }} as campaigns
    cross join {{ ref('conversion_lag_buckets') }} as buckets

),

filled as (

    select
        grid.platform,
        grid.campaign_id,
        grid.conversion_lag_bucket,
        grid.bucket_order,
        grid.lag_days_min,
        grid.lag_days_max,
        coalesce(by_bucket.conversions, 0)       as conversions,
        coalesce(by_bucket.conversion_value, 0)  as conversion_value
    from grid
    left join by_bucket using (platform, campaign_id, conversion_lag_bucket)
    where grid.lag_days_min is not null or by_bucket.conversions > 0

),

window_bounds as (

    select
        min(click_date) as first_click_date,
        max(click_date) as last_click_date
    from mature

)

select
    filled.platform,
    filled.campaign_id,
    filled.conversion_lag_bucket,
    filled.bucket_order,
    filled.lag_days_min,
    filled.lag_days_max,
    filled.conversions,
    filled.conversion_value,
    filled.conversions
        / nullif(sum(filled.conversions) over campaign, 0)                  as share,
    sum(filled.conversions) over (campaign order by filled.bucket_order
                                  rows between unbounded preceding and current row)
        / nullif(sum(filled.conversions) over campaign, 0)                  as cumulative_share,
    window_bounds.first_click_date,
    window_bounds.last_click_date
from filled
cross join window_bounds
window campaign as (partition by filled.platform, filled.campaign_id)
