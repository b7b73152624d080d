"""Connecting an ad account: its campaigns, budgets and ad groups as the platforms list them (discovery), the one
file a marketer reviews (`review`), its validation against the platforms and the registry and push targets it
compiles to (`check`), and the daily comparison of what GAELP manages with what the platforms hold (`drift`).

Pure Python (no Dagster): the platform calls are made by the push resources in `orchestration.resources.platforms`,
which hand this package the official SDKs' answers.
"""
