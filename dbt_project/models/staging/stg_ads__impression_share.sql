-- The day's search impression share per platform × campaign × date, as the platform computes it.

with source as (

    select * from {{ source('raw', 'ad_impression_share') }}

)

select
    platform,
    cast(campaign_id as bigint)               as campaign_id,
    cast(date as date)                        as date,
    cast(search_impression_share as double)   as search_impression_share
from source
