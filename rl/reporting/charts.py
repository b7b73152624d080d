"""The report's charts as PNG bytes: daily spend against the budgets (pacing), daily CPA against the target, and
per campaign yesterday's pacing and the window's CPA against the target. Small figures at 90 dpi: the report is
built every day of the closed loop and one chart rides along in the asset's metadata."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # files only: the report is built on machines without a display
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402

from rl.reporting.daily import Window  # noqa: E402

DPI = 90
PLATFORM_COLOURS = {
    "google_ads": "#4285f4",
    "microsoft_ads": "#00a4ef",
    "meta": "#7b61ff",
    "tiktok": "#ff0050",
}
ABOVE, BELOW = "#d62728", "#2ca02c"


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    return buffer.getvalue()


def _nothing(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#555")
    ax.set_xticks([])
    ax.set_yticks([])


def spend_chart(daily: pl.DataFrame, account_budget: float | None, window: Window) -> bytes:
    """Stacked daily spend per platform, the sum of the campaigns' budgets in force, and the account's budget."""
    fig, ax = plt.subplots(figsize=(8.5, 3.2))
    platforms = [c.split(":", 1)[1] for c in daily.columns if c.startswith("spend:")]
    if not platforms or float(daily["spend"].sum()) <= 0:
        _nothing(ax, f"no spend reported {window.first} .. {window.day}")
    else:
        dates = daily["date"].to_list()
        bottom = [0.0] * len(dates)
        for p in platforms:
            values = daily[f"spend:{p}"].to_list()
            ax.bar(dates, values, bottom=bottom, label=p, color=PLATFORM_COLOURS.get(p), width=0.8)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.step(dates, daily["budget_in_force"].to_list(), where="mid", color="black", lw=1.2, label="budgets in force")
        if account_budget:
            ax.axhline(account_budget, color="grey", ls="--", lw=1, label=f"account budget {account_budget:,.0f}")
        ax.set_ylabel("spend / day")
        ax.legend(fontsize=7, ncol=3, loc="upper left")
        fig.autofmt_xdate()
    ax.set_title(f"Daily spend by platform vs budgets, {window.first} .. {window.day}", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def cpa_chart(daily: pl.DataFrame, target_cpa: float, window: Window) -> bytes:
    """Conversions per day (bars) and CPA per day and over the trailing 7 days (lines) against the target."""
    fig, ax = plt.subplots(figsize=(8.5, 3.2))
    if float(daily["conversions"].sum()) <= 0:
        _nothing(ax, f"no conversions reported {window.first} .. {window.day}")
    else:
        dates = daily["date"].to_list()
        rolling = daily.select(
            (pl.col("spend").rolling_sum(7, min_samples=1) / pl.col("conversions").rolling_sum(7, min_samples=1))
            .replace([float("inf")], [None])
            .fill_nan(None)
            .alias("cpa7")
        )["cpa7"]
        bars = ax.twinx()
        bars.bar(dates, daily["conversions"].to_list(), color="#cfd8e3", width=0.8, label="conversions")
        bars.set_ylabel("conversions / day")
        ax.set_zorder(bars.get_zorder() + 1)  # the CPA lines over the bars
        ax.patch.set_visible(False)
        ax.plot(dates, daily["cpa"].to_list(), "o", ms=3, color="#555", label="CPA of the day")
        ax.plot(dates, rolling.to_list(), color="black", lw=1.5, label="CPA, trailing 7 days")
        ax.axhline(target_cpa, color=ABOVE, ls="--", lw=1, label=f"target {target_cpa:,.0f}")
        ax.set_ylabel("CPA")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=7, loc="upper left")
        fig.autofmt_xdate()
    ax.set_title("CPA vs target (conversions by click date: recent days still maturing)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def campaign_chart(campaigns: pl.DataFrame, target_cpa: float, window: Window) -> bytes:
    """Left: yesterday's spend as a share of each campaign's budget. Right: each campaign's CPA over the window
    as a multiple of the target (red above it, green below; no bar: no conversions)."""
    rows = campaigns.sort("platform", "campaign_id", descending=True)
    height = max(2.6, 0.32 * rows.height + 1.0)
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.5, height), sharey=True)
    if rows.is_empty():
        _nothing(left, "no campaigns")
        _nothing(right, "no campaigns")
        return _png(fig)
    labels = [f"{p} {n}"[:38] for p, n in zip(rows["platform"], rows["campaign_name"], strict=True)]
    y = list(range(rows.height))
    pacing = [v if v is not None else 0.0 for v in rows["pacing_day"].to_list()]
    left.barh(y, pacing, color=[PLATFORM_COLOURS.get(p, "#888") for p in rows["platform"]])
    left.axvline(1.0, color="black", lw=1)
    left.set_yticks(y, labels, fontsize=7)
    left.set_xlabel(f"spend / budget on {window.day}", fontsize=8)
    ratios = rows["cpa_vs_target"].to_list()
    right.barh(y, [r or 0.0 for r in ratios], color=[ABOVE if (r or 0) > 1 else BELOW for r in ratios])
    right.axvline(1.0, color="black", lw=1, ls="--")
    right.set_xlabel(f"CPA / target ({target_cpa:,.0f}), {window.days} days", fontsize=8)
    for ax in (left, right):
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("Campaigns: yesterday's pacing and CPA vs target", fontsize=10)
    return _png(fig)
