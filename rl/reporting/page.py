"""The report as one self-contained HTML page (inline CSS, charts as base64 PNG, no external URL: it opens from a
file, a mail attachment or an air-gapped machine alike) and the platform summary as a markdown table for the UI.

Missing figures are said in words ("no conversions", "no budget recorded"), never shown as 0, NaN or a dash."""

from __future__ import annotations

import base64
import datetime as dt
import html
import math

import polars as pl

from rl.reporting.daily import ALL_PLATFORMS, PlanSummary, PushSummary, Window

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1100px;
       color: #1f2933; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; }
.sub { color: #52606d; font-size: 13px; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; margin-top: 12px; }
.card { border: 1px solid #d9e2ec; border-radius: 6px; padding: 8px 14px; min-width: 150px; }
.card .label { font-size: 11px; color: #52606d; text-transform: uppercase; } .card .value { font-size: 20px; }
table { border-collapse: collapse; font-size: 12px; margin: 8px 0; }
th, td { border-bottom: 1px solid #e4e7eb; padding: 4px 8px; text-align: right; }
th { background: #f5f7fa; } td.l, th.l { text-align: left; }
tr.total td { font-weight: bold; border-top: 2px solid #9aa5b1; }
.above { color: #c62828; } .below { color: #2e7d32; }
.note { background: #fff8e1; border-left: 4px solid #f9a825; padding: 6px 10px; font-size: 13px; }
img { max-width: 100%; }
"""


def money(value: float | None, missing: str = "no spend") -> str:
    return missing if value is None or not math.isfinite(value) else f"${value:,.2f}"


def count(value: float) -> str:
    return f"{value:,.0f}" if abs(value - round(value)) < 1e-9 else f"{value:,.1f}"


def cpa_text(value: float | None) -> str:
    return "no conversions" if value is None or not math.isfinite(value) else f"${value:,.2f}"


def versus(ratio: float | None) -> str:
    """The CPA as a multiple of the target, with its verdict."""
    if ratio is None or not math.isfinite(ratio):
        return "no conversions"
    return f"{ratio:.2f}× target ({'above' if ratio > 1 else 'at or below'})"


def pct_change(new: float | None, old: float | None) -> str:
    if new is None or old is None:
        return "unchanged (not set)"
    return f"{new / old - 1:+.1%}" if old else "new"


def _e(value: object) -> str:
    return html.escape(str(value))


class Verdict(str):
    """A CPA-vs-target cell: its text, coloured red above the target and green at or below it."""

    css = ""

    @classmethod
    def of(cls, ratio: float | None) -> Verdict:
        cell = cls(versus(ratio))
        cell.css = "" if ratio is None or not math.isfinite(ratio) else ("above" if ratio > 1 else "below")
        return cell


def _td(i: int, cell: str, left: int) -> str:
    classes = " ".join(c for c in ("l" if i < left else "", getattr(cell, "css", "")) if c)
    return f'<td class="{classes}">{_e(cell)}</td>'


def _table(head: list[str] | None, rows: list[list[str]], left: int = 1, total_last: bool = False) -> str:
    """An HTML table (no header row when `head` is None); the first `left` columns are text (left-aligned);
    cells are escaped here."""
    th = "".join(f'<th class="{"l" if i < left else ""}">{_e(h)}</th>' for i, h in enumerate(head or []))
    body = []
    for n, row in enumerate(rows):
        css = ' class="total"' if total_last and n == len(rows) - 1 else ""
        tds = "".join(_td(i, c, left) for i, c in enumerate(row))
        body.append(f"<tr{css}>{tds}</tr>")
    thead = f"<thead><tr>{th}</tr></thead>" if head else ""
    return f"<table>{thead}<tbody>{''.join(body)}</tbody></table>"


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _platform_rows(platforms: pl.DataFrame, target_cpa: float) -> list[list[str]]:
    rows = []
    for r in platforms.iter_rows(named=True):
        rows.append(
            [
                r["platform"],
                money(r["spend_day"]),
                count(r["conversions_day"]),
                cpa_text(r["cpa_day"]),
                count(r["key_events_day"]),
                money(r["spend_window"]),
                count(r["conversions_window"]),
                count(r["key_events_window"]),
                cpa_text(r["cpa_window"]),
                money(target_cpa),
                Verdict.of(r["cpa_vs_target"]),
            ]
        )
    return rows


def summary_markdown(platforms: pl.DataFrame, window: Window, target_cpa: float) -> str:
    """Yesterday and the trailing window by platform, CPA against the target, as a compact markdown table (the
    UI's metadata column is narrow; the report has the full one)."""
    n = window.days
    head = (
        f"| platform | spend {window.day} | conv. | CPA | spend {n} d | conv. {n} d | CPA {n} d "
        f"| vs target {money(target_cpa)} |"
    )
    lines = [head, "|---|" + "---:|" * 7]
    for r in platforms.iter_rows(named=True):
        ratio = r["cpa_vs_target"]
        verdict = "no conversions" if ratio is None else f"{ratio:.2f}× ({'above' if ratio > 1 else 'below'})"
        row = [
            r["platform"],
            money(r["spend_day"]),
            count(r["conversions_day"]),
            cpa_text(r["cpa_day"]),
            money(r["spend_window"]),
            count(r["conversions_window"]),
            cpa_text(r["cpa_window"]),
            verdict,
        ]
        cells = [f"**{c}**" if r["platform"] == ALL_PLATFORMS else c for c in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cards(platforms: pl.DataFrame, window: Window) -> str:
    total = platforms.filter(pl.col("platform") == ALL_PLATFORMS).row(0, named=True)
    cards = [
        (f"spend {window.day}", money(total["spend_day"])),
        (f"conversions {window.day}", count(total["conversions_day"])),
        (f"CPA {window.day}", cpa_text(total["cpa_day"])),
        (f"spend {window.days} days", money(total["spend_window"])),
        (f"CPA {window.days} days", cpa_text(total["cpa_window"])),
        ("CPA vs target", versus(total["cpa_vs_target"])),
    ]
    inner = "".join(
        f'<div class="card"><div class="label">{_e(k)}</div><div class="value">{_e(v)}</div></div>' for k, v in cards
    )
    return f'<div class="cards">{inner}</div>'


def _campaign_table(campaigns: pl.DataFrame, window: Window) -> str:
    rows = []
    for r in campaigns.iter_rows(named=True):
        budget = r["budget_day"]
        rows.append(
            [
                r["platform"],
                f"{r['campaign_id']} {r['campaign_name']}",
                r["status"],
                money(r["spend_day"]),
                money(budget, "no budget recorded"),
                f"{r['pacing_day']:.0%}" if r["pacing_day"] is not None else "no budget recorded",
                count(r["conversions_day"]),
                money(r["spend_window"]),
                count(r["conversions_window"]),
                cpa_text(r["cpa_window"]),
                Verdict.of(r["cpa_vs_target"]),
            ]
        )
    head = ["platform", "campaign", "status", "spend", "budget", "spent of budget", "conversions"]
    n = window.days
    head += [f"spend {n} d", f"conversions {n} d", f"CPA {n} d", "CPA vs target"]
    return _table(head, rows, left=3)


def _plan_section(plan: PlanSummary) -> str:
    if plan.rows.is_empty():
        return f'<p class="note">{_e(plan.why)}</p>'
    facts = [
        ["plan for", plan.plan_date or "not recorded"],
        ["policy", f"{plan.policy_version} ({plan.policy_source})"],
        ["why", plan.why],
        ["account daily budget", money(plan.account_budget, "not recorded")],
        ["budgets now → planned", f"{money(plan.total_now)} → {money(plan.total_planned)}"],
    ]
    rows = []
    for r in plan.rows.iter_rows(named=True):
        rows.append(
            [
                r["platform"],
                f"{r['campaign_id']} {r['campaign_name']}",
                r["bid_kind"] or "not recorded",
                money(r["current_budget"], "not set"),
                money(r["daily_budget"], "unchanged"),
                pct_change(r["daily_budget"], r["current_budget"]),
                money(r["current_bid"], "not set"),
                money(r["bid"], "unchanged"),
                pct_change(r["bid"], r["current_bid"]),
                money(r["max_bid"], "no cap"),
            ]
        )
    head = ["platform", "campaign", "bid kind", "budget now", "budget plan", "Δ", "bid now", "bid plan", "Δ"]
    return _table(None, facts, left=2) + _table([*head, "max bid"], rows, left=3)


def _push_section(push: PushSummary) -> str:
    notes = "".join(f'<p class="note">{_e(n)}</p>' for n in push.notes)
    if push.latest.is_empty():
        return notes
    counts = [[r["platform"], r["mode"], r["status"], str(r["changes"])] for r in push.counts.iter_rows(named=True)]
    rows = []
    for r in push.latest.iter_rows(named=True):
        old = r["old_value"]
        problem = r["status"] in ("refused", "unknown", "not_sent", "intended")
        response = (r["response"] or "")[:160] if problem else ""
        rows.append(
            [
                r["platform"],
                str(r["campaign_id"]),
                r["field"],
                r["target"],
                "not known" if old is None or not math.isfinite(old) else f"{old:,.2f}",
                f"{r['new_value']:,.2f}",
                r["mode"],
                r["status"] + (f": {response}" if response else ""),
            ]
        )
    when = push.latest["intended_at_utc"].max()
    when_text = f"{when:%Y-%m-%d %H:%M}" if hasattr(when, "strftime") else str(when)
    head = f"<p>The latest push to each platform; the last one started {_e(when_text)} UTC.</p>"
    detail = _table(["platform", "campaign", "field", "target", "old", "new", "mode", "status"], rows, left=4)
    return notes + head + _table(["platform", "mode", "status", "changes"], counts, left=3) + detail


def render(
    window: Window,
    target_cpa: float,
    platforms: pl.DataFrame,
    campaigns: pl.DataFrame,
    plan: PlanSummary,
    push: PushSummary,
    charts: dict[str, bytes],
    generated_at: dt.datetime | None = None,
) -> str:
    """The whole page. `generated_at` is printed when given (left out, the page is a pure function of its data,
    so an unchanged day renders byte for byte the same)."""
    stamp = f" Generated {generated_at:%Y-%m-%d %H:%M} UTC." if generated_at else ""
    sections = [
        f"<h1>Daily performance report — {_e(window.day)}</h1>",
        f'<p class="sub">Yesterday = {_e(window.day)}; trailing {window.days} days = {_e(window.first)} .. '
        f"{_e(window.day)}. Target CPA {_e(money(target_cpa))}.{_e(stamp)}</p>",
        _cards(platforms, window),
        '<h2 id="platforms">By platform</h2>',
        _table(
            ["platform", "spend", "conversions", "CPA", "GA4 key events", f"spend {window.days} d"]
            + [f"conversions {window.days} d", f"GA4 key events {window.days} d", f"CPA {window.days} d"]
            + ["target CPA", "CPA vs target"],
            _platform_rows(platforms, target_cpa),
            total_last=True,
        ),
        '<h2 id="pacing">Spend and pacing</h2>',
        _img(charts["spend_pacing"], "daily spend by platform vs budgets"),
        '<h2 id="cpa">CPA vs target</h2>',
        _img(charts["cpa_vs_target"], "CPA vs target"),
        '<h2 id="campaigns">By campaign</h2>',
        _img(charts["campaigns"], "campaign pacing and CPA vs target"),
        _campaign_table(campaigns, window),
        '<h2 id="plan">The plan pushed and why</h2>',
        _plan_section(plan),
        '<h2 id="push">The push</h2>',
        _push_section(push),
        '<h2 id="notes">How to read this</h2>',
        "<ul><li>Spend, clicks and conversions are the ad platforms' own reports; conversions count by click date "
        "(a day's conversions belong to that day's spend), so the last days are still maturing and their CPA "
        "falls as late conversions arrive.</li><li>GA4 key events count by conversion date (last click) and are "
        "shown next to them, never added in.</li><li>Spent of budget: yesterday's spend over the daily budget in "
        "force that day; the platforms pace each campaign to stop at its budget.</li></ul>",
    ]
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>GAELP daily performance {_e(window.day)}</title><style>{CSS}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )
