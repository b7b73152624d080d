"""`make demo`: let the demo market run N days under the reference account's bids in force, then show what the
ad platforms and GA4 report (read through the SDKs' own response types, as the pipeline will), and how the bids in
force compare with the clairvoyant oracle and the per-auction LP bound on the same days.

    python -m rl.world.demo [--world FILE] [--seed N] [--days 30] [--state-dir data/demo/world]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import numpy as np
import polars as pl
from google.analytics.data_v1beta.types import DateRange, Dimension, Metric, RunReportRequest
from tqdm import tqdm

from rl.market.params import MarketParamsError
from rl.policies.oracle import clairvoyant_oracle, day_score, lp_bound
from rl.world.demo_plot import plot_demo
from rl.world.ga4_api import run_report_to_frame
from rl.world.paths import DEFAULT_WORLD_FILE
from rl.world.world import GA4_PROPERTY_ID, PLATFORM_CUSTOMER_IDS, DemoWorld, WorldError

DAILY_QUERY = (
    "SELECT campaign.id, segments.date, metrics.cost_micros, metrics.conversions FROM campaign "
    "WHERE segments.date BETWEEN '{start}' AND '{end}'"
)
CAMPAIGN_QUERY = (
    "SELECT campaign.id, campaign.name, metrics.impressions, metrics.clicks, metrics.cost_micros, "
    "metrics.conversions FROM campaign WHERE segments.date BETWEEN '{start}' AND '{end}'"
)


def campaign_rows(world: DemoWorld, start: dt.date, end: dt.date) -> list[dict]:
    """Per-campaign totals from every platform's GAQL report (conversions by click date, as reported so far)."""
    rows = []
    for platform, customer_id in PLATFORM_CUSTOMER_IDS.items():
        query = CAMPAIGN_QUERY.format(start=start.isoformat(), end=end.isoformat())
        for batch in world.search_stream(customer_id, query):
            for r in batch.results:
                rows.append(
                    {
                        "platform": platform,
                        "id": r.campaign.id,
                        "name": r.campaign.name,
                        "impressions": r.metrics.impressions,
                        "clicks": r.metrics.clicks,
                        "cost": r.metrics.cost_micros / 1e6,
                        "conversions": r.metrics.conversions,
                    }
                )
    return rows


def daily_platform_frame(world: DemoWorld, start: dt.date, end: dt.date) -> pl.DataFrame:
    """Spend and reported conversions per date and platform, from every platform's GAQL report."""
    records = []
    for platform, customer_id in PLATFORM_CUSTOMER_IDS.items():
        for batch in world.search_stream(customer_id, DAILY_QUERY.format(start=start, end=end)):
            for r in batch.results:
                records.append(
                    (
                        dt.date.fromisoformat(r.segments.date),
                        platform,
                        r.metrics.cost_micros / 1e6,
                        r.metrics.conversions,
                    )
                )
    frame = pl.DataFrame(records, schema=["date", "platform", "spend", "conversions"], orient="row")
    return frame.group_by("date", "platform").sum()


def print_campaign_table(rows: list[dict], days: int, out=None) -> None:
    out = out or sys.stdout
    head = (
        f"{'campaign':<40} {'platform':<13} {'spend/day':>9} {'impr':>9} {'clicks':>7} {'CTR':>6} {'CPC':>6} "
        f"{'CPM':>6} {'conv':>6} {'CPA':>7}"
    )
    print(head, file=out)
    print("-" * len(head), file=out)
    tot = {"impressions": 0, "clicks": 0, "cost": 0.0, "conversions": 0.0}
    for r in sorted(rows, key=lambda r: r["id"]):
        for k in tot:
            tot[k] += r[k]
        print(_fmt(r["name"], r["platform"], r, days), file=out)
    print("-" * len(head), file=out)
    print(_fmt("Total", "", tot, days), file=out)


