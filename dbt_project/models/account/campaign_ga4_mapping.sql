-- The account's GA4 mapping overrides, read from their CSV next to the campaign registry (see campaign_registry).

select platform, campaign_id, ga4_source_medium, ga4_campaign_name
from read_csv(
    '{{ account_seed("campaign_ga4_mapping.csv") }}',
    header = true,
    columns = {
        'platform': 'varchar',
        'campaign_id': 'bigint',
        'ga4_source_medium': 'varchar',
        'ga4_campaign_name': 'varchar'
    }
)
