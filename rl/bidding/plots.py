"""What people look at, in the UI previews: campaign performance and pacing (how each campaign spent against its
daily budget and what its conversions cost against the target, from `fct_campaign_daily` rows: by click date as
the platforms report it, so the CPA of the last days is still falling as late conversions arrive), the day's plan
against the settings in force, and the push audit.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402

from rl.bidding.plan import DEVICE_KEYS, SEARCH_PLATFORMS, hour_block_keys, to_cents  # noqa: E402

PACING_COLUMNS = ("date", "platform", "campaign_id", "campaign_name", "spend", "conversions", "daily_budget")


def _label(frame: pl.DataFrame) -> pl.Expr:
    name = pl.col("campaign_name").fill_null("") if "campaign_name" in frame.columns else pl.lit("")
    return pl.concat_str([pl.col("campaign_id").cast(pl.Utf8), name.str.slice(0, 24)], separator=" ")


def campaign_pacing(daily: pl.DataFrame, target_cpa: float) -> pl.DataFrame:
    """One row per campaign over the rows given: days, spend, the daily budgets in force, utilisation (spend / sum
    of budgets, where a budget was reported), conversions, CPA and CPA / target (null without conversions)."""
    if daily.is_empty():
        return pl.DataFrame()
    return (
        daily.with_columns(_label(daily).alias("campaign"))
        .group_by("platform", "campaign")
        .agg(
            pl.col("date").n_unique().alias("days"),
            pl.col("spend").sum().alias("spend"),
            pl.col("daily_budget").mean().alias("avg_daily_budget"),
            (
                pl.col("spend").filter(pl.col("daily_budget").is_not_null()).sum()
                / pl.col("daily_budget").sum().replace(0, None)
            ).alias("budget_utilisation"),
            pl.col("conversions").sum().alias("conversions"),
        )
        .with_columns((pl.col("spend") / pl.col("conversions").replace(0, None)).alias("cpa"))
        .with_columns((pl.col("cpa") / target_cpa).alias("cpa_vs_target"))
        .sort("platform", "campaign")
    )


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=72)
    plt.close(fig)
    return buffer.getvalue()


def plot_pacing(daily: pl.DataFrame, target_cpa: float, title: str) -> bytes:
    """Three panels: the account's spend per day against the sum of daily budgets; each campaign's budget
    utilisation per day; each campaign's CPA over the rows against the target. Returns PNG bytes."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    fig.suptitle(title, fontsize=10)
    by_day = daily.group_by("date").agg(pl.col("spend").sum(), pl.col("daily_budget").sum()).sort("date")
    ax = axes[0]
    ax.bar(by_day["date"].to_list(), by_day["spend"].to_list(), color="tab:blue", alpha=0.7, label="spend")
    if by_day["daily_budget"].sum() > 0:
        ax.step(by_day["date"].to_list(), by_day["daily_budget"].to_list(), "r-", where="mid", label="daily budgets")
    ax.set_title("account spend vs budgets per day", fontsize=8)
    ax.legend(fontsize=6)

    ax = axes[1]
    labelled = daily.with_columns(_label(daily).alias("campaign"))
    paced = labelled.filter(pl.col("daily_budget") > 0)
    for (campaign,), rows in sorted(paced.group_by("campaign"), key=lambda g: g[0]):
        rows = rows.sort("date")
        ax.plot(rows["date"].to_list(), (rows["spend"] / rows["daily_budget"]).to_list(), ".-", lw=1, label=campaign)
    if paced.is_empty():
        ax.text(0.5, 0.5, "no daily budget reported in the window", ha="center", va="center", transform=ax.transAxes)
    ax.axhline(1.0, color="k", ls="--", lw=0.8)
    ax.set_title("budget utilisation (spend / daily budget)", fontsize=8)
    if not paced.is_empty():  # below the axes: inside, it hides the lines it names
        ax.legend(fontsize=5, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.28), frameon=False)

    ax = axes[2]
    everyone = campaign_pacing(daily, target_cpa)
    summary = everyone.filter(pl.col("cpa").is_not_null())
    silent = everyone.filter(pl.col("cpa").is_null())["campaign"].str.split(" ").list.first().to_list()
    if silent:
        ax.set_xlabel("no conversions: " + ", ".join(silent), fontsize=7)
    if summary.is_empty():
        ax.text(0.5, 0.5, "no conversions reported in the window", ha="center", va="center", transform=ax.transAxes)
    else:
        colors = ["tab:red" if r > 1 else "tab:green" for r in summary["cpa_vs_target"]]
        ax.barh(summary["campaign"].to_list(), summary["cpa"].to_list(), color=colors, alpha=0.7)
        ax.invert_yaxis()
    ax.axvline(target_cpa, color="k", ls="--", lw=0.8, label=f"target {target_cpa:g}")
    ax.set_title("CPA by campaign (click date) vs target", fontsize=8)
    ax.legend(fontsize=6)
    for ax in axes:
        ax.tick_params(labelsize=6)
    for label in axes[0].get_xticklabels() + axes[1].get_xticklabels():
        label.set_rotation(45)
    fig.tight_layout()
    return _png(fig)


