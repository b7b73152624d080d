"""Warehouse: the dbt project (staging views → marts) built over the raw ingestion tables, and a published read-only
copy for analysts.

dbt models become assets and dbt tests become asset checks, so a failing test (negative spend, a missing day, a
campaign outside `dim_campaign`) shows on the asset it guards and blocks what depends on it. The manifest is
prepared before anything imports this module (`make dbt-manifest`: `dbt parse`), never at import time.
"""

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliInvocation, DbtCliResource, dbt_assets

from assets import _preview
from assets.dbt_project import DBT_PROJECT, DBT_PROJECT_DIR
from assets.partitions import LOOKBACK_DAYS
from orchestration.environment import account_settings, data_dir, published_warehouse_path
from rl.bidding.plots import PACING_COLUMNS, campaign_pacing, plot_pacing
from rl.discovery.plots import plot_conversion_lag


class WarehouseTranslator(DagsterDbtTranslator):
    """Every dbt model sits in the `warehouse` group of the asset graph."""

    def get_group_name(self, dbt_resource_props) -> str:
        return "warehouse"


TRANSLATOR = WarehouseTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


# The marts are full rebuilds from the whole raw history (dbt_project.yml), so the dbt models are not partitioned:
# a build records one materialization per model (and one evaluation per test), whatever range of raw partitions
# the run ingested. Partitioned, a two-year backfill recorded one per day per model: 220 s of event bookkeeping
# around a 6 s `dbt build`. The raw ingestion assets upstream keep their daily partitions (the UI shows which days
# are loaded); the jobs that ingest a range run the build once after it (Dagster runs an unpartitioned asset of a
# partitioned run once, unpartitioned).
@dbt_assets(
    manifest=DBT_PROJECT.manifest_path,
    project=DBT_PROJECT,
    pool="duckdb_writer",  # dbt writes the same DuckDB file as ingestion
    dagster_dbt_translator=TRANSLATOR,
)
def warehouse(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """`dbt build` (models, then their tests) over the whole raw history; the run's partition range, when the run
    has one (the days it ingested), is passed on as dbt vars and sets the previews' window."""
    days = run_days(context)
    if days:
        context.log.info(f"dbt build over the whole raw history, after this run's ingestion of {days[0]}..{days[1]}")
    # profiles.yml reads the warehouse location from the environment: give the dbt subprocess the same one.
    os.environ.setdefault("GAELP_DATA_DIR", str(data_dir()))
    # dagster-dbt's fetch_row_counts() would query through dbt-duckdb inside this process and leave a read-write
    # DuckDB instance open, which then refuses every other connection to the file in the same process; counting
    # ourselves, read-only, once the dbt subprocess has exited, keeps the file free.
    # No --vars: the marts do not depend on the run's range, and vars that change from run to run would make dbt
    # parse the whole project again every time instead of reusing the last parse (`partial_parse_target`).
    target = partial_parse_target(context)
    # dbt writes no log file itself: its debug log of every query and connection took 0.7 s of a 6 s loop-day build.
    # The build's dbt.log is written here from the JSON lines dbt prints (`streamed`), while dbt runs on the other
    # core; `dbt build --debug` by hand still gives the debug stream.
    invocation = dbt.cli(
        ["build", "--log-level-file", "none"], context=context, raise_on_error=False, target_path=target
    )
    events = streamed(invocation, context, target / "dbt.log")
    keep_partial_parse(target)
    database = data_dir() / "warehouse.duckdb"
    window = (days[0] - dt.timedelta(days=LOOKBACK_DAYS), days[1]) if days else history_window(database)
    yield from with_previews(context, events, database, window)
    if not invocation.is_successful():  # after the events: failed tests show as failed checks, then the step fails
        raise invocation.get_error()


def streamed(invocation: DbtCliInvocation, context: dg.AssetExecutionContext, log: Path) -> list:
    """The build's Dagster events (each model's output, each test's check result), as `invocation.stream()` gives
    them, with every event dbt printed also written to `log`, one JSON object per line (its info-level log)."""
    events = []
    with open(log, "a") as out:
        for event in invocation.stream_raw_events():
            out.write(json.dumps(event.raw_event) + "\n")
            events.extend(
                event.to_default_asset_events(
                    manifest=invocation.manifest,
                    dagster_dbt_translator=invocation.dagster_dbt_translator,
                    context=context,
                    target_path=invocation.target_path,
                    project=invocation.project,
                )
            )
    return events


PARTIAL_PARSE = "partial_parse.msgpack"
DBT_BUILDS_KEPT = 5  # the newest build directories (run_results.json, dbt.log, compiled SQL) kept under data_dir()/dbt


def dbt_builds_dir() -> Path:
    """Where each build's dbt target directory and log go: under the data directory, like every other file a run
    writes, never into the project tree (a build leaves ~6 MB there; a test suite ran dozens of builds)."""
    return data_dir() / "dbt"


def partial_parse_target(context: dg.AssetExecutionContext) -> Path:
    """A fresh dbt target directory for this invocation (its run_results.json is its own, as dagster-dbt's default
    gives), holding the parse dbt saved last on this data directory (or the one `make dbt-manifest` left in the
    project): dbt checks that it still matches the project files, profile, vars and environment and reparses only
    what changed (a loop day saved a few seconds of parsing)."""
    builds = dbt_builds_dir()
    target = builds / f"warehouse-{context.run.run_id[:8]}-{os.urandom(3).hex()}"
    target.mkdir(parents=True, exist_ok=True)
    for last in (builds / PARTIAL_PARSE, DBT_PROJECT_DIR / "target" / PARTIAL_PARSE):
        if last.exists():
            shutil.copyfile(last, target / PARTIAL_PARSE)
            break
    return target


def keep_partial_parse(target: Path) -> None:
    """Offer this invocation's parse to the next one (renamed into place: a concurrent build reads the old or the
    new file, never half of one), and remove all but the newest `DBT_BUILDS_KEPT` build directories."""
    builds = target.parent
    saved = target / PARTIAL_PARSE
    if saved.exists():
        tmp = builds / f".{PARTIAL_PARSE}.{os.urandom(3).hex()}"
        shutil.copyfile(saved, tmp)
        os.replace(tmp, builds / PARTIAL_PARSE)

    def modified(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except FileNotFoundError:  # removed meanwhile by another build's clean-up
            return float("inf")

    for old in sorted(builds.glob("warehouse-*"), key=modified)[:-DBT_BUILDS_KEPT]:
        if old != target:
            shutil.rmtree(old, ignore_errors=True)


RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


def run_days(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date] | None:
    """The (first, last) day of the run's partition (or partition range): the days its ingestion pulled. None for
    a run without partitions (warehouse_job rebuilds from what is already ingested)."""
    tags = context.run.tags
    if "dagster/partition" in tags:
        day = dt.date.fromisoformat(tags["dagster/partition"])
        return day, day
    if all(t in tags for t in RANGE_TAGS):
        return tuple(dt.date.fromisoformat(tags[t]) for t in RANGE_TAGS)
    return None


def history_window(database: Path) -> tuple[dt.date, dt.date]:
    """(first, last) day of the ad delivery the warehouse holds: the previews' window of a run without partitions
    (today when nothing is loaded yet)."""
    with duckdb.connect(str(database), read_only=True) as con:
        try:
            first, last = con.execute("SELECT min(date), max(date) FROM raw.ad_performance").fetchone()
        except duckdb.CatalogException:
            first = last = None
    today = dt.date.today()
    return first or today, last or today


PACING_DAYS = 28  # the pacing preview shows the trailing four weeks, whatever the run's range


def with_previews(context: dg.AssetExecutionContext, events: list, database: Path, window: tuple) -> list:
    """The dbt events, each model's output carrying its relation's row count (`dagster/row_count`), columns and
    first rows, plus the campaign pacing and conversion lag plots on their marts. `window` is the (first, last)
    date the build was asked to rebuild."""

    def relation(e) -> str | None:
        if isinstance(e, dg.Output):
            return context.asset_key_for_output(e.output_name).path[-1]
        if isinstance(e, dg.AssetMaterialization):
            return e.asset_key.path[-1]
        return None

    names = {t for t in map(relation, events) if t}
    checked = {e.check_name for e in events if isinstance(e, CHECK_EVENTS)}
    extra: dict[str, dict] = {}
    with duckdb.connect(str(database), read_only=True) as con:
        existing = {r[0] for r in con.execute(f"SELECT table_name FROM information_schema.tables {MAIN}").fetchall()}
        for name in sorted(names & existing):
            extra[name] = relation_preview(con, name, window)
            if name in PLOTS:
                extra[name] |= PLOTS[name](con, window[1])
        listed = {name: stored_failures(con, name) for name in sorted(checked & set(LISTED_FAILURES))}
    out = []
    for e in events:
        if isinstance(e, CHECK_EVENTS) and listed.get(e.check_name):
            e = e.with_metadata({**e.metadata, **listed[e.check_name]})
        name = relation(e)
        if name in extra:
            preview = dict(extra[name])
            count = preview.pop("dagster/row_count")
            key = e.asset_key if isinstance(e, dg.AssetMaterialization) else context.asset_key_for_output(e.output_name)
            shown = _preview.on_last_partition(context, preview, key)
            e = e.with_metadata({**e.metadata, "dagster/row_count": count, **shown})
        out.append(e)
    return out


MAIN = "WHERE table_schema = 'main'"
CHECK_EVENTS = (dg.AssetCheckResult, dg.AssetCheckEvaluation)

# dbt tests whose failing rows are stored (`store_failures=true` in the test's config) and shown in the Dagster
# check's metadata, so the check says what failed and not only how many rows: the test → (metadata key, order of the
# rows, the column whose total is shown beside them, what an empty list means).
FAILURES_SCHEMA = "main_dbt_test__audit"  # dbt's default: <target schema>_dbt_test__audit
LISTED_FAILURES = {
    "assert_no_unmapped_paid_ga4_sessions": (
        "unmapped_paid_campaigns",
        "sessions DESC, campaign_name",
        "sessions",
        "none: every sessions is credited to a campaign",
    ),
    "assert_conversion_lag_matches_click_date_conversions": (
        "disagreeing_campaign_days",
        "date DESC, platform, campaign_id",
        "conversions_apart",
        "none: the lag report and the delivery report agree on every campaign-day",
    ),
}


def stored_failures(con: duckdb.DuckDBPyConnection, test: str) -> dict[str, dg.MetadataValue]:
    """The failing rows dbt stored for `test` (largest first) and their total, as check metadata; nothing when the
    build did not store them (the table is missing)."""
    key, order, total, empty = LISTED_FAILURES[test]
    found = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [FAILURES_SCHEMA, test],
    ).fetchall()
    if not found:
        return {}
    rows = con.sql(f'SELECT * FROM {FAILURES_SCHEMA}."{test}" ORDER BY {order}').pl()
    summed = rows[total].sum() or 0
    return {
        key: _preview.table(rows, empty, max_rows=100),
        f"{key}_{total}": dg.MetadataValue.float(float(summed))
        if rows[total].dtype.is_float()
        else dg.MetadataValue.int(int(summed)),
    }


def relation_preview(con: duckdb.DuckDBPyConnection, name: str, window: tuple) -> dict[str, dg.MetadataValue]:
    """Row count, columns and the first rows (latest dates first) of a model's relation, table or view."""
    columns = con.execute(
        f"SELECT column_name, data_type FROM information_schema.columns {MAIN} AND table_name = ? "
        "ORDER BY ordinal_position",
        [name],
    ).fetchall()
    dated = [c for c, _ in columns if c in ("date", "click_date", "session_date", "conversion_date")]
    order = f'ORDER BY "{dated[0]}" DESC' if dated else ""
    ((count,),) = con.sql(f'SELECT count(*) FROM "{name}"').fetchall()
    head = con.sql(f'SELECT * FROM "{name}" {order} LIMIT {_preview.MAX_ROWS}').pl()
    built = f"after the build for {window[0]}..{window[1]}"
    return {
        "dagster/row_count": dg.MetadataValue.int(int(count)),
        # a table even when the relation is empty (a seed of overrides with none yet): its columns and their types
        "columns": dg.MetadataValue.md(
            _preview.md_table(
                pl.DataFrame(columns, schema=["column", "type"], orient="row"), f"`{name}` has no columns"
            )
        ),
        "preview": dg.MetadataValue.md(_preview.md_table(head, f"no rows in `{name}` {built}", total=int(count))),
    }


def _pacing(con: duckdb.DuckDBPyConnection, last: dt.date) -> dict[str, dg.MetadataValue]:
    first = last - dt.timedelta(days=PACING_DAYS - 1)
    cols = ", ".join(PACING_COLUMNS)
    daily = con.sql(
        f"SELECT {cols} FROM fct_campaign_daily WHERE date BETWEEN $first AND $last",
        params={"first": first, "last": last},
    ).pl()
    if daily.is_empty():
        return {"pacing": dg.MetadataValue.md(f"no campaign rows in window {first}..{last}")}
    daily = daily.with_columns(pl.col("spend", "conversions", "daily_budget").cast(pl.Float64))
    target = account_settings().target_cpa  # the account's target CPA as configured, as the plan uses it
    title = f"Campaign performance and pacing {first} .. {last} (target CPA {target:g}, the planning setting)"
    return {
        "pacing": _preview.png(plot_pacing(daily, target, title), "campaign performance and pacing"),
        "pacing_by_campaign": _preview.markdown(_said(campaign_pacing(daily, target)), "no campaign rows", max_rows=50),
    }


def _said(summary: pl.DataFrame) -> pl.DataFrame:
    """The pacing table with its gaps said in words (a campaign without conversions has no CPA)."""
    absent = {
        "avg_daily_budget": "no budget reported",
        "budget_utilisation": "no budget reported",
        "cpa": "no conversions",
        "cpa_vs_target": "no conversions",
    }
    return summary.with_columns(
        pl.col(c).round(4 if c == "budget_utilisation" else 2).cast(pl.Utf8).fill_null(text)
        for c, text in absent.items()
    )


def _lag(con: duckdb.DuckDBPyConnection, last: dt.date) -> dict[str, dg.MetadataValue]:
    lag = con.sql("SELECT * FROM fct_conversion_lag").pl()
    if lag.filter(pl.col("conversions") > 0).is_empty():
        return {"lag_distribution": dg.MetadataValue.md(f"no mature conversions up to {last}: nothing to plot yet")}
    lag = lag.with_columns(pl.col("conversions", "share", "cumulative_share").cast(pl.Float64))
    return {"lag_distribution": _preview.png(plot_conversion_lag(lag), "conversion lag distribution")}


PLOTS = {"fct_campaign_daily": _pacing, "fct_conversion_lag": _lag}


@dg.asset(
    deps=[warehouse],
    group_name="warehouse",
    kinds={"duckdb"},
    pool="duckdb_writer",  # copy between writes, never during one
    description="A read-only copy of the warehouse for analysts and BI tools: a SQL client on it never blocks the "
    "pipeline's single DuckDB writer.",
)
def published_warehouse(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    source = data_dir() / "warehouse.duckdb"
    target = publish_copy(source, published_warehouse_path())
    with duckdb.connect(str(target), read_only=True) as con:
        relations = con.sql(
            "SELECT schema_name AS schema, table_name AS relation, 'table' AS type, "
            "estimated_size::VARCHAR AS estimated_rows FROM duckdb_tables() WHERE NOT internal "
            "UNION ALL SELECT schema_name, view_name, 'view', 'computed when read' "
            "FROM duckdb_views() WHERE NOT internal ORDER BY 1, 2"
        ).pl()
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(target)),
            "size_mb": dg.MetadataValue.float(round(target.stat().st_size / 1e6, 2)),
            "open_with": f"duckdb.connect('{target}', read_only=True)",
            "relations": _preview.markdown(relations, f"the published copy {target} holds no relation", max_rows=100),
        }
    )


def publish_copy(source: Path, target: Path) -> Path:
    """Copy the warehouse next to the target name, then rename over it: readers of the old copy keep reading it
    (they hold the old file), new readers get the new one; nobody ever sees half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".duckdb.tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)
    return target


WAREHOUSE_ASSETS = [warehouse, published_warehouse]
