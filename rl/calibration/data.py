"""What calibration reads: the warehouse marts over a data window, as typed frames. Nothing else.

The demo world's true parameters are never read here (nor anywhere under `rl.calibration` but in tests): the
simulator is fitted from what the ad platforms and GA4 reported, through the dbt marts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import polars as pl

MIN_DAYS = 28  # fewer days than this cannot separate volume, weekday and the bid response


class CalibrationError(ValueError):
    """The data cannot support a calibration; the message names the window, campaign or table at fault."""


@dataclass(frozen=True)
class CalibrationData:
    """The marts over the window [first, last] (both included).

    daily:    fct_campaign_daily rows (date, platform, campaign_id, spend, impressions, clicks, conversions,
              conversion_value, sessions, key_events, revenue, impression_share, daily_budget, bid, bid_kind)
    hourly:   fct_campaign_hourly rows (date, hour, platform, campaign_id, spend, impressions, clicks, conversions,
              impression_share)
    devices:  fct_device_daily rows (date, device, platform, campaign_id, sessions, key_events) — GA4's split
    ad_devices: fct_campaign_device_daily rows (date, platform, campaign_id, device, spend, impressions, clicks,
              conversions, impression_share) — the ad platforms' split, conversions by click date
    modifiers: fct_campaign_modifiers_daily rows (date, platform, campaign_id, modifier_key, bid_modifier): the
              device and hour-block bid modifiers in force (search campaigns; none means 1)
    lag:      fct_conversion_lag rows (platform, campaign_id, lag_days_min, lag_days_max, conversions) of the
              mature click dates of the whole history (the mart decides maturity)
    campaigns: dim_campaign (platform, campaign_id, campaign_name, product, intent, status, ga4_source_medium,
              ga4_channel_group)
    organic:  unpaid GA4 sessions and key events per day (date, sessions, key_events)
    data_end: the latest date any ads report covers (conversions by click date mature relative to it)
    """

    first: dt.date
    last: dt.date
    daily: pl.DataFrame
    hourly: pl.DataFrame
    devices: pl.DataFrame
    lag: pl.DataFrame
    campaigns: pl.DataFrame
    organic: pl.DataFrame
    data_end: dt.date
    ad_devices: pl.DataFrame
    modifiers: pl.DataFrame

    @property
    def n_days(self) -> int:
        return (self.last - self.first).days + 1

    def until(self, last: dt.date) -> CalibrationData:
        """The same data cut at `last` (for a backtest's training part); the lag mart is kept as it is."""
        keep = pl.col("date") <= last
        return CalibrationData(
            self.first,
            last,
            self.daily.filter(keep),
            self.hourly.filter(keep),
            self.devices.filter(keep),
            self.lag,
            self.campaigns,
            self.organic.filter(keep),
            min(self.data_end, last),
            self.ad_devices.filter(keep),
            self.modifiers.filter(keep),
        )


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pl.DataFrame:
    frame = con.sql(sql, params=params or None).pl()
    # DuckDB sums of integers come back as DECIMAL/HUGEINT: calibration does float math on every figure
    return frame.with_columns(pl.col(pl.Decimal, pl.Int128).cast(pl.Float64))


def load(con: duckdb.DuckDBPyConnection, days: int = 365, last: dt.date | None = None) -> CalibrationData:
    """Read the window of `days` days ending `last` (default: the latest day of ads delivery) from the marts."""
    try:
        (latest,) = con.execute("select max(date) from fct_campaign_daily where impressions > 0").fetchall()[0]
    except duckdb.CatalogException as e:
        raise CalibrationError(f"the warehouse has no marts yet (build dbt first): {e}") from None
    if latest is None:
        raise CalibrationError("fct_campaign_daily has no day with ad delivery: nothing to calibrate from")
    last = min(last or latest, latest)
    (earliest,) = con.execute("select min(date) from fct_campaign_daily").fetchall()[0]
    first = max(earliest, last - dt.timedelta(days=days - 1))
    n = (last - first).days + 1
    if n < MIN_DAYS:
        raise CalibrationError(
            f"only {n} days of history ({first} .. {last}) in fct_campaign_daily; calibration needs at least "
            f"{MIN_DAYS} (backfill more days first)"
        )
    window = [first, last]
    daily = _frame(con, "select * from fct_campaign_daily where date between ? and ? order by date", window)
    missing = daily.filter(pl.col("impressions") > 0).filter(pl.col("bid").is_null())
    if missing.height:
        raise CalibrationError(
            f"fct_campaign_daily has {missing.height} campaign-days with delivery but no bid in force "
            f"(e.g. {missing.row(0, named=True)['date']}, campaign {missing.row(0, named=True)['campaign_id']}): "
            "ingest ad_settings for the window first"
        )
    hourly = _frame(
        con,
        "select date, hour, platform, campaign_id, spend, impressions, clicks, conversions, impression_share "
        "from fct_campaign_hourly where date between ? and ?",
        window,
    )
    devices = _frame(
        con,
        "select date, device, platform, campaign_id, sessions, key_events from fct_device_daily "
        "where date between ? and ?",
        window,
    )
    try:
        ad_devices = _frame(
            con,
            "select date, platform, campaign_id, device, spend, impressions, clicks, conversions, impression_share "
            "from fct_campaign_device_daily where date between ? and ?",
            window,
        )
        modifiers = _frame(
            con,
            "select date, platform, campaign_id, modifier_key, bid_modifier from fct_campaign_modifiers_daily "
            "where date between ? and ?",
            window,
        )
    except duckdb.CatalogException as e:
        raise CalibrationError(
            f"the warehouse has no device or modifier marts (built before the ad reports had devices?): {e}; "
            "re-ingest and rebuild the warehouse"
        ) from None
    lag = _frame(
        con,
        "select platform, campaign_id, lag_days_min, lag_days_max, conversions from fct_conversion_lag "
        "where lag_days_min is not null",
    )
    campaigns = _frame(con, "select * from dim_campaign order by platform, campaign_id")
    organic = _frame(
        con,
        """
        with s as (
            select session_date as date, sum(sessions) as sessions from stg_ga4__sessions
            where channel_group not like 'Paid%' and session_date between ? and ? group by all
        ), k as (
            select conversion_date as date, sum(key_events) as key_events from stg_ga4__conversions
            where channel_group not like 'Paid%' and conversion_date between ? and ? group by all
        )
        select s.date, s.sessions, coalesce(k.key_events, 0) as key_events from s left join k using (date)
        """,
        window + window,
    )
    return CalibrationData(first, last, daily, hourly, devices, lag, campaigns, organic, last, ad_devices, modifiers)
