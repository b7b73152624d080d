"""Devices (conversion rate with Jeffreys intervals), channels (CPA with Gamma-Poisson intervals) and conversion
lag per campaign."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
from scipy import stats

from rl.discovery.marts import LEVEL, MATURE_DAYS, Z90, _jeffreys, _ratio, _with_key
from rl.discovery.schema import (
    Channels,
    ChannelStat,
    ConversionLag,
    DeviceGroup,
    Devices,
    DeviceStat,
    Interval,
    LagStat,
    PairwiseOrder,
)

# ------------------------------------------------------------------------------------------------------ devices

DEVICE_METHOD = (
    "GA4 key events / sessions per device over the window (fct_device_daily: sessions by session date, key events "
    "by conversion date, which even out over a long window). 90% Jeffreys interval, Beta(k + ½, n − k + ½). "
    "Ranking by the point estimate; ranking_probability and pairwise probabilities from {N} Monte Carlo draws of "
    "the independent Beta posteriors."
)


def device_group(scope: str, key: str, frame: pl.DataFrame, rng: np.random.Generator, n_draws: int) -> DeviceGroup:
    """Conversion rate per device of one scope's rows (columns device, sessions, key_events)."""
    g = (
        frame.group_by("device")
        .agg(pl.col("sessions").sum(), pl.col("key_events").sum())
        .filter(pl.col("sessions") > 0)
        .sort("device")
    )
    devices = g["device"].to_list()
    n = g["sessions"].to_numpy().astype(float)
    k = np.minimum(g["key_events"].to_numpy().astype(float), n)
    cvr = k / n
    order = sorted(range(len(devices)), key=lambda i: (-cvr[i], devices[i]))
    draws = rng.beta(k[:, None] + 0.5, n[:, None] - k[:, None] + 0.5, size=(len(devices), n_draws))
    ranked = draws[order]
    ranking_prob = float(np.all(ranked[:-1] > ranked[1:], axis=0).mean()) if len(order) > 1 else 1.0
    pairwise = [
        PairwiseOrder(
            higher=devices[order[i]],
            lower=devices[order[i + 1]],
            probability=float((ranked[i] > ranked[i + 1]).mean()),
        )
        for i in range(len(order) - 1)
    ]
    total = float(n.sum())
    stats_ = [
        DeviceStat(
            device=devices[i],
            sessions=float(n[i]),
            session_share=float(n[i] / total),
            key_events=float(g["key_events"][i]),
            conversion_rate=float(cvr[i]),
            interval=_jeffreys(float(k[i]), float(n[i])),
            rank=r + 1,
        )
        for r, i in enumerate(order)
    ]
    return DeviceGroup(
        scope=scope,
        key=key,
        devices=stats_,
        ranking=[devices[i] for i in order],
        ranking_probability=ranking_prob,
        pairwise=pairwise,
    )


def devices_section(
    device_daily: pl.DataFrame, campaigns: pl.DataFrame, *, n_draws: int = 4000, seed: int = 0
) -> Devices:
    rng = np.random.default_rng(seed)
    groups = [device_group("account", "all", device_daily, rng, n_draws)]
    if "channel_group" in campaigns.columns:
        joined = device_daily.join(
            campaigns.select("platform", "campaign_id", "channel_group"), on=["platform", "campaign_id"], how="inner"
        )
        for cg in sorted({v for v in campaigns["channel_group"].to_list() if v is not None}):
            rows = joined.filter(pl.col("channel_group") == cg)
            if rows.height and rows["sessions"].sum() > 0:
                groups.append(device_group("channel_group", cg, rows, rng, n_draws))
    return Devices(method=DEVICE_METHOD.format(N=n_draws), groups=groups)


# ----------------------------------------------------------------------------------------------------- channels

