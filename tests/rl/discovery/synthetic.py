"""Hand-made marts with planted structure, in the dbt marts' column names (the frames `rl.discovery.marts.Marts`
holds), so each discovery section can be checked against a known answer without dbt or the demo world."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import duckdb
import numpy as np
import polars as pl

from rl.discovery.marts import Marts

DEVICES = ("mobile", "desktop", "tablet")


@dataclass(frozen=True)
class Planted:
    """The truth behind a synthetic account."""

    # (platform, campaign_id, name, channel group, clicks/day, cpc, conversion rate per click, lag bucket start)
    campaigns: tuple[tuple[str, int, str, str, float, float, float, int], ...] = (
        ("google_ads", 1, "Search | Fast", "Paid Search", 300.0, 1.0, 0.05, 1),
        ("google_ads", 2, "Search | Slow", "Paid Search", 200.0, 2.0, 0.02, 9),
        ("meta", 3, "Social | Middle", "Paid Social", 400.0, 0.5, 0.01, 5),
    )
    peak_hour: int = 14
    dow: tuple[float, ...] = (1.1, 1.05, 1.0, 1.0, 0.95, 0.8, 1.1)  # Monday first
    device_share: dict[str, float] = field(default_factory=lambda: {"mobile": 0.6, "desktop": 0.3, "tablet": 0.1})
    device_cvr: dict[str, float] = field(default_factory=lambda: {"mobile": 0.01, "desktop": 0.03, "tablet": 0.02})

    def hour_profile(self) -> np.ndarray:
        h = np.arange(24)
        d = np.minimum(np.abs(h - self.peak_hour), 24 - np.abs(h - self.peak_hour))
        w = 0.2 + np.exp(-0.5 * (d / 2.5) ** 2)
        return w / w.sum()


def synthetic_marts(
    days: int = 120,
    *,
    planted: Planted | None = None,
    seed: int = 0,
    first: dt.date = dt.date(2025, 1, 6),
    trend_per_day: float = 0.0,
) -> Marts:
    """`days` days of marts for the planted account: Poisson clicks by hour (hour × weekday × trend), click-date
    conversions, GA4 sessions and key events by device, and a lag distribution concentrated in one bucket."""
    p = planted or Planted()
    rng = np.random.default_rng(seed)
    dates = [first + dt.timedelta(days=i) for i in range(days)]
    weekday = np.array([d.weekday() for d in dates])
    day_mult = np.array(p.dow)[weekday] * (1 + trend_per_day * np.arange(days))
    hp = p.hour_profile()
    campaigns = pl.DataFrame(
        {
            "platform": [c[0] for c in p.campaigns],
            "campaign_id": [c[1] for c in p.campaigns],
            "campaign_name": [c[2] for c in p.campaigns],
            "product": ["x"] * len(p.campaigns),
            "intent": ["generic"] * len(p.campaigns),
            "channel_group": [c[3] for c in p.campaigns],
        }
    )
    hourly, daily, device, lag = [], [], [], []
    for platform, cid, _name, group, per_day, cpc, cvr, lag_start in p.campaigns:
        lam = per_day * day_mult[:, None] * hp[None, :]  # [day, hour]
        clicks = rng.poisson(lam).astype(float)
        conversions = rng.binomial(clicks.astype(np.int64), cvr).astype(float)
        sessions = rng.binomial(clicks.astype(np.int64), 0.9).astype(float)
        impressions = clicks * 40
        search = group == "Paid Search"
        share = np.where(impressions > 0, 0.5, np.nan) if search else np.full(clicks.shape, np.nan)
        dd, hh = np.meshgrid(np.arange(days), np.arange(24), indexing="ij")
        hourly.append(
            pl.DataFrame(
                {
                    "date": [dates[i] for i in dd.ravel()],
                    "hour": hh.ravel().astype(np.int32),
                    "platform": platform,
                    "campaign_id": cid,
                    "impressions": impressions.ravel(),
                    "clicks": clicks.ravel(),
                    "conversions": conversions.ravel(),
                    "sessions": sessions.ravel(),
                    "impression_share": share.ravel(),
                },
                strict=False,
            ).with_columns(pl.col("impression_share").fill_nan(None))
        )
        dev_sessions = {
            d: rng.binomial(sessions.sum(axis=1).astype(np.int64), p.device_share[d]).astype(float) for d in DEVICES
        }
        # device conversion rates scale with the campaign's (relative to 0.02)
        dev_events = {d: rng.binomial(dev_sessions[d].astype(np.int64), p.device_cvr[d] * cvr / 0.02) for d in DEVICES}
        for d in DEVICES:
            device.append(
                pl.DataFrame(
                    {
                        "date": dates,
                        "device": d,
                        "platform": platform,
                        "campaign_id": cid,
                        "sessions": dev_sessions[d],
                        "key_events": dev_events[d].astype(float),
                    }
                )
            )
        key_events = sum(dev_events[d] for d in DEVICES).astype(float)
        daily.append(
            pl.DataFrame(
                {
                    "date": dates,
                    "platform": platform,
                    "campaign_id": cid,
                    "spend": clicks.sum(axis=1) * cpc,
                    "impressions": impressions.sum(axis=1),
                    "clicks": clicks.sum(axis=1),
                    "conversions": conversions.sum(axis=1),
                    "sessions": sessions.sum(axis=1),
                    "key_events": key_events,
                    "impression_share": [0.5 if search else None] * days,
                },
                strict=False,
            )
        )
        total = float(conversions.sum())
        buckets = [(b, b + 1) for b in range(14)] + [(14, 21), (21, 30)]
        conv = [total * 0.8 if lo == lag_start else total * 0.2 / (len(buckets) - 1) for lo, _ in buckets]
        lag.append(
            pl.DataFrame(
                {
                    "platform": platform,
                    "campaign_id": cid,
                    "conversion_lag_bucket": [f"B{lo:02d}_{hi:02d}" for lo, hi in buckets],
                    "bucket_order": list(range(1, len(buckets) + 1)),
                    "lag_days_min": [float(lo) for lo, _ in buckets],
                    "lag_days_max": [float(hi) for _, hi in buckets],
                    "conversions": conv,
                    "first_click_date": first,
                    "last_click_date": dates[-1] - dt.timedelta(days=30),
                }
            )
        )
    return Marts(
        campaigns=campaigns,
        daily=pl.concat(daily),
        hourly=pl.concat(hourly),
        lag=pl.concat(lag),
        device=pl.concat(device),
    )


def to_duckdb(marts: Marts) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding the frames as the marts' tables (dim_campaign gets ga4_channel_group)."""
    con = duckdb.connect()
    tables = {
        "dim_campaign": marts.campaigns.rename({"channel_group": "ga4_channel_group"}),
        "fct_campaign_daily": marts.daily,
        "fct_campaign_hourly": marts.hourly,
        "fct_conversion_lag": marts.lag,
        "fct_device_daily": marts.device,
    }
    for name, frame in tables.items():
        con.register("_frame", frame.to_arrow())
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM _frame")
        con.unregister("_frame")
    return con