def _fmt(name: str, platform: str, r: dict, days: int) -> str:
    ctr = r["clicks"] / r["impressions"] if r["impressions"] else 0.0
    cpc = r["cost"] / r["clicks"] if r["clicks"] else 0.0
    cpm = 1000 * r["cost"] / r["impressions"] if r["impressions"] else 0.0
    cpa = f"{r['cost'] / r['conversions']:7.2f}" if r["conversions"] else f"{'—':>7}"
    return (
        f"{name[:40]:<40} {platform:<13} {r['cost'] / days:9.2f} {r['impressions']:9d} {r['clicks']:7d} "
        f"{ctr:6.2%} {cpc:6.2f} {cpm:6.2f} {r['conversions']:6.1f} {cpa}"
    )


def ga4_channel_report(world: DemoWorld, start: dt.date, end: dt.date):
    request = RunReportRequest(
        property=f"properties/{GA4_PROPERTY_ID}",
        dimensions=[Dimension(name="sessionDefaultChannelGroup")],
        metrics=[Metric(name="sessions"), Metric(name="keyEvents"), Metric(name="totalRevenue")],
        date_ranges=[DateRange(start_date=start.isoformat(), end_date=end.isoformat())],
    )
    return run_report_to_frame(world.run_report(request))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", default=str(DEFAULT_WORLD_FILE), help="world YAML (default: the reference account)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--state-dir", default=None, help="default: data/demo/world-<seed>")
    ap.add_argument("--no-oracle", action="store_true", help="skip the oracle comparison (about 1 s per day)")
    args = ap.parse_args(argv)
    if args.days < 1:
        ap.error(f"--days must be at least 1, got {args.days}")
    state_dir = Path(args.state_dir or f"data/demo/world-{args.seed}")
    try:
        world = DemoWorld.open(state_dir, args.world, args.seed)
    except (MarketParamsError, WorldError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    start = world.params.history_start
    end = start + dt.timedelta(days=args.days - 1)
    world.advance_to(end + dt.timedelta(days=1), progress=True)
    print(
        f"\nGAELP demo market: world {world.params.name!r} ({args.world}, params {world.params.params_hash()}), "
        f"seed {args.seed}"
    )
    print(f"{args.days} days, {start} .. {end}, under the budgets and bids in force; state in {state_dir}")
    print(
        "Conversions are by click date as the ad platforms report them on "
        f"{world.today}: the last days are still maturing.\n"
    )
    print_campaign_table(campaign_rows(world, start, end), args.days)
    print("\nGA4 (by session date for sessions, conversion date for key events):")
    print(ga4_channel_report(world, start, end))
    scores = None if args.no_oracle else oracle_comparison(world, start, end + dt.timedelta(days=1))
    path = plot_demo(daily_platform_frame(world, start, end), scores, state_dir / "demo.png")
    print(f"\nPlot of the days: {path}")
    return 0


def oracle_comparison(world: DemoWorld, start: dt.date, until: dt.date) -> dict[str, list[tuple[float, float, float]]]:
    """Replay the days in memory and score the bids in force against the two hindsight yardsticks."""
    cm = world.market
    target = cm.params.target_cpa
    scores = {"bids in force": [], "clairvoyant oracle": [], "LP bound": []}
    bar = tqdm(total=(until - start).days, desc="oracle per day", unit="day")

    def on_day(draws, state, result):
        conv, spend = float(result.conversions.sum()), float(result.cost.sum())
        scores["bids in force"].append((day_score(conv, spend, target), conv, spend))
        o = clairvoyant_oracle(cm, draws, state)
        scores["clairvoyant oracle"].append((o.score, o.conversions, o.spend))
        lp = lp_bound(cm, draws, state)
        scores["LP bound"].append((lp.score, lp.conversions, lp.spend))
        bar.update()

    world.replay(on_day, start=start, until=until)
    bar.close()
    print(
        f"\nDaily score = conversions × min(1, (target CPA {target:.0f} / CPA)²), eventual conversions of each "
        "day's clicks, mean per day:"
    )
    for name, vals in scores.items():
        a = np.array(vals)
        cpa = a[:, 2].sum() / a[:, 1].sum() if a[:, 1].sum() else float("nan")
        print(
            f"  {name:<20} score {a[:, 0].mean():6.2f}   conversions {a[:, 1].mean():6.2f}   "
            f"spend {a[:, 2].mean():7.2f}   CPA {cpa:7.2f}"
        )
    return scores


if __name__ == "__main__":
    raise SystemExit(main())
