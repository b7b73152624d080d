-- Every GA4 session, user, key event and unit of revenue, one row per date × channel group × source/medium ×
-- campaign name: organic, direct, referral, paid campaigns outside the registry and GA4's own odd values ("(not
-- set)", "(data deleted)", "<Other>", nulls) included as rows of their own. Each row says whether it maps to a
-- registered campaign, and to which, through dim_campaign with the same match as int_ga4__sessions_by_campaign
-- (source/medium, campaign name ignoring case): the campaign marts hold exactly the mapped rows.
-- Sessions count on the SESSION date, key events and revenue on the CONVERSION date (GA4 last click), as in
-- fct_campaign_daily. A day's totals equal the staging totals (assert_ga4_traffic_reconciles_with_staging).

with sessions as (

    select
        session_date          as date,
        channel_group,
        source_medium,
        campaign_name,
        sum(sessions)         as sessions,
        sum(total_users)      as users,
        sum(new_users)        as new_users,
        0.0                   as key_events,
        0.0                   as revenue
    from {{ ref('stg_ga4__sessions') }}
    group by all

),

conversions as (

    select
        conversion_date       as date,
        channel_group,
        source_medium,
        campaign_name,
        0::bigint             as sessions,
        0::bigint             as users,
        0::bigint             as new_users,
        sum(key_events)       as key_events,
        sum(revenue)          as revenue
    from {{ ref('stg_ga4__conversions') }}
    group by all

),

-- a union, not a join, so that rows whose keys are null still meet their own kind (null = null is not true)
traffic as (

    select
        date,
        channel_group,
        source_medium,
        campaign_name,
        sum(sessions)::bigint  as sessions,
        sum(users)::bigint     as users,
        sum(new_users)::bigint as new_users,
        sum(key_events)        as key_events,
        sum(revenue)           as revenue
    from (
        select * from sessions
        union all by name
        select * from conversions
    )
    group by all

),

campaigns as (

    select * from {{ ref('dim_campaign') }}

),

paid_source_mediums as (

    select distinct ga4_source_medium from campaigns

)

select
    traffic.date,
    traffic.channel_group,
    traffic.source_medium,
    traffic.campaign_name,
    campaigns.campaign_id is not null                        as is_registered_campaign,
    -- a paid platform's source/medium (a campaign could be credited with it) whatever the campaign name
    traffic.source_medium in (select ga4_source_medium from paid_source_mediums) is true
                                                             as is_paid_source_medium,
    campaigns.platform,
    campaigns.campaign_id,
    campaigns.campaign_name                                  as registered_campaign_name,
    traffic.sessions,
    traffic.users,
    traffic.new_users,
    traffic.key_events,
    traffic.revenue
from traffic
left join campaigns
    on  traffic.source_medium = campaigns.ga4_source_medium
    and lower(traffic.campaign_name) = campaigns.ga4_campaign_name
