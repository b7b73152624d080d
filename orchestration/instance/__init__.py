"""The local Dagster instance: dagster.yaml (copied into DAGSTER_HOME) and the event-log storage it names."""
