"""Jobs: named selections of assets that run together."""

import dagster as dg

from assets.partitions import DAILY_PARTITIONS

ingestion_job = dg.define_asset_job(
    "ingestion_job",
    selection=dg.AssetSelection.groups("ingestion"),
    partitions_def=DAILY_PARTITIONS,
    description="Pull GA4 and ad-platform reports for the selected days (plus a 3-day lookback) into DuckDB.",
)

daily_data_job = dg.define_asset_job(
    "daily_data_job",
    selection=dg.AssetSelection.groups("ingestion", "warehouse", "discovery"),
    partitions_def=DAILY_PARTITIONS,
    description="Ingest the selected days, build the dbt warehouse on them (tests as blocking checks), publish the "
    "read-only copy, rediscover the account's patterns.",
)

warehouse_job = dg.define_asset_job(
    "warehouse_job",
    selection=dg.AssetSelection.groups("warehouse"),
    partitions_def=DAILY_PARTITIONS,
    description="Rebuild the dbt warehouse and the published copy from what is already ingested.",
)
