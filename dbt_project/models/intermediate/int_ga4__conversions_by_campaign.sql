-- GA4 key events and revenue of paid campaigns, by CONVERSION date × device × campaign (GA4 last click), matched
-- to campaigns through dim_campaign like the sessions.

with conversions as (

    select * from {{ ref('stg_ga4__conversions') }}

),

campaigns as (

    select * from {{ ref('dim_campaign') }}

)

select
    conversions.conversion_date,
    conversions.device,
    campaigns.platform,
    campaigns.campaign_id,
    sum(conversions.key_events)  as key_events,
    sum(conversions.revenue)     as revenue
from conversions
inner join campaigns
    on  conversions.source_medium = campaigns.ga4_source_medium
    and lower(conversions.campaign_name) = campaigns.ga4_campaign_name
group by all
