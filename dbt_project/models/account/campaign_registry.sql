-- The account's campaign registry, read from its CSV on every build. It is account configuration rather than a
-- dbt seed because the account is chosen at run time: the reference account's file in dbt_project/account_seeds/,
-- or the directory GAELP_ACCOUNT_SEEDS names (a demo world with other campaigns gets its own under its data
-- directory; an absolute path, empty meaning unset, as rl/campaign_registry.py, which reads the same file, requires).
-- The default is the project's own account_seeds/, wherever dbt runs from (--project-dir or the working directory).

select platform, campaign_id, campaign_name, product, intent, status
from read_csv(
    '{{ env_var("GAELP_ACCOUNT_SEEDS", "") or ((invocation_args_dict.get("project_dir") or ".") ~ "/account_seeds") }}/campaign_registry.csv',
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
