"""One PNG summarising `DiscoveredPatterns` (hour-of-day profiles, device conversion rates, CPA and lag by campaign),
and the conversion lag distribution of the `fct_conversion_lag` mart."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from rl.discovery.schema import DiscoveredPatterns, HourProfile  # noqa: E402


def _hour_profiles(p: DiscoveredPatterns) -> list[tuple[str, HourProfile]]:
    """Clicks by channel group (or the account when there are none), plus search auctions when reported."""
    chosen = [
        (f"{h.key} clicks", h) for h in p.hour_of_day.profiles if h.scope == "channel_group" and h.metric == "clicks"
    ]
    if not chosen:
        chosen = [
            ("account clicks", h) for h in p.hour_of_day.profiles if h.scope == "account" and h.metric == "clicks"
        ]
    chosen += [
        (f"{h.key} auctions", h)
        for h in p.hour_of_day.profiles
        if h.scope == "channel_group" and h.metric == "auctions"
    ]
    return chosen


def plot_patterns(p: DiscoveredPatterns, path: str | Path) -> Path:
    """Write a 2 × 2 figure of the patterns to `path` (PNG) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5))
    w = p.data_window
    fig.suptitle(f"Discovered patterns, {w.first_date} … {w.last_date} ({w.days} days)", fontsize=12)

    ax = axes[0, 0]
    hours = np.arange(24)
    for label, h in _hour_profiles(p):
        (line,) = ax.plot(
            hours, h.shares, marker=".", label=f"{label} (peak {h.peak_hour}h, p={h.peak_probability:.2f})"
        )
        ax.fill_between(hours, h.shares_lo, h.shares_hi, color=line.get_color(), alpha=0.15)
    ax.set(title="Hour of day (share, 90% day-bootstrap band)", xlabel="hour", ylabel="share", xticks=range(0, 24, 3))
    ax.legend(fontsize=7)

    ax = axes[0, 1]
    group = p.devices.get() if p.devices.groups else None
    if group is not None:
        names = [d.device for d in group.devices]
        cvr = np.array([d.conversion_rate or 0.0 for d in group.devices])
        lo = np.array([d.interval.lo if d.interval else c for d, c in zip(group.devices, cvr, strict=True)])
        hi = np.array([d.interval.hi if d.interval else c for d, c in zip(group.devices, cvr, strict=True)])
        # a device without a point estimate is drawn at 0 while its interval may lie above it: clip the bars there
        err = [np.clip(cvr - lo, 0, None) * 100, np.clip(hi - cvr, 0, None) * 100]
        ax.bar(names, cvr * 100, yerr=err, capsize=6, color="tab:green", alpha=0.7)
        ax.set_title(
            f"GA4 conversion rate by device, 90% interval (P(ranking) {group.ranking_probability:.2f})", fontsize=10
        )
    ax.set_ylabel("key events per session, %")

    ax = axes[1, 0]
    camps = [c for c in p.channels.campaigns if c.cpa is not None]
    camps.sort(key=lambda c: c.cpa)
    if camps:
        y = np.arange(len(camps))
        cpa = np.array([c.cpa for c in camps])
        lo = np.array([c.cpa_interval.lo for c in camps])
        hi = np.array([c.cpa_interval.hi for c in camps])
        ax.barh(y, cpa, xerr=[cpa - lo, hi - cpa], capsize=4, color="tab:blue", alpha=0.7)
        ax.set_yticks(y, [c.campaign_name or c.key for c in camps], fontsize=7)
        ax.invert_yaxis()
    ax.set(
        title=f"CPA by campaign (click dates to {p.channels.last_click_date}, 90% interval)",
        xlabel="spend / conversion",
    )

    ax = axes[1, 1]
    lags = [c for c in p.conversion_lag.campaigns if c.mean_lag_days is not None]
    lags.sort(key=lambda c: c.mean_lag_days)
    if lags:
        y = np.arange(len(lags))
        mean = np.array([c.mean_lag_days for c in lags])
        lo = np.array([c.mean_lag_interval.lo for c in lags])
        hi = np.array([c.mean_lag_interval.hi for c in lags])
        ax.barh(y, mean, xerr=[mean - lo, hi - mean], capsize=4, color="tab:orange", alpha=0.7)
        for yi, c in zip(y, lags, strict=True):
            ax.text(c.mean_lag_interval.hi + 0.1, yi, f"{c.share_within_7_days:.0%} ≤ 7 d", va="center", fontsize=7)
        ax.set_yticks(y, [c.campaign_name or c.campaign for c in lags], fontsize=7)
        ax.invert_yaxis()
    ax.set(title="Mean click→conversion lag (mature click dates, 90% interval)", xlabel="days")

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_conversion_lag(lag: pl.DataFrame) -> bytes:
    """The click→conversion lag distribution from `fct_conversion_lag` rows: each campaign's cumulative share of
    conversions reported by the end of each lag bucket (how mature a click date is after d days), and the
    account's share per bucket. Returns PNG bytes."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    known = lag.filter(pl.col("lag_days_max").is_not_null()).sort("bucket_order")
    window = known.select(pl.col("first_click_date").min(), pl.col("last_click_date").max()).row(0)
    fig.suptitle(f"Conversion lag over mature click dates {window[0]} .. {window[1]}", fontsize=10)
    converting = known.filter(pl.col("cumulative_share").is_not_null())
    ax = axes[0]
    for (platform, campaign_id), rows in sorted(converting.group_by("platform", "campaign_id"), key=lambda g: g[0]):
        ax.plot(rows["lag_days_max"], rows["cumulative_share"], ".-", lw=1, label=f"{platform} {campaign_id}")
    ax.set(title="cumulative share of conversions by lag", xlabel="days after the click", ylim=(0, 1.05))
    ax.title.set_fontsize(8)
    ax.legend(fontsize=6, ncol=2)
    ax = axes[1]
    account = known.group_by("conversion_lag_bucket", "bucket_order").agg(pl.col("conversions").sum())
    account = account.sort("bucket_order")
    total = account["conversions"].sum()
    if total:
        ax.bar(account["conversion_lag_bucket"].to_list(), (account["conversions"] / total).to_list(), alpha=0.7)
    else:
        ax.text(0.5, 0.5, "no mature conversions yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(f"account: share of {total:,.0f} conversions per lag bucket", fontsize=8)
    ax.tick_params(axis="x", rotation=60, labelsize=6)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=72)
    plt.close(fig)
    return buffer.getvalue()
