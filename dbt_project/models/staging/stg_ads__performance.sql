-- Ad platform delivery, one row per platform × campaign × date × hour × device (cells without activity have no row).
-- Conversions here are by CLICK date: the platform credits a conversion to the day and hour of the click that led
-- to it, whenever it happens, so recent days keep maturing. That makes spend and conversions of one row belong to
-- the same purchase decision, which is what CPA and ROAS per day need.

with source as (

    select * from {{ source('raw', 'ad_performance') }}

),

renamed as (

    select
        platform,
        cast(campaign_id as bigint)                    as campaign_id,
        trim(campaign_name)                            as campaign_name,
        cast(date as date)                             as date,
        cast(hour as integer)                          as hour,
        lower(trim(device))                            as device,
        cast(impressions as bigint)                    as impressions,
        cast(clicks as bigint)                         as clicks,
        cost_micros / 1e6                              as spend,
        cast(conversions as double)                    as conversions,
        cast(conversions_value as double)              as conversion_value,
        -- impressions / eligible impressions for search; the platforms report none for social (null)
        cast(search_impression_share as double)        as search_impression_share
    from source

)

select * from renamed