def _change(new: float, old: float | None) -> str:
    return f"{new / old - 1:+.1%}" if old else "new setting"


def modifier_diff(e) -> str:
    """The entry's device and hour-block modifiers that change, as "mobile 1.00→1.10, h08_12 1.00→0.90"
    ("unchanged"; on a platform without modifiers, "none on <platform>")."""
    if e.device_modifiers is None and e.hour_modifiers is None:
        return "not set" if e.platform in SEARCH_PLATFORMS else f"none on {e.platform}"
    moves = []
    for new, now, keys in (
        (e.device_modifiers, e.current_device_modifiers, DEVICE_KEYS),
        (e.hour_modifiers, e.current_hour_modifiers, hour_block_keys(len(e.hour_modifiers or ()))),
    ):
        for j, value in enumerate(new or ()):
            old = now[j] if now is not None else None
            if old is None or to_cents(old) != to_cents(value):
                moves.append(f"{keys[j]} {'?' if old is None else f'{old:.2f}'}→{value:.2f}")
    return ", ".join(moves) or "unchanged"


def plan_diff(entries: Sequence) -> list[dict]:
    """The plan (`PlanEntry` rows) against the settings in force, one row per campaign, with the policy behind it."""
    return [
        {
            "campaign": f"{e.campaign_id} {e.campaign_name or ''}".strip(),
            "platform": e.platform,
            "budget now": round(e.current_budget, 2),
            "budget plan": round(e.daily_budget, 2),
            "budget Δ": _change(e.daily_budget, e.current_budget),
            "bid kind": e.bid_kind,
            "bid now": round(e.current_bid, 2),
            "bid plan": round(e.bid, 2),
            "bid Δ": _change(e.bid, e.current_bid),
            "max bid": round(e.max_bid, 2),
            "modifiers Δ": modifier_diff(e),
            "policy": f"{e.policy_version} ({e.policy_source})",
        }
        for e in entries
    ]


def plan_total(entries: Sequence) -> str:
    """The account's budget now and planned, in one line."""
    now, plan = sum(e.current_budget for e in entries), sum(e.daily_budget for e in entries)
    return f"**total daily budget**: {now:.2f} now → {plan:.2f} planned ({_change(plan, now)})"


def push_audit(results: Sequence) -> list[dict]:
    """One row per intended change (`PushResult`): what was sent where, old → new, and what the platform said."""
    rows = []
    for r in results:
        old = r.old_value
        sent = r.status not in ("intended", "skipped_unchanged", "not_sent")
        rows.append(
            {
                "campaign": r.campaign_id,
                "platform": r.platform,
                "field": r.field,
                "target": r.target,
                "old": "not read" if old is None or old != old else f"{float(old):.2f}",  # NaN: not read either
                "new": round(float(r.new_value), 2),
                "status": r.status,
                "mode": r.mode,
                "validate_only": r.mode == "validate_only",
                "request_id": r.request_id or ("none returned" if sent else "not sent"),
                "response": (r.response or ("no response" if sent else "not sent")).replace("\n", " ")[:120],
            }
        )
    return rows


def push_problems(results: Sequence) -> str:
    """Why a push needs attention, in one message: counts of refused, unknown and not-sent changes, each with what
    it means and what to do."""
    meaning = {
        "refused": "refused by the platform (nothing applied; the response says why — fix the cause and re-run)",
        "unknown": "sent without a usable answer (the platform may have applied them; re-running bid_push for "
        "the partition reads their values back before sending again)",
        "not_sent": "not sent (a check before sending failed, or the platform had stopped answering; re-run "
        "bid_push once the cause is fixed)",
        "intended": "left without an answer by a stopped run (the next push records them unknown and reads them back)",
    }
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    parts = [f"{n} change(s) {meaning.get(status, status)}" for status, n in sorted(counts.items())]
    return "bid_push: " + "; ".join(parts) + ". See the audit table bid_push_audit."
