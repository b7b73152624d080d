-- GA4 key events (conversions) and revenue, one row per CONVERSION date × channel group × source/medium ×
-- campaign × device. GA4 counts a conversion on the day it happens and credits the last-click campaign, so a
-- day's figure is final the next day but belongs to clicks bought on earlier days (compare the ads' click-date
-- conversions in stg_ads__performance).

with source as (

    select * from {{ source('raw', 'ga4_conversions') }}

),

renamed as (

    select
        cast(date as date)             as conversion_date,
        trim(channel_group)            as channel_group,
        trim(source_medium)            as source_medium,
        trim(campaign_name)            as campaign_name,
        lower(trim(device))            as device,
        cast(key_events as double)     as key_events,
        cast(revenue as double)        as revenue
    from source

)

select * from renamed
