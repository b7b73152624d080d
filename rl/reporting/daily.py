"""The figures of the daily performance report, from the marts, the plan and the push audit.

Day D (the partition, "yesterday" on the morning the report is read) and the trailing window D-27..D. Spend and
conversions are the ad platforms' (`fct_campaign_daily.spend` / `.conversions`): conversions by CLICK date, so a
day's conversions belong to that day's spend — and recent days are still maturing (their CPA falls as late
conversions arrive). GA4 key events (by conversion date, last click) are shown next to them, not mixed in.
CPA = spend / conversions of the same rows; with no conversions there is no CPA (said in words, never 0 or NaN).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

WINDOW_DAYS = 28
ALL_PLATFORMS = "all platforms"

# What each input frame must hold (the caller's query selects these; extra columns are ignored).
MART_COLUMNS = (
    "date",
    "platform",
    "campaign_id",
    "campaign_name",
    "spend",
    "clicks",
    "conversions",
    "key_events",
    "daily_budget",
)
CAMPAIGN_COLUMNS = ("platform", "campaign_id", "campaign_name", "status")
PLAN_COLUMNS = (
    "plan_date",
    "platform",
    "campaign_id",
    "campaign_name",
    "bid_kind",
    "daily_budget",
    "bid",
    "current_budget",
    "current_bid",
    "max_bid",
    "policy_version",
    "policy_source",
    "fallback_reason",
    "account_daily_budget",
    "max_step",
)
AUDIT_COLUMNS = (
    "audit_id",
    "push_id",
    "policy_version",
    "platform",
    "campaign_id",
    "field",
    "target",
    "old_value",
    "new_value",
    "mode",
    "status",
    "response",
    "intended_at_utc",
)


def _require(frame: pl.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"the {what} frame lacks columns {missing} (has {frame.columns})")


def cpa(spend: float, conversions: float) -> float | None:
    """Cost per acquisition; None when nothing converted (no CPA exists, rather than an infinite one)."""
    return spend / conversions if conversions > 0 else None


@dataclass(frozen=True)
class Window:
    """The report's days: `day` (yesterday) and the trailing window ending on it."""

    day: dt.date
    days: int = WINDOW_DAYS

    @property
    def first(self) -> dt.date:
        return self.day - dt.timedelta(days=self.days - 1)


def _totals(frame: pl.DataFrame, by: list[str], suffix: str) -> pl.DataFrame:
    """Sums per `by` (one row of sums, even of no rows, when `by` is empty)."""
    return (frame.group_by(by).agg if by else frame.select)(
        pl.col("spend").sum().alias(f"spend_{suffix}"),
        pl.col("conversions").sum().alias(f"conversions_{suffix}"),
        pl.col("key_events").sum().alias(f"key_events_{suffix}"),
        pl.col("clicks").sum().alias(f"clicks_{suffix}"),
    )


def _with_cpa(frame: pl.DataFrame, target_cpa: float) -> pl.DataFrame:
    out = frame
    for s in ("day", "window"):
        out = out.with_columns(
            pl.when(pl.col(f"conversions_{s}") > 0)
            .then(pl.col(f"spend_{s}") / pl.col(f"conversions_{s}"))
            .otherwise(None)
            .alias(f"cpa_{s}")
        )
    return out.with_columns((pl.col("cpa_window") / target_cpa).alias("cpa_vs_target"))


def _clean_marts(marts: pl.DataFrame, window: Window) -> pl.DataFrame:
    _require(marts, MART_COLUMNS, "marts")
    numbers = ["spend", "clicks", "conversions", "key_events", "daily_budget"]
    return (
        marts.select(MART_COLUMNS)
        .with_columns(
            pl.col("date").cast(pl.Date),
            pl.col("campaign_id").cast(pl.Int64),
            *[pl.col(c).cast(pl.Float64) for c in numbers],
        )
        .with_columns(pl.col(c).fill_null(0.0) for c in ("spend", "clicks", "conversions", "key_events"))
        .filter(pl.col("date").is_between(window.first, window.day))
    )


