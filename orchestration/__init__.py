"""Dagster wiring only: the one `Definitions`, resources, schedules, sensors, jobs, and the environment choice."""
