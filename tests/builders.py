"""Build a demo warehouse through the real assets, for tests that need marts: a world file scaled from the
reference account, the ingestion assets over a partition range, then the dbt warehouse assets."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from assets.ingestion import INGESTION_ASSETS
from assets.warehouse import WAREHOUSE_ASSETS
from orchestration.resources import account_resource, dbt_resource
from orchestration.resources.ads import DemoAdsReportingResource
from orchestration.resources.ga4 import DemoGA4Resource
from rl.market.params import MarketParams
from tests.conftest import scaled


def partition_range(first: str, last: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}


def demo_resources(tmp: Path, params: MarketParams, scale: float, seed: int) -> dict:
    """Demo GA4/ads, DuckDB and dbt resources over a world written to `tmp` (data under tmp/data)."""
    world_file = tmp / "world.yaml"
    world_file.write_text(scaled(params, scale).to_yaml())
    world = {"world_dir": str(tmp / "world"), "world_file": str(world_file), "seed": seed}
    (tmp / "data").mkdir(exist_ok=True)
    return {
        "ga4": DemoGA4Resource(**world),
        "ads": DemoAdsReportingResource(**world),
        "duckdb": DuckDBResource(database=str(tmp / "data" / "warehouse.duckdb")),
        "dbt": dbt_resource(),
        "account": account_resource(),
    }


def build_warehouse(resources: dict, first: str, last: str, instance: dg.DagsterInstance):
    """Ingest first..last in one run, then build the warehouse; returns the warehouse run's result.
    GAELP_DATA_DIR must point at the resources' data directory (dbt's profile and the published copy use it)."""
    tags = partition_range(first, last)
    assert dg.materialize(INGESTION_ASSETS, resources=resources, tags=tags, instance=instance).success
    return dg.materialize(WAREHOUSE_ASSETS, resources=resources, tags=tags, instance=instance, raise_on_error=False)


def build_long_warehouse(resources: dict, first: str, last: str, instance: dg.DagsterInstance) -> Path:
    """Ingest first..last through the real ingestion assets, then run the real `dbt build` (same vars and target as
    the warehouse asset) directly with the dbt CLI. For tests that need a year of marts: a Dagster run over hundreds
    of partitions spends minutes recording per-partition events around a seconds-long dbt build. Returns the
    warehouse file (GAELP_DATA_DIR must point at the resources' data directory)."""
    import json
    import os
    import subprocess
    import sys

    from assets.dbt_project import DBT_PROJECT_DIR

    tags = partition_range(first, last)
    assert dg.materialize(INGESTION_ASSETS, resources=resources, tags=tags, instance=instance).success
    dbt = Path(sys.executable).parent / "dbt"
    variables = json.dumps({"min_date": first, "max_date": last, "lookback_days": 3})
    args = [str(dbt), "build", "--vars", variables, "--target", "demo", "--quiet"]
    args += ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    done = subprocess.run(args, env=dict(os.environ), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return Path(os.environ["GAELP_DATA_DIR"]) / "warehouse.duckdb"