def platform_summary(marts: pl.DataFrame, window: Window, target_cpa: float) -> pl.DataFrame:
    """Per platform, then one row for all platforms: spend, conversions, key events and CPA yesterday and over the
    window, and the window's CPA as a multiple of the target (below 1: cheaper than the target)."""
    m = _clean_marts(marts, window)
    yesterday = m.filter(pl.col("date") == window.day)
    per = _totals(m, ["platform"], "window").join(_totals(yesterday, ["platform"], "day"), on="platform", how="left")
    # the total is a select, not a group-by: one row even when nothing was reported
    total = pl.concat([_totals(m, [], "window"), _totals(yesterday, [], "day")], how="horizontal")
    total = total.with_columns(pl.lit(ALL_PLATFORMS).alias("platform")).select(per.columns)
    out = pl.concat([per, total], how="vertical_relaxed").fill_null(0.0)
    out = _with_cpa(out, target_cpa)
    order = pl.when(pl.col("platform") == ALL_PLATFORMS).then(1).otherwise(0)
    return out.sort(order, "platform")


def campaign_summary(marts: pl.DataFrame, campaigns: pl.DataFrame, window: Window, target_cpa: float) -> pl.DataFrame:
    """Per campaign of the registry (and any campaign that spent without being in it): the platform summary's
    figures plus yesterday's pacing — the daily budget in force and the share of it spent."""
    m = _clean_marts(marts, window)
    _require(campaigns, CAMPAIGN_COLUMNS, "campaigns")
    keys = ["platform", "campaign_id"]
    registry = campaigns.select(CAMPAIGN_COLUMNS).with_columns(pl.col("campaign_id").cast(pl.Int64))
    seen = m.select(keys).unique()
    every = pl.concat([registry.select(keys), seen]).unique()
    yesterday = m.filter(pl.col("date") == window.day)
    budget = yesterday.group_by(keys).agg(pl.col("daily_budget").max().alias("budget_day"))
    out = (
        every.join(_totals(m, keys, "window"), on=keys, how="left")
        .join(_totals(yesterday, keys, "day"), on=keys, how="left")
        .with_columns(pl.col(c).fill_null(0.0) for c in _figure_columns())
        .join(budget, on=keys, how="left")
        .join(registry, on=keys, how="left")
        .with_columns(
            pl.col("campaign_name").fill_null("(not in the campaign registry)"),
            pl.col("status").fill_null("unknown"),
            pl.when(pl.col("budget_day") > 0).then(pl.col("spend_day") / pl.col("budget_day")).alias("pacing_day"),
        )
    )
    return _with_cpa(out, target_cpa).sort("platform", "campaign_id")


def _figure_columns() -> list[str]:
    return [f"{f}_{s}" for f in ("spend", "conversions", "key_events", "clicks") for s in ("day", "window")]


def daily_series(marts: pl.DataFrame, window: Window) -> pl.DataFrame:
    """One row per day of the window (every day, even without data): spend, conversions, the budgets in force and
    CPA; plus one spend column per platform (`spend:<platform>`) for the stacked chart."""
    m = _clean_marts(marts, window)
    days = pl.DataFrame({"date": pl.date_range(window.first, window.day, "1d", eager=True)})
    totals = m.group_by("date").agg(
        pl.col("spend").sum(),
        pl.col("conversions").sum(),
        pl.col("daily_budget").sum().alias("budget_in_force"),
        pl.col("daily_budget").is_not_null().any().alias("has_budget"),
    )
    out = days.join(totals, on="date", how="left").with_columns(
        pl.col("spend").fill_null(0.0), pl.col("conversions").fill_null(0.0)
    )
    out = out.with_columns(
        pl.when(pl.col("has_budget")).then(pl.col("budget_in_force")).alias("budget_in_force"),
        pl.when(pl.col("conversions") > 0).then(pl.col("spend") / pl.col("conversions")).alias("cpa"),
    ).drop("has_budget")
    for platform in sorted(m["platform"].unique().to_list()):
        per = m.filter(pl.col("platform") == platform).group_by("date").agg(pl.col("spend").sum())
        out = out.join(per.rename({"spend": f"spend:{platform}"}), on="date", how="left").with_columns(
            pl.col(f"spend:{platform}").fill_null(0.0)
        )
    return out.sort("date")


@dataclass(frozen=True)
class PlanSummary:
    """The plan made on day D for D+1 and why that policy made it; `rows` is empty when there is no plan."""

    rows: pl.DataFrame
    plan_date: str | None = None
    policy_version: str | None = None
    policy_source: str | None = None
    why: str = ""
    account_budget: float | None = None
    total_now: float = 0.0
    total_planned: float = 0.0


