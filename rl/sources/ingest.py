"""From parsed reports to the raw warehouse tables, with the checks that must pass before anything is written.

Each raw table has a fixed schema and a key; a report window is refused (nothing written) when it has a row dated
outside the window that was asked for (the window's delete would never remove it: a duplicate key or a phantom day
forever), duplicated keys, a required day without rows, a negative count, or a campaign the registry does not know.
The messages name what was wrong and where (report, row, value), because an operator reads them in the Dagster UI.

The lookback (`lookback_start`) re-pulls only days already loaded: it refreshes what the platforms revised, and
never extends a table backwards past the first day a backfill asked for — a delivery day without the settings
report's day next to it is a day the simulator cannot be calibrated on.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from rl.campaign_registry import CampaignRegistry, registry_file

# GA4 requests behind the two GA4 tables: API name → column name.
GA4_SESSIONS_DIMENSIONS = {
    "date": "date",
    "hour": "hour",
    "sessionDefaultChannelGroup": "channel_group",
    "sessionSourceMedium": "source_medium",
    "sessionCampaignName": "campaign_name",
    "deviceCategory": "device",
}
GA4_SESSIONS_METRICS = {"sessions": "sessions", "totalUsers": "total_users", "newUsers": "new_users"}
GA4_CONVERSIONS_DIMENSIONS = {
    "date": "date",
    "sessionDefaultChannelGroup": "channel_group",
    "sessionSourceMedium": "source_medium",
    "sessionCampaignName": "campaign_name",
    "deviceCategory": "device",
}
GA4_CONVERSIONS_METRICS = {"keyEvents": "key_events", "totalRevenue": "revenue"}

RAW_SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "ga4_sessions": {
        "date": pl.Date(),
        "hour": pl.Int8(),
        "channel_group": pl.Utf8(),
        "source_medium": pl.Utf8(),
        "campaign_name": pl.Utf8(),
        "device": pl.Utf8(),
        "sessions": pl.Int64(),
        "total_users": pl.Int64(),
        "new_users": pl.Int64(),
    },
    "ga4_conversions": {
        "date": pl.Date(),
        "channel_group": pl.Utf8(),
        "source_medium": pl.Utf8(),
        "campaign_name": pl.Utf8(),
        "device": pl.Utf8(),
        "key_events": pl.Float64(),
        "revenue": pl.Float64(),
    },
    "ad_performance": {
        "platform": pl.Utf8(),
        "campaign_id": pl.Int64(),
        "campaign_name": pl.Utf8(),
        "date": pl.Date(),
        "hour": pl.Int8(),
        "device": pl.Utf8(),
        "impressions": pl.Int64(),
        "clicks": pl.Int64(),
        "cost_micros": pl.Int64(),
        "conversions": pl.Float64(),
        "conversions_value": pl.Float64(),
        "search_impression_share": pl.Float64(),
    },
    "ad_impression_share": {
        "platform": pl.Utf8(),
        "campaign_id": pl.Int64(),
        "date": pl.Date(),
        "impressions": pl.Int64(),
        "search_impression_share": pl.Float64(),
    },
    "ad_settings": {
        "platform": pl.Utf8(),
        "campaign_id": pl.Int64(),
        "date": pl.Date(),
        "ad_group_id": pl.Int64(),
        "budget_micros": pl.Int64(),
        "cpc_bid_micros": pl.Int64(),
        "cpm_bid_micros": pl.Int64(),
    },
    "ad_modifiers": {
        "platform": pl.Utf8(),
        "campaign_id": pl.Int64(),
        "date": pl.Date(),
        "criterion_id": pl.Int64(),
        "criterion_type": pl.Utf8(),
        "criterion_device": pl.Utf8(),
        "day_of_week": pl.Utf8(),
        "start_hour": pl.Int8(),
        "end_hour": pl.Int8(),
        "start_minute": pl.Utf8(),
        "end_minute": pl.Utf8(),
        "bid_modifier": pl.Float64(),
    },
    "ad_conversion_lag": {
        "platform": pl.Utf8(),
        "campaign_id": pl.Int64(),
        "date": pl.Date(),
        "conversion_lag_bucket": pl.Utf8(),
        "conversions": pl.Float64(),
        "conversions_value": pl.Float64(),
    },
}
KEYS: dict[str, list[str]] = {
    "ga4_sessions": ["date", "hour", "channel_group", "source_medium", "campaign_name", "device"],
    "ga4_conversions": ["date", "channel_group", "source_medium", "campaign_name", "device"],
    "ad_performance": ["platform", "campaign_id", "date", "hour", "device"],
    "ad_conversion_lag": ["platform", "campaign_id", "date", "conversion_lag_bucket"],
    "ad_settings": ["platform", "campaign_id", "date", "ad_group_id"],
    "ad_impression_share": ["platform", "campaign_id", "date"],
    "ad_modifiers": ["platform", "campaign_id", "date", "criterion_id"],
}
# Counts a platform never reports below zero (as the dbt tests assert_no_negative_* say, one step earlier).
NON_NEGATIVE: dict[str, list[str]] = {
    "ga4_sessions": ["sessions", "total_users", "new_users"],
    "ga4_conversions": ["key_events"],
    "ad_performance": ["impressions", "clicks", "cost_micros", "conversions"],
    "ad_conversion_lag": ["conversions"],
    "ad_impression_share": ["impressions"],
    "ad_settings": ["budget_micros", "cpc_bid_micros", "cpm_bid_micros"],
    "ad_modifiers": ["bid_modifier"],
}
# Tables where a day without a single row means the report is broken (GA4 always has sessions; an account that
# spends every day always has delivery). Conversions may legitimately be absent on a day.
EVERY_DAY_REQUIRED = {"ga4_sessions", "ad_performance", "ad_settings"}


class IngestionError(ValueError):
    """A report window failed the checks; nothing of it was written (the raw response is kept)."""


def from_ga4(frame: pl.DataFrame, dimensions: dict[str, str], metrics: dict[str, str], table: str) -> pl.DataFrame:
    """Rename a parsed GA4 report to the raw table's columns and types."""
    renamed = frame.rename({**dimensions, **metrics})
    if "hour" in renamed.columns:
        renamed = renamed.with_columns(pl.col("hour").cast(pl.Int8))
    return conform(renamed, table)


