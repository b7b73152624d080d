"""Schedules: the daily bidding run and the weekly recalibrate-and-retrain run."""

import dagster as dg

from orchestration.jobs import daily_bidding_job, retrain_job

# Every morning at 06:00 UTC for yesterday's partition (the last complete day): ingest → warehouse → discovery →
# plan → push.
daily_bidding_schedule = dg.build_schedule_from_partitioned_job(
    daily_bidding_job,
    name="daily_bidding_schedule",
    hour_of_day=6,
    minute_of_hour=0,
    description="Yesterday's reports in, tomorrow's budgets and bids out (pushes validate-only unless live).",
)

# Mondays at 03:00 UTC, before the daily run: recalibrate the simulator, retrain, evaluate (gate).
weekly_retrain_schedule = dg.ScheduleDefinition(
    name="weekly_retrain_schedule",
    job=retrain_job,
    cron_schedule="0 3 * * 1",
    execution_timezone="UTC",
    description="Weekly recalibration of the market simulator and retraining of the bidding policy.",
)

SCHEDULES = [daily_bidding_schedule, weekly_retrain_schedule]
