-- The budget and bid in force per platform × campaign × date, in currency. Search platforms bid a max CPC,
-- social platforms a CPM bid cap: `bid` is whichever the platform uses and `bid_kind` says which.

with source as (

    select * from {{ source('raw', 'ad_settings') }}

),

renamed as (

    select
        platform,
        cast(campaign_id as bigint)                          as campaign_id,
        cast(date as date)                                   as date,
        cast(ad_group_id as bigint)                          as ad_group_id,
        budget_micros / 1e6                                  as daily_budget,
        coalesce(cpc_bid_micros, cpm_bid_micros) / 1e6       as bid,
        case when cpc_bid_micros is not null then 'max_cpc' else 'cpm_cap' end as bid_kind
    from source

)

select * from renamed
