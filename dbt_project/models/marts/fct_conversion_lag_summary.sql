-- One row per campaign: how much of the mature click dates' conversions there were, and the mean lag from click
-- to conversion, estimated from the lag buckets with each bucket at its mid-point (LESS_THAN_ONE_DAY = 0.5 days,
-- FOURTEEN_TO_TWENTY_ONE_DAYS = 17.5 days, ...). Conversions in UNKNOWN buckets count in `conversions` but not in
-- the mean. The median bucket is the first one whose cumulative share reaches one half.

with lag as (

    select * from {{ ref('fct_conversion_lag') }}

),

median_bucket as (

    select
        platform,
        campaign_id,
        arg_min(conversion_lag_bucket, bucket_order) as median_lag_bucket
    from lag
    where cumulative_share >= 0.5
    group by all

)

select
    lag.platform,
    lag.campaign_id,
    min(lag.first_click_date)                                          as first_click_date,
    max(lag.last_click_date)                                           as last_click_date,
    sum(lag.conversions)                                               as conversions,
    sum(lag.conversions * (lag.lag_days_min + lag.lag_days_max) / 2.0)
        / nullif(sum(lag.conversions) filter (where lag.lag_days_min is not null), 0)
                                                                       as mean_lag_days,
    any_value(median_bucket.median_lag_bucket)                         as median_lag_bucket
from lag
left join median_bucket using (platform, campaign_id)
group by lag.platform, lag.campaign_id
