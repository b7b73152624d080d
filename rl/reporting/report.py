"""The daily report put together: the tables of `rl.reporting.daily`, the charts of `rl.reporting.charts` and the
page of `rl.reporting.page` (apart from daily.py, which both of those import)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from rl.reporting import charts, page
from rl.reporting.daily import (
    WINDOW_DAYS,
    PlanSummary,
    PushSummary,
    Window,
    campaign_summary,
    daily_series,
    plan_summary,
    platform_summary,
    push_summary,
)


@dataclass(frozen=True)
class DailyReport:
    """Everything the report shows, and its renderings: `charts` (file stem -> PNG bytes) and `html`."""

    window: Window
    target_cpa: float
    platforms: pl.DataFrame
    campaigns: pl.DataFrame
    daily: pl.DataFrame
    plan: PlanSummary
    push: PushSummary
    charts: dict[str, bytes]
    html: str


def build_report(
    marts: pl.DataFrame,
    campaigns: pl.DataFrame,
    plan: pl.DataFrame | None,
    audit: pl.DataFrame | None,
    day: dt.date,
    target_cpa: float,
    window_days: int = WINDOW_DAYS,
    generated_at: dt.datetime | None = None,
) -> DailyReport:
    """The report of day `day` (the partition) from `fct_campaign_daily` rows covering the window, the registry
    (`dim_campaign`), the day's `bid_plan` rows and its `bid_push_audit` rows (either may be None or empty)."""
    if target_cpa <= 0:
        raise ValueError(f"target_cpa must be positive, got {target_cpa}")
    window = Window(day, window_days)
    platforms = platform_summary(marts, window, target_cpa)
    per_campaign = campaign_summary(marts, campaigns, window, target_cpa)
    daily = daily_series(marts, window)
    planned = plan_summary(plan, day)
    pushed = push_summary(audit, day, planned)
    figures = {
        "spend_pacing": charts.spend_chart(daily, planned.account_budget, window),
        "cpa_vs_target": charts.cpa_chart(daily, target_cpa, window),
        "campaigns": charts.campaign_chart(per_campaign, target_cpa, window),
    }
    html = page.render(window, target_cpa, platforms, per_campaign, planned, pushed, figures, generated_at)
    return DailyReport(window, target_cpa, platforms, per_campaign, daily, planned, pushed, figures, html)
