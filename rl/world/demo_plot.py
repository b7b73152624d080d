"""The picture `make demo` leaves next to the world's state: daily spend and reported conversions per platform, and
the daily score of the bids in force against the two hindsight yardsticks."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: the demo runs on machines without a display
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402


def plot_demo(daily: pl.DataFrame, scores: dict[str, list[tuple[float, float, float]]] | None, path: Path) -> Path:
    """daily: one row per (date, platform) with `spend` and `conversions`; scores: per yardstick, (score,
    conversions, spend) per day, or None to leave that panel out."""
    wide = {
        metric: daily.pivot(on="platform", index="date", values=metric, aggregate_function="sum")
        .sort("date")
        .fill_null(0)
        for metric in ("spend", "conversions")
    }
    panels = 3 if scores else 2
    fig, axes = plt.subplots(panels, 1, figsize=(10, 3.2 * panels), sharex=True, constrained_layout=True)
    for ax, (metric, title) in zip(
        axes,
        [("spend", "Spend per day by platform ($)"), ("conversions", "Conversions by click date, as reported")],
        strict=False,
    ):
        frame = wide[metric]
        dates = frame["date"].to_list()
        bottom = [0.0] * len(dates)
        for platform in [c for c in frame.columns if c != "date"]:
            values = frame[platform].to_list()
            ax.bar(dates, values, bottom=bottom, label=platform, width=0.85)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylim(top=axes[0].get_ylim()[1] * 1.25)  # room for the legend above the bars
    axes[0].legend(ncols=4, fontsize="small", loc="upper left")
    if scores:
        ax = axes[2]
        dates = wide["spend"]["date"].to_list()
        for name, values in scores.items():
            ax.plot(dates[: len(values)], [v[0] for v in values], marker="o", ms=3, label=name)
        ax.set_title("Daily score = conversions × min(1, (target CPA / CPA)²), eventual conversions")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.autofmt_xdate()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
