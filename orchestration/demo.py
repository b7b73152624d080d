"""`make demo`: the closed loop on the demo market.

1. Backfill the history: the daily data job (ingestion, dbt warehouse with its tests, published copy, discovery) in
   one run over the demo world's history up to `--loop-days` days before yesterday (`--days` limits how many of
   those days are ingested; the world itself always simulates from its history start).
2. Run the loop: for each of the last `--loop-days` daily partitions (up to yesterday), one run of the lean daily
   job — ingest the day's reports (the world simulates the day as it is asked about it), rebuild the marts the plan
   needs, plan tomorrow (`daily_bid_plan`, blocking guardrail checks), push the plan to the demo world
   (`bid_push`, audited) — then the next day, under the pushed settings.
3. Compare, on the same world file and seed, with copies of the world (and warehouse) taken before the loop:
   the static operator (the reference settings left in force: nothing pushed) and the best baseline run through
   the same loop (skipped when the policy itself is that baseline, i.e. when there is no promoted model).
   Conversions are the eventual conversions of each day's clicks, read from the world's hidden facts — evaluation
   only; the pipeline never reads them.

    DAGSTER_HOME=data/dagster_home python -m orchestration.demo [--loop-days 28] [--days N] [--baseline NAME]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import duckdb

from assets.partitions import DAILY_PARTITIONS
from orchestration.environment import DATA_DIR_VAR, Environment, current_environment, data_dir

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
DEFAULT_BASELINE = "online_lp"  # the best baseline in the simulator (benchmarks.policy) when the registry names none


def partition_range(days: int) -> tuple[str, str]:
    """The last `days` daily partitions (all of them if there are fewer)."""
    keys = DAILY_PARTITIONS.get_partition_keys()
    if not keys:
        raise SystemExit("error: no daily partitions yet (the history starts today)")
    chosen = keys[-days:]
    return chosen[0], chosen[-1]


def split_partitions(days: int | None, loop_days: int) -> tuple[list[str], list[str]]:
    """(history keys to backfill, loop keys): the loop is the last `loop_days` partitions; the history the
    `days` partitions before it (all of them when `days` is None)."""
    keys = DAILY_PARTITIONS.get_partition_keys()
    if len(keys) <= loop_days:
        raise SystemExit(f"error: {len(keys)} daily partitions, not enough for a {loop_days}-day loop after a history")
    history, loop = keys[:-loop_days] if loop_days else keys, keys[-loop_days:] if loop_days else []
    return (history if days is None else history[-days:]), loop


def run_job(name: str, first: str, last: str, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    from orchestration.definitions import defs

    job = defs.resolve_job_def(name)
    quiet = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}  # progress, not every engine event
    return job.execute_in_process(
        run_config=quiet, instance=instance, tags={RANGE_START: first, RANGE_END: last}, raise_on_error=False
    )


def summary(database: str, first: str, last: str) -> str:
    """What the warehouse now holds for the window, read back from the published copy."""
    con = duckdb.connect(database, read_only=True)
    try:
        lines = []
        for table in (
            "ga4_sessions",
            "ga4_conversions",
            "ad_performance",
            "ad_conversion_lag",
            "ad_impression_share",
            "ad_settings",
        ):
            (n,) = con.execute(f"SELECT count(*) FROM raw.{table} WHERE date BETWEEN ? AND ?", [first, last]).fetchone()
            lines.append(f"  raw.{table:<18} {n:>9,} rows")
        lines.append(
            "\n  platform         spend/day   clicks/day   conversions   CPA  (conversions by click date, as reported)"
        )
        for platform, spend, clicks, conv, cpa in con.execute(
            """
            SELECT platform, sum(spend) / count(DISTINCT date), sum(clicks) / count(DISTINCT date),
                   sum(conversions), sum(spend) / nullif(sum(conversions), 0)
            FROM fct_campaign_daily WHERE date BETWEEN ? AND ? GROUP BY platform ORDER BY platform
            """,
            [first, last],
        ).fetchall():
            lines.append(f"  {platform:<15} {spend:10.2f} {clicks:12.1f} {conv:13.1f} {cpa or 0:7.2f}")
        return "\n".join(lines)
    finally:
        con.close()


# -- the loop -------------------------------------------------------------------------------------------------------


@dataclass
class LoopDay:
    partition: str
    wall_s: float
    policy_version: str = ""
    policy_source: str = ""
    planned_budget: float = 0.0
    ok: bool = True
    error: str = ""


@dataclass
class Outcome:
    """What a run bought on the loop days (from the world's facts: spend as reported, eventual conversions)."""

    name: str
    spend: dict[str, float] = field(default_factory=dict)
    conversions: dict[str, float] = field(default_factory=dict)

    @property
    def total_spend(self) -> float:
        return sum(self.spend.values())

    @property
    def total_conversions(self) -> float:
        return sum(self.conversions.values())

    @property
    def cpa(self) -> float:
        return self.total_spend / self.total_conversions if self.total_conversions else float("inf")

    @property
    def max_daily_spend(self) -> float:
        return max(self.spend.values(), default=0.0)


def loop_assets() -> tuple[list, dg.AssetSelection]:
    """bidding_loop_job's assets and selection (with the day's report)."""
    from assets.bidding import BIDDING_ASSETS
    from assets.ingestion import INGESTION_ASSETS
    from assets.reporting import REPORTING_ASSETS
    from assets.warehouse import WAREHOUSE_ASSETS

    selection = dg.AssetSelection.assets("fct_campaign_daily", "dim_campaign").upstream() | dg.AssetSelection.groups(
        "bidding", "reporting"
    )
    return [*INGESTION_ASSETS, *WAREHOUSE_ASSETS, *BIDDING_ASSETS, *REPORTING_ASSETS], selection


def loop_resources(data: Path, world_dir: Path, world_file: str, seed: int) -> dict:
    from dagster_duckdb import DuckDBResource

    from orchestration.resources import dbt_resource, demo_bid_platforms
    from orchestration.resources.ads import DemoAdsReportingResource
    from orchestration.resources.ga4 import DemoGA4Resource

    world = {"world_dir": str(world_dir), "world_file": world_file, "seed": seed}
    return {
        "ga4": DemoGA4Resource(**world),
        "ads": DemoAdsReportingResource(**world),
        **demo_bid_platforms(**world),
        "duckdb": DuckDBResource(database=str(data / "warehouse.duckdb")),
        "dbt": dbt_resource(),
    }


def run_loop(
    keys: list[str],
    data: Path,
    world_dir: Path,
    world_file: str,
    seed: int,
    instance: dg.DagsterInstance,
    plan_config: dict,
    on_day: Callable[[LoopDay], None] | None = None,
) -> list[LoopDay]:
    """One lean daily run per partition (ingest → marts → plan → push) against the world in `world_dir` and the
    warehouse under `data` (GAELP_DATA_DIR points there while the loop runs: dbt's profile reads it)."""
    assets, selection = loop_assets()
    resources = loop_resources(data, world_dir, world_file, seed)
    previous = os.environ.get(DATA_DIR_VAR)
    os.environ[DATA_DIR_VAR] = str(data)
    days = []
    try:
        for key in keys:
            started = time.perf_counter()
            result = dg.materialize(
                assets,
                selection=selection,
                partition_key=key,
                resources=resources,
                instance=instance,
                run_config={"ops": {"daily_bid_plan": {"config": plan_config}}},
                raise_on_error=False,
            )
            day = LoopDay(key, time.perf_counter() - started, ok=result.success)
            mats = result.asset_materializations_for_node("daily_bid_plan")
            if mats:
                meta = mats[0].metadata
                day.policy_version = meta["policy_version"].value
                day.policy_source = meta["policy_source"].value
                day.planned_budget = meta["total_budget"].value
            if not result.success:
                day.error = (
                    "; ".join(
                        f"{e.step_key}: {e.step_failure_data.error.message.strip()[:300]}"
                        for e in result.all_events
                        if e.is_step_failure
                    )
                    or "a blocking check failed (the push did not run)"
                )
            days.append(day)
            if on_day:
                on_day(day)
    finally:
        if previous is None:
            os.environ.pop(DATA_DIR_VAR, None)
        else:
            os.environ[DATA_DIR_VAR] = previous
    return days


def outcome(name: str, world_dir: Path, world_file: str, seed: int, keys: list[str]) -> Outcome:
    """Spend and eventual conversions per loop day from the world's facts (hidden truth: evaluation only). The
    world is advanced to the day after the loop first if it is behind (the static operator's copy)."""
    import polars as pl

    from rl.world.world import DemoWorld

    world = DemoWorld.open(world_dir, world_file, seed)
    world.advance_to(dt.date.fromisoformat(keys[-1]) + dt.timedelta(days=1))
    frames = world.frames()
    first, last = dt.date.fromisoformat(keys[0]), dt.date.fromisoformat(keys[-1])
    spend = (
        frames["ads"]
        .filter(pl.col("date").is_between(first, last))
        .group_by("date")
        .agg((pl.col("cost_micros").sum() / 1e6).alias("spend"))
    )
    conv = (
        frames["conversions"]
        .filter(pl.col("click_date").is_between(first, last))
        .group_by("click_date")
        .agg(pl.len().alias("conversions"))
    )
    out = Outcome(name, {k: 0.0 for k in keys}, {k: 0.0 for k in keys})
    for d, s in spend.iter_rows():
        out.spend[d.isoformat()] = float(s)
    for d, c in conv.iter_rows():
        out.conversions[d.isoformat()] = float(c)
    return out


def copy_state(data: Path, world_dir: Path, target: Path) -> tuple[Path, Path]:
    """Copy the warehouse and the world state to `target` (data/, world/) for a comparison run."""
    if target.exists():
        shutil.rmtree(target)
    (target / "data").mkdir(parents=True)
    shutil.copyfile(data / "warehouse.duckdb", target / "data" / "warehouse.duckdb")
    shutil.copytree(world_dir, target / "world")
    return target / "data", target / "world"


def comparison_baseline(explicit: str | None) -> str:
    """The best baseline: the one asked for, else the policy registry's, else DEFAULT_BASELINE."""
    if explicit:
        return explicit
    try:
        from rl.bidding.policy_choice import promoted_policy

        con = duckdb.connect(str(data_dir() / "warehouse.duckdb"), read_only=True)
        try:
            best = promoted_policy(con, str(data_dir() / "models"))[3]
        finally:
            con.close()
    except Exception:
        best = None
    return best or DEFAULT_BASELINE


def day_table(keys: list[str], days: list[LoopDay], runs: list[Outcome]) -> str:
    head = f"  {'day':<10} {'policy':<26} {'plan $':>7} {'wall s':>6}" + "".join(
        f" {r.name[:14] + ' $':>16} {'conv':>5}" for r in runs
    )
    lines = [head]
    by_key = {d.partition: d for d in days}
    for k in keys:
        d = by_key.get(k)
        label = f"{d.policy_version} ({d.policy_source})" if d and d.ok else ("FAILED" if d else "")
        lines.append(
            f"  {k:<10} {label[:26]:<26} {d.planned_budget if d else 0:7.2f} {d.wall_s if d else 0:6.1f}"
            + "".join(f" {r.spend[k]:16.2f} {r.conversions[k]:5.0f}" for r in runs)
        )
    return "\n".join(lines)


def closed_loop(
    loop_keys: list[str],
    instance: dg.DagsterInstance,
    baseline: str | None = None,
    compare: bool = True,
    echo: Callable[[str], None] = print,
) -> dict:
    """Run the loop on the demo world (data_dir()), then the comparison runs on copies. Returns the figures."""
    from orchestration.environment import world_file, world_seed
    from orchestration.resources import world_dir

    data, wdir, wfile, seed = data_dir(), Path(world_dir()), str(world_file()), world_seed()
    best = comparison_baseline(baseline)
    copies = {}
    if compare:
        copies["static"] = copy_state(data, wdir, data / "compare" / "static_operator")
        copies["baseline"] = copy_state(data, wdir, data / "compare" / f"baseline_{best}")
    echo(f"\nClosed loop: {len(loop_keys)} days {loop_keys[0]} .. {loop_keys[-1]} (plan → push → next day)")
    days = run_loop(
        loop_keys,
        data,
        wdir,
        wfile,
        seed,
        instance,
        {"fallback_baseline": best},
        on_day=lambda d: echo(
            f"  {d.partition}: {'ok' if d.ok else 'FAILED'} in {d.wall_s:5.1f} s — {d.policy_version} "
            f"({d.policy_source}), planned {d.planned_budget:.2f}" + (f" — {d.error}" if d.error else "")
        ),
    )
    policy_is_baseline = all(d.policy_version == f"baseline:{best}" for d in days if d.ok)
    runs = [outcome("policy", wdir, wfile, seed, loop_keys)]
    if compare:
        runs.append(outcome("static operator", copies["static"][1], wfile, seed, loop_keys))
        if policy_is_baseline:
            echo(f"(no promoted model: the policy run IS the best baseline, {best}; not run twice)")
        else:
            echo(f"\nBaseline run ({best}) on a copy of the world")
            run_loop(loop_keys, *copies["baseline"], wfile, seed, dg.DagsterInstance.ephemeral(), {"policy": best})
            runs.append(outcome(f"baseline {best}", copies["baseline"][1], wfile, seed, loop_keys))
    echo("\n" + day_table(loop_keys, days, runs))
    echo("\n  run                     spend   conversions      CPA   max spend/day")
    for r in runs:
        echo(f"  {r.name:<20} {r.total_spend:9.2f} {r.total_conversions:13.0f} {r.cpa:8.2f} {r.max_daily_spend:15.2f}")
    echo(
        "  (conversions: eventual conversions of each day's clicks, from the demo world's hidden facts — "
        "evaluation only)"
    )
    static = runs[1] if compare else None
    return {
        "days": len(loop_keys),
        "days_ok": sum(d.ok for d in days),
        "policy": sorted({d.policy_version for d in days if d.ok}),
        "policy_is_fallback_baseline": policy_is_baseline,
        "best_baseline": best,
        "policy_conversions": runs[0].total_conversions,
        "policy_spend": round(runs[0].total_spend, 2),
        "policy_cpa": round(runs[0].cpa, 2),
        "baseline_conversions": static.total_conversions if static else None,
        "baseline_spend": round(static.total_spend, 2) if static else None,
        "baseline_cpa": round(static.cpa, 2) if static else None,
        "max_daily_spend": round(runs[0].max_daily_spend, 2),
        "wall_s_per_day": round(sum(d.wall_s for d in days) / max(len(days), 1), 2),
    }


def world_clock() -> dt.date | None:
    from orchestration.environment import world_file, world_seed
    from orchestration.resources import world_dir

    if not (Path(world_dir()) / "world.json").exists():
        return None
    from rl.world.world import DemoWorld

    return DemoWorld.open(world_dir(), world_file(), world_seed()).today


def fresh_start() -> None:
    """Remove the demo's state under the data directory (world, warehouse, published copy, raw responses)."""
    from orchestration.resources import world_dir

    root = data_dir()
    for path in (Path(world_dir()), root / "published", root / "raw", root / "compare"):
        if path.exists():
            shutil.rmtree(path)
    for name in ("warehouse.duckdb", "warehouse.duckdb.wal"):
        (root / name).unlink(missing_ok=True)


def prepare(days: int | None, loop_days: int, fresh: bool, echo=print) -> tuple[list[str], list[str]] | int:
    """Check the environment and the world's clock; returns (history keys, loop keys) or an exit code."""
    if current_environment() is not Environment.DEMO:
        print("error: the demo runs in the demo environment only (unset GAELP_ENV)", file=sys.stderr)
        return 2
    if "DAGSTER_HOME" not in os.environ:
        print("error: set DAGSTER_HOME (make demo sets it to data/dagster_home)", file=sys.stderr)
        return 2
    history, loop = split_partitions(days, loop_days)
    if fresh:
        fresh_start()
    clock = world_clock()
    if loop and clock is not None and clock > dt.date.fromisoformat(loop[0]):
        print(
            f"error: the demo world in {data_dir()} has already simulated up to {clock - dt.timedelta(days=1)}, past "
            f"the loop's first day {loop[0]}: its days cannot be decided again. Run with --fresh (deletes the demo "
            "world and warehouse under the data directory) or point GAELP_DATA_DIR elsewhere.",
            file=sys.stderr,
        )
        return 2
    return history, loop


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=None, help="history days to ingest before the loop (default: all)")
    ap.add_argument("--loop-days", type=int, default=28, help="simulated days of the closed loop (default 28)")
    ap.add_argument("--baseline", default=None, help=f"best baseline (default: registry's, else {DEFAULT_BASELINE})")
    ap.add_argument("--no-compare", action="store_true", help="skip the comparison runs")
    ap.add_argument("--fresh", action="store_true", help="start from a new demo world and an empty warehouse")
    args = ap.parse_args(argv)
    if args.days is not None and args.days < 1:
        ap.error(f"--days must be at least 1, got {args.days}")
    if args.loop_days < 0:
        ap.error(f"--loop-days must be >= 0, got {args.loop_days}")
    prepared = prepare(args.days, args.loop_days, args.fresh)
    if isinstance(prepared, int):
        return prepared
    history, loop = prepared
    first, last = history[0], history[-1]
    print(f"Backfilling {first} .. {last} from the demo market in one run (the world simulates what it has not yet)")
    started = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        result = run_job("daily_data_job", first, last, instance)
        if not result.success:
            for event in result.all_events:
                if event.is_step_failure:
                    print(f"error in {event.step_key}: {event.step_failure_data.error.message}", file=sys.stderr)
            return 1
        from orchestration.resources import warehouse_path

        print(f"Done in {time.perf_counter() - started:.0f} s (run {result.run_id}).\n")
        published = data_dir() / "published" / "warehouse.duckdb"
        print(summary(str(published), first, last))
        figures = None
        if loop:
            figures = closed_loop(loop, instance, args.baseline, not args.no_compare)
    if figures:
        print(
            f"\nLoop: {figures['days_ok']}/{figures['days']} days ok, {figures['wall_s_per_day']} s per day; policy "
            f"{', '.join(figures['policy'])}"
            + (" (no promoted model: the fallback baseline)" if figures["policy_is_fallback_baseline"] else "")
        )
    print(f"\nDuckDB warehouse: {warehouse_path()} (the pipeline's; one writer; tables bid_plan, bid_push_audit)")
    print(f"Analysts' copy:   {published} (read-only; refreshed after each warehouse run)")
    print(f"Raw responses:    {data_dir() / 'raw'}")
    print(f"Patterns found:   {data_dir() / 'discovery' / 'discovered_patterns.json'} (+ .png)")
    if loop:
        from assets.reporting import REPORT_FILE, report_dir

        report = report_dir(loop[-1]) / REPORT_FILE
        print(f"Daily report:     {report}" + ("" if report.exists() else " (not written: that day's run failed)"))
    print("Dagster UI:       make ui, then open http://127.0.0.1:3000 (the runs and their materializations are there)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
