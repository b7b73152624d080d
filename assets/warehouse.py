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
    yield from dbt.cli(["build", "--vars", json.dumps(dbt_vars)], context=context).stream().fetch_row_counts()


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
