"""The daily partitions every dated asset shares, starting where the account's history starts."""

import dagster as dg

from orchestration.environment import history_start

# GA4 and the ad platforms keep revising recent days; every ingestion run re-pulls this many days before its first.
LOOKBACK_DAYS = 3
# The ad platforms report conversions by click date and keep adding to a click day for as long as its conversions
# arrive (Google Ads' default conversion window is 30 days): the reports that carry them re-pull 30 days, or every
# click day older than the lookback would keep the conversions it had at 3 days forever.
CONVERSION_LOOKBACK_DAYS = 30

DAILY_PARTITIONS = dg.DailyPartitionsDefinition(start_date=history_start().isoformat())
