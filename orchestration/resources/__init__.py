"""Resources per environment: the one place that decides whether GAELP talks to the demo market or real accounts.

demo: the demo market answers GA4 and the ad platforms; DuckDB is a local file under the data directory.
prod: a real GA4 property and Google Ads account, every secret from environment variables (`dg.EnvVar`), never
from code or config files.
"""

from __future__ import annotations

import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource
from dagster_duckdb import DuckDBResource

from orchestration.environment import Environment, current_environment, data_dir, world_file, world_seed


def warehouse_path() -> str:
    return str(data_dir() / "warehouse.duckdb")


def world_dir() -> str:
    return str(data_dir() / "world" / f"seed-{world_seed()}")


def dbt_resource() -> DbtCliResource:
    """dbt from the same virtual environment as Dagster (CI and fresh machines have no other dbt)."""
    from assets.warehouse import DBT_PROJECT

    return DbtCliResource(project_dir=DBT_PROJECT, dbt_executable=str(Path(sys.executable).parent / "dbt"))


def build_resources(environment: Environment | None = None) -> dict[str, dg.ConfigurableResource]:
    from orchestration.resources.ads import DemoAdsReportingResource, GoogleAdsReportingResource
    from orchestration.resources.ga4 import DemoGA4Resource, LiveGA4Resource

    environment = environment or current_environment()
    duckdb = DuckDBResource(database=warehouse_path())
    common = {"duckdb": duckdb, "dbt": dbt_resource()}
    if environment is Environment.DEMO:
        world = {"world_dir": world_dir(), "world_file": str(world_file()), "seed": world_seed()}
        return {"ga4": DemoGA4Resource(**world), "ads": DemoAdsReportingResource(**world), **common}
    return {
        "ga4": LiveGA4Resource(
            property_id=dg.EnvVar("GA4_PROPERTY_ID"), credentials_path=dg.EnvVar("GOOGLE_APPLICATION_CREDENTIALS")
        ),
        "ads": GoogleAdsReportingResource(
            developer_token=dg.EnvVar("GOOGLE_ADS_DEVELOPER_TOKEN"),
            client_id=dg.EnvVar("GOOGLE_ADS_CLIENT_ID"),
            client_secret=dg.EnvVar("GOOGLE_ADS_CLIENT_SECRET"),
            refresh_token=dg.EnvVar("GOOGLE_ADS_REFRESH_TOKEN"),
            login_customer_id=dg.EnvVar("GOOGLE_ADS_LOGIN_CUSTOMER_ID"),
            customer_id=dg.EnvVar("GOOGLE_ADS_CUSTOMER_ID"),
        ),
        **common,
    }
