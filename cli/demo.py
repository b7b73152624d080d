"""`gaelp demo` (`make demo`): the closed loop on the demo market.

Quiet by default: a few lines per stage and one per loop day with an ETA; Dagster's and dbt's full logs go to a
file under data/logs/ (the summary prints its path). `--verbose` (`make demo VERBOSE=1`) streams them instead.

1. Backfill the history: the daily data job (ingestion, dbt warehouse with its tests, published copy, discovery) in
   one run over the demo world's history up to `--loop-days` days before yesterday (`--days` limits how many of
   those days are ingested; the world itself always simulates from its history start).
2. Train: the weekly retrain job on the history (calibration → training → evaluation with the promotion gate).
   The loop's plans come from the promoted model when the gate promotes it, otherwise from the fallback baseline
   (the summary says why). `--no-train` skips it (the loop then uses whatever the registry holds).
3. Run the loop: for each of the last `--loop-days` daily partitions (up to yesterday), one run of the lean daily
   job — ingest the day's reports (the world simulates the day as it is asked about it), rebuild the marts the plan
   needs, plan tomorrow (`daily_bid_plan`, blocking guardrail checks), push the plan to the demo world
   (`bid_push`, audited) — then the next day, under the pushed settings.
4. Compare, on the same world file and seed, with copies of the world (and warehouse) taken before the loop:
   the static operator (the reference settings left in force: nothing pushed) and the best baseline run through
   the same loop (not counted when the policy itself is that baseline, i.e. when there is no promoted model). The
   baseline's run goes in a background process during training (its log next to the demo's, `-baseline.log`).
   Conversions are the eventual conversions of each day's clicks, read from the world's hidden facts — evaluation
   only; the pipeline never reads them.

    DAGSTER_HOME=data/dagster_home gaelp demo [--loop-days 28] [--days N] [--baseline NAME]
        [--no-train] [--no-compare] [--fresh] [--verbose]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb

from assets.partitions import DAILY_PARTITIONS
from cli.closed_loop import closed_loop, train
from cli.comparison import DEFAULT_BASELINE, start_comparison
from cli.console import Console
from orchestration.accounts import DemoAccountsError, connect_demo_accounts
from orchestration.environment import (
    Environment,
    current_environment,
    data_dir,
    published_warehouse_path,
    world_file,
    world_seed,
)
from orchestration.resources import warehouse_path, world_dir
from rl.campaign_registry import ACCOUNT_SEEDS_VAR
from rl.world.world import DemoWorld

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


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
    # deferred: the definitions need the dbt manifest (make dbt-manifest), which `gaelp accounts` does not
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
            "ad_modifiers",
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


def world_clock() -> dt.date | None:
    if not (Path(world_dir()) / "world.json").exists():
        return None
    return DemoWorld.open(world_dir(), world_file(), world_seed()).today


def fresh_start() -> None:
    """Remove the demo's state under the data directory (world, warehouse, published copy, raw responses)."""
    root = data_dir()
    for path in (Path(world_dir()), published_warehouse_path().parent, root / "raw", root / "compare"):
        if path.exists():
            shutil.rmtree(path)
    for name in ("warehouse.duckdb", "warehouse.duckdb.wal"):
        (root / name).unlink(missing_ok=True)


def prepare(days: int | None, loop_days: int, fresh: bool, echo=print) -> tuple[list[str], list[str]] | int:
    """Check the environment and the world's clock, and connect the world's accounts (`connect_demo_accounts`);
    returns (history keys, loop keys) or an exit code."""
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
    try:
        seeds = connect_demo_accounts()
    except DemoAccountsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if seeds is not None:
        echo(
            f"accounts: the world's campaigns differ from the reference account's; their registry and GA4 mapping are "
            f"in {seeds} (`make ui` reads them there; elsewhere export {ACCOUNT_SEEDS_VAR}={seeds})"
        )
    return history, loop


