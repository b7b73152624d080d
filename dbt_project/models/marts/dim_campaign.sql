-- One row per campaign (platform × campaign_id) from the operator's registry, with how its traffic appears in
-- GA4. This is the ONLY place an ad platform campaign is tied to GA4: every GA4 figure reaches a campaign
-- through ga4_source_medium + ga4_campaign_name below, from the platform_channels seed, unless the reviewed
-- account file maps the campaign otherwise (its UTM tags: the campaign_ga4_mapping overrides, written by
-- `gaelp accounts check --write`).

with registry as (

    select * from {{ ref('campaign_registry') }}

),

channels as (

    select * from {{ ref('platform_channels') }}

),

mapping as (

    select * from {{ ref('campaign_ga4_mapping') }}

)

select
    registry.platform,
    registry.campaign_id,
    registry.campaign_name,
    registry.product,
    registry.intent,
    registry.status,
    coalesce(mapping.ga4_source_medium, channels.ga4_source_medium) as ga4_source_medium,
    channels.ga4_channel_group,
    -- GA4's sessionCampaignName of auto-tagged clicks is the platform's campaign name; matching ignores case and
    -- surrounding blanks, which GA4 and the platforms do not always agree on
    lower(trim(coalesce(mapping.ga4_campaign_name, registry.campaign_name))) as ga4_campaign_name
from registry
left join channels using (platform)
left join mapping using (platform, campaign_id)
