"""The response models' training frames, read from the published marts: the click frame (``fct_campaign_hourly``,
impressions → clicks) and the conversion frame (``fct_device_daily``, GA4 sessions → key events), as cells of
Bernoulli trials; see `rl.calibration.response` for the models and why these targets.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import polars as pl

from rl.calibration.logit import CAMPAIGN, EXCESS, SUCCESSES, TRIALS, InsufficientDataError


def _campaign_key(platform: pl.Expr, campaign_id: pl.Expr) -> pl.Expr:
    return pl.format("{}:{}", platform, campaign_id.cast(pl.Int64))


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? AND table_schema = 'main'",
        [table],
    ).fetchall()
    if not rows:
        raise InsufficientDataError(f"the warehouse has no table main.{table}: build the marts first")
    return {r[0] for r in rows}


def click_frame(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Click cells from ``fct_campaign_hourly``: one row per date × hour × campaign with impressions.

    Columns: date, platform, campaign_id, campaign ("platform:id"), hour, day_of_week (ISO 1–7, as text),
    impression_share (search share of the hour; 0 where the platform does not report it), trials (impressions),
    successes (clicks, clipped to impressions), excess_successes (clicks above impressions).

    There is no bid-over-price feature: the day's realised CPC is spend / clicks, i.e. computed from the very
    clicks the model predicts, so it leaks the label into training and did not generalise (no held-out gain).
    """
    _columns(con, "fct_campaign_hourly")
    hourly = con.sql(
        """
        SELECT date, CAST(hour AS INTEGER) AS hour, platform, CAST(campaign_id AS BIGINT) AS campaign_id,
               CAST(impressions AS DOUBLE) AS impressions, CAST(clicks AS DOUBLE) AS clicks,
               CAST(impression_share AS DOUBLE) AS impression_share
        FROM fct_campaign_hourly WHERE impressions > 0"""
    ).pl()
    frame = hourly.with_columns(
        _campaign_key(pl.col("platform"), pl.col("campaign_id")).alias(CAMPAIGN),
        pl.col("hour").cast(pl.String),
        pl.col("date").dt.weekday().cast(pl.String).alias("day_of_week"),
        pl.col("impression_share").fill_null(0.0).fill_nan(0.0),
        pl.col("impressions").alias(TRIALS),
        pl.min_horizontal("clicks", "impressions").alias(SUCCESSES),
        (pl.col("clicks") - pl.col("impressions")).clip(lower_bound=0).alias(EXCESS),
    ).drop("impressions", "clicks")
    return frame.sort("date", "platform", "campaign_id", "hour")


def conversion_frame(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Conversion cells from ``fct_device_daily``: one row per date × device × campaign.

    Columns: date, platform, campaign_id, campaign, device, day_of_week, trials (GA4 sessions, session date),
    successes (GA4 key events, conversion date). Successes may exceed trials in a single day's cell (key events of
    earlier sessions); `aggregate_cells` clips after summing to the model's features.
    """
    _columns(con, "fct_device_daily")
    device = con.sql(
        """
        SELECT date, device, platform, CAST(campaign_id AS BIGINT) AS campaign_id,
               CAST(sessions AS DOUBLE) AS sessions, CAST(key_events AS DOUBLE) AS key_events
        FROM fct_device_daily"""
    ).pl()
    return (
        device.with_columns(
            _campaign_key(pl.col("platform"), pl.col("campaign_id")).alias(CAMPAIGN),
            pl.col("date").dt.weekday().cast(pl.String).alias("day_of_week"),
            pl.col("sessions").fill_null(0.0).alias(TRIALS),
            pl.col("key_events").fill_null(0.0).alias(SUCCESSES),
        )
        .drop("sessions", "key_events")
        .sort("date", "platform", "campaign_id", "device")
    )


def aggregate_cells(frame: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """Sum trials and successes by `keys` (exact for a model whose features are `keys`), then clip successes to
    trials; the clipped amount is added to ``excess_successes``. Cells without trials are dropped (their successes
    are counted as excess)."""
    aggs = [pl.col(TRIALS).sum(), pl.col(SUCCESSES).sum()]
    if EXCESS in frame.columns:
        aggs.append(pl.col(EXCESS).sum())
    out = frame.group_by(list(keys), maintain_order=True).agg(aggs)
    if EXCESS not in out.columns:
        out = out.with_columns(pl.lit(0.0).alias(EXCESS))
    over = (pl.col(SUCCESSES) - pl.col(TRIALS)).clip(lower_bound=0)
    return (
        out.with_columns((pl.col(EXCESS) + over).alias(EXCESS), pl.min_horizontal(SUCCESSES, TRIALS).alias(SUCCESSES))
        .filter(pl.col(TRIALS) > 0)
        .sort(list(keys))
    )
