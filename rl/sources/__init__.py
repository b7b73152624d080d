"""Pure-Python parsers of the ad and analytics platforms' SDK response types into typed tables (what comes in; the
reports GAELP writes for people are `rl.reporting`).

The same parser reads live API responses and the demo market's answers (which use the SDKs' own response types),
so what the pipeline ingests cannot depend on where the data came from. Nothing here imports Dagster.
"""
