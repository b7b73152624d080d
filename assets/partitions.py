"""The daily partitions every dated asset shares, starting where the account's history starts."""

import dagster as dg

from orchestration.environment import history_start

# GA4 and the ad platforms keep revising recent days; every ingestion run re-pulls this many days before its first.
LOOKBACK_DAYS = 3

DAILY_PARTITIONS = dg.DailyPartitionsDefinition(start_date=history_start().isoformat())
