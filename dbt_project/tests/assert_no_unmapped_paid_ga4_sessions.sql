-- GA4 sessions that come from a paid platform (their source/medium is one of platform_channels) but whose
-- campaign name matches no campaign in dim_campaign: traffic we pay for that no campaign is credited with
-- (a renamed campaign, a campaign missing from the registry, broken auto-tagging). A warning, not an error:
-- GA4 reports some "(not set)" campaigns of its own, but a growing number means the mapping needs attention.
-- Its rows are stored (store_failures: main_dbt_test__audit.assert_no_unmapped_paid_ga4_sessions) so that the
-- Dagster check lists the campaign names and their sessions in its metadata (assets/warehouse.py).
{{ config(severity='warn', store_failures=true, meta={'dagster': {'ref': {'name': 'stg_ga4__sessions'}}}) }}

with sessions as (

    select * from {{ ref('stg_ga4__sessions') }}

),

campaigns as (

    select * from {{ ref('dim_campaign') }}

),

paid as (

    select sessions.*
    from sessions
    semi join (select distinct ga4_source_medium from campaigns) as paid_channels
        on sessions.source_medium = paid_channels.ga4_source_medium

)

select
    paid.source_medium,
    paid.campaign_name,
    min(paid.session_date) as first_seen,
    max(paid.session_date) as last_seen,
    sum(paid.sessions)::bigint as sessions
from paid
anti join campaigns
    on  paid.source_medium = campaigns.ga4_source_medium
    and lower(paid.campaign_name) = campaigns.ga4_campaign_name
group by all
