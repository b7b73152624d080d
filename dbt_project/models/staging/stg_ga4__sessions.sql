-- GA4 sessions, one row per session date × hour × channel group × source/medium × campaign × device.
-- Sessions count on the day (and hour) they started: that is when the ad click that brought them was bought,
-- so they line up with the ad platforms' delivery rows.

with source as (

    select * from {{ source('raw', 'ga4_sessions') }}

),

renamed as (

    select
        cast(date as date)             as session_date,
        cast(hour as integer)          as session_hour,
        trim(channel_group)            as channel_group,
        trim(source_medium)            as source_medium,
        trim(campaign_name)            as campaign_name,
        lower(trim(device))            as device,
        cast(sessions as bigint)       as sessions,
        cast(total_users as bigint)    as total_users,
        cast(new_users as bigint)      as new_users
    from source

)

select * from renamed
