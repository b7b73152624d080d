-- One row per campaign (platform × campaign_id) from the operator's registry, with how its traffic appears in
-- GA4. This is the ONLY place an ad platform campaign is tied to GA4: every GA4 figure reaches a campaign
-- through ga4_source_medium + ga4_campaign_name below, from the platform_channels seed.

with registry as (

    select * from {{ ref('campaign_registry') }}

),

channels as (

    select * from {{ ref('platform_channels') }}

)

select
    registry.platform,
    registry.campaign_id,
    registry.campaign_name,
    registry.product,
    registry.intent,
    registry.status,
    channels.ga4_source_medium,
    channels.ga4_channel_group,
    -- GA4's sessionCampaignName of auto-tagged clicks is the platform's campaign name; matching ignores case and
    -- surrounding blanks, which GA4 and the platforms do not always agree on
    lower(trim(registry.campaign_name)) as ga4_campaign_name
from registry
left join channels using (platform)
