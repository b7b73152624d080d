"""Jobs: named selections of assets that run together."""

import dagster as dg

from assets.partitions import DAILY_PARTITIONS

ingestion_job = dg.define_asset_job(
    "ingestion_job",
    selection=dg.AssetSelection.groups("ingestion"),
    partitions_def=DAILY_PARTITIONS,
    description="Pull GA4 and ad-platform reports for the selected days (plus a 3-day lookback) into DuckDB.",
)
