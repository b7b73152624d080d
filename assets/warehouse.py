"""Warehouse: the dbt project (staging views → marts) built over the raw ingestion tables, and a published read-only
copy for analysts.

dbt models become assets and dbt tests become asset checks, so a failing test (negative spend, a missing day, a
campaign outside `dim_campaign`) shows on the asset it guards and blocks what depends on it. The manifest is
prepared before anything imports this module (`make dbt-manifest`: `dbt parse`), never at import time.
"""

import json
import os
import shutil
import warnings
from pathlib import Path

import dagster as dg
import duckdb
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets

from assets.partitions import DAILY_PARTITIONS, LOOKBACK_DAYS
from orchestration.environment import data_dir

warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
DBT_PROJECT = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target="demo")


class WarehouseTranslator(DagsterDbtTranslator):
    """Every dbt model sits in the `warehouse` group of the asset graph."""

    def get_group_name(self, dbt_resource_props) -> str:
        return "warehouse"


TRANSLATOR = WarehouseTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


@dbt_assets(
    manifest=DBT_PROJECT.manifest_path,
    project=DBT_PROJECT,
    partitions_def=DAILY_PARTITIONS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="duckdb_writer",  # dbt writes the same DuckDB file as ingestion
    dagster_dbt_translator=TRANSLATOR,
)
def warehouse(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """`dbt build` (models, then their tests) for the run's partition range plus the ingestion lookback."""
    keys = context.partition_key_range
    dbt_vars = {"min_date": keys.start, "max_date": keys.end, "lookback_days": LOOKBACK_DAYS}
    # profiles.yml reads the warehouse location from the environment: give the dbt subprocess the same one.
    os.environ.setdefault("GAELP_DATA_DIR", str(data_dir()))
    # dagster-dbt's fetch_row_counts() would query through dbt-duckdb inside this process and leave a read-write
    # DuckDB instance open, which then refuses every other connection to the file in the same process; counting
    # ourselves, read-only, once the dbt subprocess has exited, keeps the file free.
    invocation = dbt.cli(["build", "--vars", json.dumps(dbt_vars)], context=context, raise_on_error=False)
    events = list(invocation.stream())
    yield from with_row_counts(context, events, data_dir() / "warehouse.duckdb")
    if not invocation.is_successful():  # after the events: failed tests show as failed checks, then the step fails
        raise invocation.get_error()


def with_row_counts(context: dg.AssetExecutionContext, events: list, database: Path) -> list:
    """The dbt events, each model's output carrying its table's row count (`dagster/row_count`)."""

    def table(e) -> str | None:
        if isinstance(e, dg.Output):
            return context.asset_key_for_output(e.output_name).path[-1]
        if isinstance(e, dg.AssetMaterialization):
            return e.asset_key.path[-1]
        return None

    names = {t for t in map(table, events) if t}
    counts: dict[str, int] = {}
    with duckdb.connect(str(database), read_only=True) as con:
        existing = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        for name in sorted(names & existing):
            counts[name] = con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
    return [
        e.with_metadata({**e.metadata, "dagster/row_count": dg.MetadataValue.int(counts[table(e)])})
        if table(e) in counts
        else e
        for e in events
    ]


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
    target = publish_copy(source, data_dir() / "published" / "warehouse.duckdb")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(target)),
            "size_mb": dg.MetadataValue.float(round(target.stat().st_size / 1e6, 2)),
            "open_with": f"duckdb.connect('{target}', read_only=True)",
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