def plan_summary(plan: pl.DataFrame | None, day: dt.date) -> PlanSummary:
    """The partition's plan (its rows from `bid_plan`) summarised; absent -> empty rows and the reason said."""
    if plan is None or plan.is_empty():
        return PlanSummary(
            rows=pl.DataFrame(),
            why=f"No bid plan is stored for {day.isoformat()}: daily_bid_plan has not run for this day (or its "
            "rows were removed). Nothing was planned, so nothing below was pushed from a plan of this day.",
        )
    _require(plan, PLAN_COLUMNS, "plan")
    rows = plan.select(PLAN_COLUMNS).sort("platform", "campaign_id")
    first = rows.row(0, named=True)
    source, reason = first["policy_source"], first["fallback_reason"]
    if source == "kill_switch":
        why = f"The kill switch fired and the safe settings were planned: {reason or 'no reason was recorded'}."
    elif reason:
        why = f"Planned by {first['policy_version']} ({source}), not by a promoted model: {reason}."
    else:
        why = f"Planned by the promoted model {first['policy_version']} ({source})."
    plan_date = first["plan_date"]
    return PlanSummary(
        rows=rows,
        plan_date=plan_date.isoformat() if hasattr(plan_date, "isoformat") else str(plan_date),
        policy_version=first["policy_version"],
        policy_source=source,
        why=why,
        account_budget=first["account_daily_budget"],
        total_now=float(rows["current_budget"].fill_null(0.0).sum()),
        total_planned=float(rows["daily_budget"].fill_null(0.0).sum()),
    )


@dataclass(frozen=True)
class PushSummary:
    """The partition's pushes from the audit: the rows of the latest push to each platform, their counts by
    platform/mode/status, how many times the day was pushed, and what the reader should know (no push, a re-push,
    a push of another plan version, refused or unfinished changes)."""

    latest: pl.DataFrame
    counts: pl.DataFrame
    pushes: int = 0
    notes: list[str] = field(default_factory=list)


def push_summary(audit: pl.DataFrame | None, day: dt.date, plan: PlanSummary) -> PushSummary:
    if audit is None or audit.is_empty():
        note = (
            f"No push is recorded for {day.isoformat()}: bid_push has not run for this day, or the guardrail "
            "checks blocked the plan. The settings in force stay as they were."
        )
        return PushSummary(latest=pl.DataFrame(), counts=pl.DataFrame(), notes=[note])
    _require(audit, AUDIT_COLUMNS, "push audit")
    audit = audit.select(AUDIT_COLUMNS).sort("audit_id")
    # a push is one platform's call (its own push_id); a re-run of bid_push pushes every platform again
    last_of_platform = audit.group_by("platform").agg(pl.col("push_id").last(), pl.col("push_id").n_unique().alias("n"))
    latest = audit.filter(pl.col("push_id").is_in(last_of_platform["push_id"].implode()))
    latest = latest.sort("platform", "campaign_id", "field", "target")
    counts = latest.group_by("platform", "mode", "status").agg(pl.len().alias("changes")).sort("platform", "status")
    pushes = int(last_of_platform["n"].max())
    notes = []
    if pushes > 1:
        notes.append(
            f"This day was pushed {pushes} times; the latest push to each platform is shown (a re-push sends only "
            "what the platform does not already have: the rest is 'skipped_unchanged')."
        )
    versions = set(latest["policy_version"].to_list())
    if plan.policy_version and versions != {plan.policy_version}:
        notes.append(
            f"The latest push carried {', '.join(sorted(versions))}, but the stored plan is now "
            f"{plan.policy_version}: the day was re-planned after the push."
        )
    refused = latest.filter(pl.col("status") == "refused").height
    if refused:
        notes.append(f"{refused} change(s) were refused by the platform (see the rows marked 'refused').")
    unknown = latest.filter(pl.col("status").is_in(["unknown", "intended"])).height
    if unknown:
        notes.append(
            f"{unknown} change(s) were sent without a usable answer ('unknown'): the platform may or may not have "
            "applied them; re-running the push reads their values back before sending again."
        )
    not_sent = latest.filter(pl.col("status") == "not_sent").height
    if not_sent:
        notes.append(f"{not_sent} change(s) were not sent (see the rows marked 'not_sent' for why).")
    return PushSummary(latest=latest, counts=counts, pushes=pushes, notes=notes)
