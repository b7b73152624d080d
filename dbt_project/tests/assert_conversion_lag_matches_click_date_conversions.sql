-- The lag report splits each click date's conversions into lag buckets, so summed over buckets it must give
-- the click-date conversions of the delivery report for the same campaign and day. A difference means one of
-- the two reports is stale or was cut short (e.g. one table re-ingested without the other). Returns the
-- campaign-days that differ by more than a rounding error. An error, not a warning: the delivery report's
-- click-date conversions are the conversions the plan is computed from, and the two reports are re-pulled over
-- the same window, so a difference is a broken ingestion and blocks the plan. Its rows are stored (store_failures)
-- so that the Dagster check lists the campaign-days in its metadata (assets/warehouse.py).
{{ config(severity='error', store_failures=true, meta={'dagster': {'ref': {'name': 'stg_ads__conversion_lag'}}}) }}

with lag as (

    select platform, campaign_id, click_date as date, sum(conversions) as lag_conversions
    from {{ ref('stg_ads__conversion_lag') }}
    group by all

),

delivery as (

    select platform, campaign_id, date, sum(conversions) as delivery_conversions
    from {{ ref('stg_ads__performance') }}
    group by all

)

select
    platform,
    campaign_id,
    date,
    coalesce(lag.lag_conversions, 0)            as lag_conversions,
    coalesce(delivery.delivery_conversions, 0)  as delivery_conversions,
    abs(coalesce(delivery.delivery_conversions, 0) - coalesce(lag.lag_conversions, 0)) as conversions_apart
from lag
full outer join delivery using (platform, campaign_id, date)
where abs(coalesce(lag.lag_conversions, 0) - coalesce(delivery.delivery_conversions, 0)) > 0.01
