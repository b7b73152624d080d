"""Build a demo warehouse for tests that need marts: a world file scaled from the reference account, then the raw
tables and the dbt warehouse — through the real assets (`build_warehouse`), or, for a year of data, through the same
report calls, parsers, checks and writes without a Dagster run (`build_long_warehouse`)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from assets._io import replace_window
from assets.dbt_project import DBT_PROJECT_DIR
from assets.ingestion import INGESTION_ASSETS
from assets.warehouse import WAREHOUSE_ASSETS, publish_copy
from orchestration.resources import account_resource, dbt_resource
from orchestration.resources.ads import DemoAdsReportingResource
from orchestration.resources.ga4 import DemoGA4Resource
from rl.campaign_registry import CampaignRegistry
from rl.market.params import MarketParams
from rl.sources import ingest
from tests.conftest import scaled

# The ingestion assets' reports (assets/ingestion.py): GA4 table -> (dimensions, metrics); ads table -> the
# `AdsReportingResource` method. `ingest_directly` refuses to run when this no longer covers every ingestion asset.
GA4_REPORTS = {
    "ga4_sessions": (ingest.GA4_SESSIONS_DIMENSIONS, ingest.GA4_SESSIONS_METRICS),
    "ga4_conversions": (ingest.GA4_CONVERSIONS_DIMENSIONS, ingest.GA4_CONVERSIONS_METRICS),
}
ADS_REPORTS = {
    "ad_performance": "performance",
    "ad_conversion_lag": "conversion_lag",
    "ad_impression_share": "impression_share",
    "ad_settings": "settings",
    "ad_modifiers": "modifiers",
}


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


def ingest_directly(resources: dict, first: dt.date, last: dt.date) -> dict[str, int]:
    """Write the raw tables first..last into a fresh warehouse as the ingestion assets' one run over that range
    does (a fresh warehouse has no lookback): the same resource calls, parsers, checks and transactional write
    (`tests/test_builders.py` compares the two). What it leaves out is the Dagster run — a range run records one
    materialization per day per asset, seconds of event bookkeeping per month of data — and the raw responses
    kept as JSON under the data directory. Returns the rows written per table."""
    tables = {a.key.path[-1] for a in INGESTION_ASSETS}
    assert tables == set(GA4_REPORTS) | set(ADS_REPORTS), f"ingestion assets {sorted(tables)}: update tests/builders.py"
    frames = {}
    for table, (dimensions, metrics) in GA4_REPORTS.items():
        report = resources["ga4"].fetch_report(list(dimensions), list(metrics), first, last)
        frames[table] = ingest.from_ga4(report.frame(list(dimensions), list(metrics)), dimensions, metrics, table)
        ingest.check(table, frames[table], ingest.days(first, last), None, window=(first, last))
    ads, registry = resources["ads"], CampaignRegistry.load()
    for table, fetch in ADS_REPORTS.items():
        parts = [ingest.from_ads(getattr(ads, fetch)(p, first, last).frame(), p, table) for p in sorted(ads.accounts())]
        frames[table] = pl.concat(parts)
        ingest.check(table, frames[table], ingest.days(first, last), registry, window=(first, last))
    with resources["duckdb"].get_connection() as conn:
        return {t: replace_window(conn, t, frame, first, last)[0] for t, frame in frames.items()}


def build_long_warehouse(resources: dict, first: str, last: str) -> Path:
    """The raw tables first..last (`ingest_directly`), then the real `dbt build` the warehouse asset runs (same
    command, target and project), from the dbt CLI with its target and logs under the data directory, then the
    published copy (`publish_copy`, as the published_warehouse asset makes it). For tests that need a year of marts.
    Returns the published copy, which the calibration and discovery assets read (GAELP_DATA_DIR must point at the
    resources' data directory)."""
    ingest_directly(resources, dt.date.fromisoformat(first), dt.date.fromisoformat(last))
    data = Path(os.environ["GAELP_DATA_DIR"])
    out = str(data / "dbt")
    args = [str(Path(sys.executable).parent / "dbt"), "build", "--target", "demo", "--quiet"]
    args += ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    args += ["--target-path", out, "--log-path", out]
    done = subprocess.run(args, env=dict(os.environ), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return publish_copy(data / "warehouse.duckdb", data / "published" / "warehouse.duckdb")
