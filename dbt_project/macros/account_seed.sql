{#- The path of one of the account's configuration files (campaign_registry.csv, campaign_ga4_mapping.csv): in the
    directory GAELP_ACCOUNT_SEEDS names (absolute; empty means unset, as in rl/campaign_registry.py, which reads the
    same files), else in the project's own account_seeds/, wherever dbt runs from (--project-dir or the working
    directory). -#}
{% macro account_seed(filename) -%}
{{ env_var("GAELP_ACCOUNT_SEEDS", "") or ((invocation_args_dict.get("project_dir") or ".") ~ "/account_seeds") }}/{{ filename }}
{%- endmacro %}