def from_ads(frame: pl.DataFrame, platform: str, table: str) -> pl.DataFrame:
    """Tag a parsed ads report with its platform and conform it to the raw table."""
    return conform(frame.with_columns(pl.lit(platform).alias("platform")), table)


def conform(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    schema = RAW_SCHEMAS[table]
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise IngestionError(f"{table}: the report has no column(s) {missing} (got {frame.columns})")
    return frame.select([pl.col(c).cast(t) for c, t in schema.items()])


def check(
    table: str,
    frame: pl.DataFrame,
    required_days: list[dt.date],
    registry: CampaignRegistry | None = None,
    window: tuple[dt.date, dt.date] | None = None,
) -> None:
    """Raise `IngestionError` listing every problem of a report window before it is written. `window` (default: the
    required days' span) is the date range the report was asked for: a row dated outside it is refused."""
    problems = []
    keys = KEYS[table]
    if window is None and required_days:
        window = (min(required_days), max(required_days))
    if window is not None and frame.height:
        outside = frame.with_row_index("row").filter(~pl.col("date").is_between(*window))
        if outside.height:
            first = outside.row(0, named=True)
            where = ", ".join(f"{k} {first[k]}" for k in keys if k != "date")
            problems.append(
                f"{outside.height} row(s) dated outside the requested window {window[0]}..{window[1]}, e.g. row "
                f"{first['row']} ({where}) dated {first['date']} (the report answered for days it was not asked "
                "about; nothing of it is written)"
            )
    dupes = frame.filter(frame.select(keys).is_duplicated())
    if dupes.height:
        example = dupes.head(1).select(keys).to_dicts()[0]
        problems.append(f"{dupes.height} rows share a key ({', '.join(keys)}), e.g. {example}")
    for column in NON_NEGATIVE.get(table, []):
        negative = frame.with_row_index("row").filter(pl.col(column) < 0)
        if negative.height:
            first = negative.row(0, named=True)
            where = ", ".join(f"{k} {first[k]}" for k in keys)
            problems.append(
                f"{negative.height} row(s) with a negative {column}, e.g. row {first['row']} ({where}): {first[column]}"
            )
    if table in EVERY_DAY_REQUIRED:
        seen = set(frame["date"].unique().to_list())
        empty = [d.isoformat() for d in required_days if d not in seen]
        if empty:
            shown = ", ".join(empty[:5]) + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
            problems.append(f"no rows for day(s) {shown}")
    if registry is not None and "campaign_id" in frame.columns:
        for platform, ids in frame.group_by("platform").agg(pl.col("campaign_id").unique()).iter_rows():
            unknown = sorted(set(ids) - registry.ids(platform))
            if unknown:
                where = registry_file()
                problems.append(f"campaign id(s) {unknown} on {platform} are not in the campaign registry ({where})")
    if problems:
        raise IngestionError(f"{table}: " + "; ".join(problems))


def lookback_start(first: dt.date, earliest: dt.date, loaded: set[dt.date]) -> dt.date:
    """The first day a run re-pulls: going back from the day before `first` (the first partition asked for) while
    the day is already loaded and not before `earliest` (the lookback's limit). A lookback refreshes days already
    in the warehouse; it never adds days before a backfill's first partition."""
    start = first
    while start - dt.timedelta(days=1) >= earliest and start - dt.timedelta(days=1) in loaded:
        start -= dt.timedelta(days=1)
    return start


def days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