CHANNEL_METHOD = (
    "Click dates at least {M} days before the latest date (their conversions have matured; all days when that "
    "leaves fewer than {MIN} days). CPA = spend / ads conversions (by click date). 90% interval: conversions per "
    "unit of spend get a Gamma posterior from a Poisson likelihood with Jeffreys prior, widened by the quasi-Poisson "
    "dispersion φ = max(1, Pearson χ² / (days − 1)) of daily conversions around spend × pooled rate, i.e. "
    "rate ~ Gamma(conversions/φ + ½, scale = φ/spend); the CPA interval is 1 / that rate's 95% and 5% quantiles."
)
MIN_CHANNEL_DAYS = 28


def cpa_stat(
    level: str,
    key: str,
    days: pl.DataFrame,
    *,
    platform: str | None = None,
    campaign_id: int | None = None,
    campaign_name: str | None = None,
) -> ChannelStat:
    """Totals and CPA of one level from its per-day rows (columns spend, impressions, clicks, conversions,
    key_events; one row per day)."""
    s = days["spend"].to_numpy().astype(float)
    y = days["conversions"].to_numpy().astype(float)
    spend, conv = float(s.sum()), float(y.sum())
    clicks, impressions = float(days["clicks"].sum()), float(days["impressions"].sum())
    key_events = float(days["key_events"].sum())
    phi = 1.0
    if conv > 0 and spend > 0:
        e = s * conv / spend
        ok = e > 0
        if ok.sum() > 1:
            phi = max(1.0, float(((y[ok] - e[ok]) ** 2 / e[ok]).sum() / (ok.sum() - 1)))
    cpa = interval = None
    if conv > 0 and spend > 0:
        cpa = spend / conv
        r_lo, r_hi = stats.gamma.ppf([(1 - LEVEL) / 2, (1 + LEVEL) / 2], conv / phi + 0.5, scale=phi / spend)
        interval = Interval(lo=float(1 / r_hi), hi=float(1 / r_lo), level=LEVEL)
    return ChannelStat(
        level=level,
        key=key,
        platform=platform,
        campaign_id=campaign_id,
        campaign_name=campaign_name,
        spend=spend,
        impressions=impressions,
        clicks=clicks,
        conversions=conv,
        key_events=key_events,
        cpc=_ratio(spend, clicks),
        conversion_rate=_ratio(conv, clicks),
        cpa=cpa,
        cpa_interval=interval,
        cpa_ga4=_ratio(spend, key_events),
        dispersion=phi,
    )


