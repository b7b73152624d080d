-- Ad platform conversions by CLICK date × conversion lag bucket, with the bucket's range in days.
-- Summed over buckets, a click date's conversions equal stg_ads__performance's click-date conversions; the split
-- says how long after the click they came, which is what tells how far a recent day still is from mature.

with source as (

    select * from {{ source('raw', 'ad_conversion_lag') }}

),

buckets as (

    select * from {{ ref('conversion_lag_buckets') }}

),

renamed as (

    select
        platform,
        cast(campaign_id as bigint)           as campaign_id,
        cast(date as date)                    as click_date,
        trim(conversion_lag_bucket)           as conversion_lag_bucket,
        cast(conversions as double)           as conversions,
        cast(conversions_value as double)     as conversion_value
    from source

)

select
    renamed.platform,
    renamed.campaign_id,
    renamed.click_date,
    renamed.conversion_lag_bucket,
    buckets.lag_days_min,     -- inclusive
    buckets.lag_days_max,     -- exclusive
    buckets.bucket_order,
    renamed.conversions,
    renamed.conversion_value
from renamed
left join buckets using (conversion_lag_bucket)   -- an unknown enum name keeps its row (and fails a test)
