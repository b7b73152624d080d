-- The account's campaign registry, read from its CSV on every build. It is account configuration rather than a
-- dbt seed because the account is chosen at run time: the reference account's file in dbt_project/account_seeds/,
-- or the directory GAELP_ACCOUNT_SEEDS names (a demo world with other campaigns gets its own under its data
-- directory). macros/account_seed.sql resolves the path.

select platform, campaign_id, campaign_name, product, intent, status
from read_csv(
    '{{ account_seed("campaign_registry.csv") }}',
    header = true,
    columns = {
        'platform': 'varchar',
        'campaign_id': 'bigint',
        'campaign_name': 'varchar',
        'product': 'varchar',
        'intent': 'varchar',
        'status': 'varchar'
    }
)