def add_commands(groups: argparse._SubParsersAction) -> None:
    demo = groups.add_parser(
        "demo",
        help="backfill the demo market, train, run the closed loop",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--days", type=int, default=None, help="history days to ingest before the loop (default: all)")
    demo.add_argument("--loop-days", type=int, default=28, help="simulated days of the closed loop (default 28)")
    demo.add_argument("--baseline", default=None, help=f"best baseline (default: registry's, else {DEFAULT_BASELINE})")
    demo.add_argument("--no-compare", action="store_true", help="skip the comparison runs")
    demo.add_argument("--no-train", action="store_true", help="skip training (the loop uses the registry as it is)")
    demo.add_argument("--fresh", action="store_true", help="start from a new demo world and an empty warehouse")
    demo.add_argument("--verbose", action="store_true", help="stream Dagster's and dbt's logs instead of a file")
    demo.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.days is not None and args.days < 1:
        print(f"error: --days must be at least 1, got {args.days}", file=sys.stderr)
        return 2
    if args.loop_days < 0:
        print(f"error: --loop-days must be >= 0, got {args.loop_days}", file=sys.stderr)
        return 2
    prepared = prepare(args.days, args.loop_days, args.fresh)
    if isinstance(prepared, int):
        return prepared
    console = Console(data_dir() / "logs", "demo", verbose=args.verbose)
    try:
        with console.quiet():
            return _demo(args, *prepared, console)
    finally:
        console.close()


def _demo(args: argparse.Namespace, history: list[str], loop: list[str], console: Console) -> int:
    say = console.say
    first, last = history[0], history[-1]
    stages = 1 + bool(loop and not args.no_train) + bool(loop)
    say(
        f"GAELP demo — full logs: {console.log_path}",
        f"1/{stages} Backfilling {first} .. {last} ({len(history)} days) from the demo market in one run",
    )
    started = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        result = run_job("daily_data_job", first, last, instance)
        if not result.success:
            for event in result.all_events:
                if event.is_step_failure:
                    console.error(f"error in {event.step_key}: {event.step_failure_data.error.message}")
            console.error(f"the backfill failed (run {result.run_id}); full logs: {console.log_path}")
            return 1
        say(f"    done in {time.perf_counter() - started:.0f} s (run {result.run_id[:8]})")
        published = published_warehouse_path()
        console.detail(summary(str(published), first, last))
        figures, comparison = None, None
        try:
            if loop and not args.no_train:
                say(f"2/{stages} Training")
                if not args.no_compare:  # on the core training leaves idle (cli.comparison.Comparison)
                    log = console.log_path.with_name(console.log_path.stem + "-baseline.log")
                    comparison = start_comparison(loop, args.baseline, log, echo=lambda line: say("    " + line))
                train(instance, echo=lambda line: say("    " + line))
            if loop:
                span = f"{len(loop)} days {loop[0]} .. {loop[-1]}"
                say(f"{stages}/{stages} Closed loop: {span} (ingest → marts → plan → push → report, each day)")
                figures = closed_loop(
                    loop,
                    instance,
                    args.baseline,
                    not args.no_compare,
                    echo=say,
                    detail=console.detail,
                    comparison=comparison,
                )
        finally:
            if comparison is not None:
                comparison.cancel()  # training failed or was interrupted: the background run stops too
    if figures:
        say(
            f"\nLoop: {figures['days_ok']}/{figures['days']} days ok, {figures['wall_s_per_day']} s per day; policy "
            f"{', '.join(figures['policy'])}"
            + (
                ""
                if figures["policy_source"] == "promoted"
                else f" — the fallback baseline, because {'; '.join(figures['fallback_reasons']) or 'see above'}"
            )
        )
    say(
        "",
        f"DuckDB warehouse: {warehouse_path()} (the pipeline's; one writer; tables bid_plan, bid_push_audit)",
        f"Analysts' copy:   {published} (read-only; republished by every run that rebuilds the marts)",
        f"Raw responses:    {data_dir() / 'raw'}",
        f"Patterns found:   {data_dir() / 'discovery' / 'discovered_patterns.json'} (+ .png)",
    )
    if loop:
        from assets.reporting import REPORT_FILE, report_dir  # deferred: assets load the dbt manifest (see run_job)

        report = report_dir(loop[-1]) / REPORT_FILE
        say(f"Daily report:     {report}" + ("" if report.exists() else " (not written: that day's run failed)"))
    say(
        "Dagster UI:       make ui, then open http://127.0.0.1:3000 (the runs and their materializations are there)",
        f"Full logs:        {console.log_path}",
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m cli.demo ...` = `gaelp demo ...`."""
    ap = argparse.ArgumentParser(prog="gaelp")
    add_commands(ap.add_subparsers(dest="group", required=True))
    return run(ap.parse_args(["demo", *(argv if argv is not None else sys.argv[1:])]))


if __name__ == "__main__":
    raise SystemExit(main())
