"""Fitted vs observed, for people: the bid landscape per campaign, opportunity volume over time, and the
backtest's held-out days against the simulated band."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from rl.calibration.fit import Calibration  # noqa: E402


def plot_fit(cal: Calibration, path: Path) -> Path:
    """One row per campaign: price vs bid (observed per bid level, fitted), impression share vs bid (search),
    and daily opportunities (observed, fitted)."""
    camps = [c for c in cal.campaigns.values() if c.rivals is not None]
    fig, axes = plt.subplots(len(camps), 3, figsize=(13, 2.3 * len(camps)), squeeze=False)
    for row, c in zip(axes, camps, strict=True):
        lv = c.rivals.levels
        unit = "CPC" if c.structure.kind == "search" else "CPM"
        row[0].scatter(lv["bid"], lv["price_observed"], s=8 + 40 * lv["days"] / lv["days"].max(), label="observed")
        row[0].plot(lv["bid"], lv["price_fitted"], "r-", lw=1.2, label="fitted")
        row[0].set_title(f"{c.campaign_id} {c.name[:28]}: avg {unit} vs bid", fontsize=8)
        row[0].legend(fontsize=6)
        if c.structure.kind == "search":
            ok = lv.filter(pl.col("share_observed").is_not_null())
            row[1].scatter(ok["bid"], ok["share_observed"], s=10, label="observed")
            row[1].scatter(ok["bid"], ok["share_fitted"], s=10, marker="x", c="r", label="fitted (with pacing)")
            row[1].plot(lv["bid"], lv["share_unthrottled"], "g-", lw=1, label="fitted, budget not binding")
            row[1].set_ylim(0, 1.05)
            row[1].legend(fontsize=6)
        row[1].set_title(
            f"share vs bid ({c.rivals.n_rivals} rivals, median {c.rivals.median:.2f}, σ {c.rivals.sigma:.2f})",
            fontsize=8,
        )
        v = cal.volume.filter(pl.col("campaign_id") == c.campaign_id).sort("date")
        row[2].plot(v["date"], v["opps"], ".", ms=2, alpha=0.5, label="observed")
        row[2].plot(v["date"], v["opps_fitted"], "r-", lw=1, label="fitted")
        row[2].set_title("opportunities per day", fontsize=8)
        row[2].legend(fontsize=6)
        for ax in row:
            ax.tick_params(labelsize=6)
    fig.suptitle(f"Calibration {cal.first} .. {cal.last} (params {cal.params.params_hash()})", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def plot_backtest(daily: pl.DataFrame, wape: dict, path: Path) -> Path:
    """Held-out days per platform and metric: observed vs the simulated mean and 10-90% band."""
    platforms = sorted(daily["platform"].unique().to_list())
    metrics = ["spend", "clicks", "conversions"]
    fig, axes = plt.subplots(len(metrics), len(platforms), figsize=(3.2 * len(platforms), 7), squeeze=False)
    for i, m in enumerate(metrics):
        for j, p in enumerate(platforms):
            ax = axes[i][j]
            d = daily.filter((pl.col("metric") == m) & (pl.col("platform") == p)).sort("date")
            x = np.arange(d.height)
            ax.fill_between(x, d["simulated_p10"], d["simulated_p90"], alpha=0.25, label="simulated 10-90%")
            ax.plot(x, d["simulated"], "r-", lw=1, label="simulated mean")
            ax.plot(x, d["observed"], "k.-", lw=0.8, ms=3, label="observed")
            ax.set_title(f"{p} {m}: WAPE {wape[m][p]:.0%}", fontsize=8)
            ax.tick_params(labelsize=6)
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
