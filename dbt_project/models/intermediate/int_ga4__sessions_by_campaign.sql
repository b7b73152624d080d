-- GA4 sessions of paid campaigns, by session date × hour × device × campaign: the GA4 rows whose source/medium
-- and campaign name match a campaign in dim_campaign. Unpaid traffic ((organic), (direct)) and paid rows of
-- unknown campaigns drop out here (the latter are reported by assert_no_unmapped_paid_ga4_sessions).

with sessions as (

    select * from {{ ref('stg_ga4__sessions') }}

),

campaigns as (

    select * from {{ ref('dim_campaign') }}

)

select
    sessions.session_date,
    sessions.session_hour,
    sessions.device,
    campaigns.platform,
    campaigns.campaign_id,
    sum(sessions.sessions)      as sessions,
    sum(sessions.total_users)   as users,
    sum(sessions.new_users)     as new_users
from sessions
inner join campaigns
    on  sessions.source_medium = campaigns.ga4_source_medium
    and lower(sessions.campaign_name) = campaigns.ga4_campaign_name
group by all
