"""The marts discovery reads (`load_marts` is the only DuckDB access), the calendar, shared constants and
statistical helpers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import numpy as np
import polars as pl
from scipy import stats

from rl.discovery.schema import (
    Interval,
)

LEVEL = 0.9
Z90 = float(stats.norm.ppf(0.5 + LEVEL / 2))
MATURE_DAYS = 30  # as the marts' conversion_lag_mature_days: click dates younger than this are still maturing
EVENING_HOURS = range(18, 24)
MIN_UNIT_SESSIONS = 30
CVR_PRIOR_SESSIONS = 200.0

# ------------------------------------------------------------------------------------------------------ loading

MART_QUERIES: dict[str, str] = {
    "dim_campaign": """
        SELECT platform, CAST(campaign_id AS BIGINT) AS campaign_id, campaign_name, product, intent,
               ga4_channel_group AS channel_group
        FROM dim_campaign ORDER BY campaign_id, platform""",
    "fct_campaign_daily": """
        SELECT date, platform, CAST(campaign_id AS BIGINT) AS campaign_id,
               CAST(spend AS DOUBLE) AS spend, CAST(impressions AS DOUBLE) AS impressions,
               CAST(clicks AS DOUBLE) AS clicks, CAST(conversions AS DOUBLE) AS conversions,
               CAST(sessions AS DOUBLE) AS sessions, CAST(key_events AS DOUBLE) AS key_events,
               CAST(impression_share AS DOUBLE) AS impression_share
        FROM fct_campaign_daily""",
    "fct_campaign_hourly": """
        SELECT date, CAST(hour AS INTEGER) AS hour, platform, CAST(campaign_id AS BIGINT) AS campaign_id,
               CAST(impressions AS DOUBLE) AS impressions, CAST(clicks AS DOUBLE) AS clicks,
               CAST(conversions AS DOUBLE) AS conversions, CAST(sessions AS DOUBLE) AS sessions,
               CAST(impression_share AS DOUBLE) AS impression_share
        FROM fct_campaign_hourly""",
    "fct_conversion_lag": """
        SELECT platform, CAST(campaign_id AS BIGINT) AS campaign_id, conversion_lag_bucket, bucket_order,
               CAST(lag_days_min AS DOUBLE) AS lag_days_min, CAST(lag_days_max AS DOUBLE) AS lag_days_max,
               CAST(conversions AS DOUBLE) AS conversions, first_click_date, last_click_date
        FROM fct_conversion_lag""",
    "fct_device_daily": """
        SELECT date, device, platform, CAST(campaign_id AS BIGINT) AS campaign_id,
               CAST(sessions AS DOUBLE) AS sessions, CAST(key_events AS DOUBLE) AS key_events
        FROM fct_device_daily""",
}


@dataclass(frozen=True)
class Marts:
    """The mart frames discovery reads (column names as in the dbt models)."""

    campaigns: pl.DataFrame  # dim_campaign: platform, campaign_id, campaign_name, [channel_group]
    daily: pl.DataFrame  # fct_campaign_daily
    hourly: pl.DataFrame  # fct_campaign_hourly
    lag: pl.DataFrame  # fct_conversion_lag
    device: pl.DataFrame  # fct_device_daily


def load_marts(con: duckdb.DuckDBPyConnection) -> Marts:
    """Read the marts discovery needs (a read-only connection is enough)."""
    frames = {name: con.sql(sql).pl() for name, sql in MART_QUERIES.items()}
    return Marts(
        campaigns=frames["dim_campaign"],
        daily=frames["fct_campaign_daily"],
        hourly=frames["fct_campaign_hourly"],
        lag=frames["fct_conversion_lag"],
        device=frames["fct_device_daily"],
    )


# ------------------------------------------------------------------------------------------------------ helpers


@dataclass(frozen=True)
class Calendar:
    first: dt.date
    days: int

    @classmethod
    def of(cls, *frames: pl.DataFrame) -> Calendar:
        dates = [d for f in frames if f.height for d in (f["date"].min(), f["date"].max())]
        if not dates:
            raise ValueError("no dated rows in the marts: nothing to discover")
        first, last = min(dates), max(dates)
        return cls(first=first, days=(last - first).days + 1)

    @property
    def last(self) -> dt.date:
        return self.first + dt.timedelta(days=self.days - 1)

    def index(self, frame: pl.DataFrame) -> np.ndarray:
        return frame.select((pl.col("date") - pl.lit(self.first)).dt.total_days()).to_series().to_numpy()

    def weekday(self) -> np.ndarray:
        """ISO weekday − 1 (0 = Monday) of every calendar day."""
        return (self.first.weekday() + np.arange(self.days)) % 7


def _with_key(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(
        pl.format("{}:{}", pl.col("platform"), pl.col("campaign_id").cast(pl.Int64)).alias("campaign")
    )


def _campaign_index(frame: pl.DataFrame, keys: list[str]) -> np.ndarray:
    """Position in `keys` of each row's campaign (the frame is already filtered to `keys`)."""
    mapping = {k: i for i, k in enumerate(keys)}
    return frame["campaign"].replace_strict(mapping, return_dtype=pl.Int64).to_numpy()


def _campaign_list(campaigns: pl.DataFrame) -> list[str]:
    return _with_key(campaigns)["campaign"].to_list()


def _scopes(campaigns: pl.DataFrame) -> list[tuple[str, str, list[int]]]:
    """(scope, key, campaign indices) for the account, each channel group, platform and campaign."""
    c = _with_key(campaigns)
    keys = c["campaign"].to_list()
    out: list[tuple[str, str, list[int]]] = [("account", "all", list(range(len(keys))))]
    groups: list[tuple[str, str]] = []
    if "channel_group" in c.columns:
        groups.append(("channel_group", "channel_group"))
    groups.append(("platform", "platform"))
    for scope, col in groups:
        values = c[col].to_list()
        for v in sorted({v for v in values if v is not None}):
            out.append((scope, v, [i for i, x in enumerate(values) if x == v]))
    out += [("campaign", k, [i]) for i, k in enumerate(keys)]
    return out


def _jeffreys(successes: float, trials: float) -> Interval | None:
    if trials <= 0:
        return None
    k = min(max(successes, 0.0), trials)
    a, b = k + 0.5, trials - k + 0.5
    lo, hi = stats.beta.ppf([(1 - LEVEL) / 2, (1 + LEVEL) / 2], a, b)
    return Interval(lo=float(lo), hi=float(hi), level=LEVEL)


def _ratio(a: float, b: float) -> float | None:
    return float(a / b) if b > 0 else None