def channels_section(
    daily: pl.DataFrame, campaigns: pl.DataFrame, *, mature_days: int = MATURE_DAYS, min_days: int = MIN_CHANNEL_DAYS
) -> Channels:
    cols = ["spend", "impressions", "clicks", "conversions", "key_events"]
    first, last = daily["date"].min(), daily["date"].max()
    cutoff = last - dt.timedelta(days=mature_days)
    immature = (cutoff - first).days + 1 < min_days
    window = daily if immature else daily.filter(pl.col("date") <= cutoff)
    w_last = last if immature else cutoff
    c = _with_key(campaigns)
    window = _with_key(window).filter(pl.col("campaign").is_in(c["campaign"].to_list()))

    def per_day(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.group_by("date").agg([pl.col(x).sum() for x in cols]).sort("date")

    account = cpa_stat("account", "all", per_day(window))
    platforms = [
        cpa_stat("platform", p, per_day(window.filter(pl.col("platform") == p)), platform=p)
        for p in sorted(set(c["platform"].to_list()))
    ]
    camps = []
    for row in c.iter_rows(named=True):
        rows = window.filter(pl.col("campaign") == row["campaign"])
        camps.append(
            cpa_stat(
                "campaign",
                row["campaign"],
                per_day(rows),
                platform=row["platform"],
                campaign_id=int(row["campaign_id"]),
                campaign_name=row.get("campaign_name"),
            )
        )
    ranking = sorted(camps, key=lambda s: (s.cpa is None, s.cpa or 0.0, s.key))
    return Channels(
        method=CHANNEL_METHOD.format(M=mature_days, MIN=min_days),
        mature_days=mature_days,
        first_click_date=first,
        last_click_date=w_last,
        includes_immature_days=immature,
        account=account,
        platforms=platforms,
        campaigns=camps,
        cpa_ranking=[s.key for s in ranking],
    )


# ----------------------------------------------------------------------------------------------- conversion lag

LAG_METHOD = (
    "fct_conversion_lag (mature click dates only). Each bucket counts at its mid-point ((lag_days_min + "
    "lag_days_max) / 2, e.g. ONE_TO_TWO_DAYS = 1.5); UNKNOWN buckets are left out. mean_lag_interval = mean ± 1.645 "
    "× sd / √conversions; share_within_7_days = conversions in buckets ending by day 7; median bucket = first bucket "
    "whose cumulative share reaches ½. Campaigns are ordered by mean lag."
)


def lag_stat(key: str, platform: str, campaign_id: int, name: str | None, rows: pl.DataFrame) -> LagStat:
    """Lag summary of one campaign's bucket rows (lag_days_min, lag_days_max, conversions, bucket_order,
    conversion_lag_bucket)."""
    known = rows.filter(pl.col("lag_days_min").is_not_null() & pl.col("lag_days_max").is_not_null())
    known = known.sort("bucket_order") if "bucket_order" in known.columns else known.sort("lag_days_min")
    w = known["conversions"].to_numpy().astype(float)
    n = float(w.sum())
    if n <= 0:
        return LagStat(
            campaign=key,
            platform=platform,
            campaign_id=campaign_id,
            campaign_name=name,
            conversions=0.0,
            mean_lag_days=None,
            mean_lag_interval=None,
            share_within_7_days=None,
            median_lag_bucket=None,
            rank=None,
        )
    lo, hi = known["lag_days_min"].to_numpy().astype(float), known["lag_days_max"].to_numpy().astype(float)
    mid = (lo + hi) / 2
    mean = float((w * mid).sum() / n)
    sd = float(np.sqrt((w * (mid - mean) ** 2).sum() / n))
    half = Z90 * sd / np.sqrt(n)
    cum = np.cumsum(w) / n
    median = None
    if "conversion_lag_bucket" in known.columns:
        median = known["conversion_lag_bucket"][int(np.searchsorted(cum, 0.5 - 1e-12))]
    return LagStat(
        campaign=key,
        platform=platform,
        campaign_id=campaign_id,
        campaign_name=name,
        conversions=n,
        mean_lag_days=mean,
        mean_lag_interval=Interval(lo=max(0.0, mean - half), hi=mean + half, level=LEVEL),
        share_within_7_days=float(w[hi <= 7].sum() / n),
        median_lag_bucket=median,
        rank=None,
    )


def conversion_lag_section(lag: pl.DataFrame, campaigns: pl.DataFrame) -> ConversionLag:
    lag = _with_key(lag)
    out = []
    for row in _with_key(campaigns).iter_rows(named=True):
        rows = lag.filter(pl.col("campaign") == row["campaign"])
        out.append(lag_stat(row["campaign"], row["platform"], int(row["campaign_id"]), row.get("campaign_name"), rows))
    ranked = sorted((s for s in out if s.mean_lag_days is not None), key=lambda s: (s.mean_lag_days, s.campaign))
    rank = {s.campaign: i + 1 for i, s in enumerate(ranked)}
    out = [s.model_copy(update={"rank": rank.get(s.campaign)}) for s in out]
    first = lag["first_click_date"].min() if "first_click_date" in lag.columns else None
    last = lag["last_click_date"].max() if "last_click_date" in lag.columns else None
    return ConversionLag(
        method=LAG_METHOD,
        first_click_date=first,
        last_click_date=last,
        campaigns=out,
        order=[s.campaign for s in ranked],
    )
