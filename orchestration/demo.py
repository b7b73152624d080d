"""`make demo`: run the daily data job on the demo market for the most recent days (one run, one backfill):
ingestion into DuckDB, the dbt warehouse with its tests, the published read-only copy; then say what landed and how
to look at it.

    DAGSTER_HOME=data/dagster_home python -m orchestration.demo [--days 90]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import dagster as dg
import duckdb

from assets.partitions import DAILY_PARTITIONS
from orchestration.environment import Environment, current_environment, data_dir

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def partition_range(days: int) -> tuple[str, str]:
    """The last `days` daily partitions (all of them if there are fewer)."""
    keys = DAILY_PARTITIONS.get_partition_keys()
    if not keys:
        raise SystemExit("error: no daily partitions yet (the history starts today)")
    chosen = keys[-days:]
    return chosen[0], chosen[-1]


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
        for table in ("ga4_sessions", "ga4_conversions", "ad_performance", "ad_conversion_lag", "ad_settings"):
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=90, help="how many recent days to backfill (default 90)")
    args = ap.parse_args(argv)
    if args.days < 1:
        ap.error(f"--days must be at least 1, got {args.days}")
    if current_environment() is not Environment.DEMO:
        print("error: the demo runs in the demo environment only (unset GAELP_ENV)", file=sys.stderr)
        return 2
    if "DAGSTER_HOME" not in os.environ:
        print("error: set DAGSTER_HOME (make demo sets it to data/dagster_home)", file=sys.stderr)
        return 2
    first, last = partition_range(args.days)
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
    print(f"\nDuckDB warehouse: {warehouse_path()} (the pipeline's; one writer)")
    print(f"Analysts' copy:   {published} (read-only; refreshed after each warehouse run)")
    print(f"Raw responses:    {data_dir() / 'raw'}")
    print(f"Patterns found:   {data_dir() / 'discovery' / 'discovered_patterns.json'} (+ .png)")
    print("Dagster UI:       make ui, then open http://127.0.0.1:3000 (the run and its materializations are there)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
