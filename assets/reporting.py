"""Reporting: the daily performance report (`daily_performance_report`) — yesterday and the trailing 28 days,
spend, conversions and CPA vs target by platform and campaign, pacing, and the plan pushed and why — as one
self-contained HTML file and its PNG charts under <data dir>/reports/daily/<partition>/, linked from metadata.

Thin: the figures, charts and page are `rl.reporting`'s; this reads the warehouse and writes the files.
"""

import base64
import datetime as dt
import os
from pathlib import Path

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from assets.bidding import ONE_PLAN_PER_RUN, PLAN_TABLE, bid_push, daily_bid_plan
from assets.partitions import DAILY_PARTITIONS
from orchestration.environment import data_dir
from orchestration.resources.account import AccountResource
from rl.bidding.audit import TABLE as AUDIT_TABLE
from rl.reporting.daily import AUDIT_COLUMNS, CAMPAIGN_COLUMNS, PLAN_COLUMNS, WINDOW_DAYS
from rl.reporting.page import summary_markdown
from rl.reporting.report import build_report

REPORT_FILE = "report.html"
METADATA_CHART = "spend_pacing"  # the one chart shown in the UI; the others are in the report


class ReportConfig(dg.Config):
    """The trailing window's length (the report judges CPA against the `account` resource's target)."""

    window_days: int = WINDOW_DAYS


def report_dir(partition: str) -> Path:
    """Where a day's report lives: <data dir>/reports/daily/<partition>/."""
    return data_dir() / "reports" / "daily" / partition


def _table_exists(conn, name: str) -> bool:
    sql = "SELECT count(*) FROM information_schema.tables WHERE table_name = ?"
    return conn.sql(sql, params=[name]).fetchall()[0][0] > 0


def _read(conn, partition: str, day: dt.date, window_days: int) -> dict[str, pl.DataFrame | None]:
    """The report's inputs; the plan and the audit are None when their tables do not exist yet."""
    for mart in ("fct_campaign_daily", "dim_campaign"):
        if not _table_exists(conn, mart):
            raise dg.Failure(f"daily_performance_report: the mart {mart} does not exist; build the warehouse first")
    first = day - dt.timedelta(days=window_days - 1)
    marts = conn.sql(
        "SELECT date, platform, campaign_id, campaign_name, CAST(spend AS DOUBLE) AS spend, "
        "CAST(clicks AS DOUBLE) AS clicks, CAST(conversions AS DOUBLE) AS conversions, "
        "CAST(key_events AS DOUBLE) AS key_events, CAST(daily_budget AS DOUBLE) AS daily_budget "
        "FROM fct_campaign_daily WHERE date BETWEEN ? AND ?",
        params=[first, day],
    ).pl()
    campaigns = conn.sql(f"SELECT {', '.join(CAMPAIGN_COLUMNS)} FROM dim_campaign").pl()
    plan = audit = None
    if _table_exists(conn, PLAN_TABLE):
        sql = f"SELECT {', '.join(PLAN_COLUMNS)} FROM {PLAN_TABLE} WHERE data_partition = ?"
        plan = conn.sql(sql, params=[partition]).pl()
    if _table_exists(conn, AUDIT_TABLE):
        sql = f"SELECT {', '.join(AUDIT_COLUMNS)} FROM {AUDIT_TABLE} WHERE data_partition = ?"
        audit = conn.sql(sql, params=[partition]).pl()
    return {"marts": marts, "campaigns": campaigns, "plan": plan, "audit": audit}


def _write_atomically(path: Path, data: bytes) -> None:
    """Write next to the target, then rename over it: a reader sees the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_report(folder: Path, html: str, charts: dict[str, bytes]) -> Path:
    """The charts, then the page, each atomically; files of an earlier run that this one did not write are
    removed, so a re-run leaves exactly what a first run would."""
    folder.mkdir(parents=True, exist_ok=True)
    keep = {f"{name}.png" for name in charts} | {REPORT_FILE}
    for name, png in charts.items():
        _write_atomically(folder / f"{name}.png", png)
    _write_atomically(folder / REPORT_FILE, html.encode("utf-8"))
    for stale in folder.iterdir():
        if stale.is_file() and stale.name not in keep:
            stale.unlink()
    return folder / REPORT_FILE


def _push_text(report) -> str:
    push = report.push
    if push.latest.is_empty():
        return " ".join(push.notes)
    counts = ", ".join(f"{r['platform']} {r['status']} ×{r['changes']}" for r in push.counts.iter_rows(named=True))
    modes = ", ".join(sorted(set(push.latest["mode"].to_list())))
    text = f"pushed {push.pushes} time(s), mode {modes}; latest push per platform: {counts}"
    return text + (" — " + " ".join(push.notes) if push.notes else "")


@dg.asset(
    partitions_def=DAILY_PARTITIONS,
    deps=[daily_bid_plan, bid_push, dg.AssetKey("fct_campaign_daily"), dg.AssetKey("dim_campaign")],
    group_name="reporting",
    kinds={"python", "duckdb"},
    # It only reads, but DuckDB locks the file per process: a reader in one run worker and a writer in another
    # cannot both have it open, so the report queues with the writers.
    pool="duckdb_writer",
    backfill_policy=ONE_PLAN_PER_RUN,  # with the plan and push of the same day, one day per run
)
def daily_performance_report(
    context: dg.AssetExecutionContext, config: ReportConfig, duckdb: DuckDBResource, account: AccountResource
) -> dg.MaterializeResult:
    """The day's performance report for the marketer: spend, conversions and CPA vs target by platform and
    campaign for yesterday (the partition) and the trailing 28 days, pacing against the budgets, and the plan
    pushed for tomorrow with the reason its policy was chosen; a missing plan or push is said, not an error."""
    partition = context.partition_key
    day = dt.date.fromisoformat(partition)
    with duckdb.get_connection() as conn:
        inputs = _read(conn, partition, day, config.window_days)
    report = build_report(**inputs, day=day, target_cpa=account.settings().target_cpa, window_days=config.window_days)
    path = write_report(report_dir(partition), report.html, report.charts)
    chart = base64.b64encode(report.charts[METADATA_CHART]).decode()
    context.log.info(f"daily performance report for {partition}: {path}")
    return dg.MaterializeResult(
        metadata={
            "report_path": dg.MetadataValue.path(str(path)),
            "summary": dg.MetadataValue.md(summary_markdown(report.platforms, report.window, report.target_cpa)),
            "chart": dg.MetadataValue.md(f"![daily spend by platform vs budgets](data:image/png;base64,{chart})"),
            "plan": report.plan.why,
            "push": _push_text(report),
            "window": f"{report.window.first} .. {report.window.day}",
            "target_cpa": dg.MetadataValue.float(report.target_cpa),
        }
    )


REPORTING_ASSETS = [daily_performance_report]
