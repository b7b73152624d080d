"""Resources per environment: the one place that decides whether GAELP talks to the demo market or real accounts.

demo: the demo market answers GA4 and the ad platforms and receives every bid push (`DemoBidPlatform` behind all
four bid platform resources); DuckDB is a local file under the data directory.
prod: a real GA4 property and ad accounts, every secret from environment variables (`dg.EnvVar`), never from code
or config files. Bid pushes are validate-only unless an account's live switch is on: `GAELP_LIVE_PUSH_<PLATFORM>`
(e.g. GAELP_LIVE_PUSH_GOOGLE_ADS=1) turns on the resource's `live_pushing_enabled`, and the bid_push run config
must still ask for live (`live_google_ads: true`).
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource
from dagster_duckdb import DuckDBResource
from packaging import version

from assets.dbt_project import DBT_PROJECT
from orchestration.environment import (
    Environment,
    account_settings,
    current_environment,
    data_dir,
    world_file,
    world_seed,
)
from orchestration.resources.account import AccountResource
from orchestration.resources.ads import DemoAdsReportingResource, GoogleAdsReportingResource
from orchestration.resources.ga4 import DemoGA4Resource, LiveGA4Resource
from orchestration.resources.platforms import (
    DemoBidPlatform,
    GoogleAdsBidPlatform,
    MetaBidPlatform,
    MicrosoftAdsBidPlatform,
    TikTokBidPlatform,
)


def warehouse_path() -> str:
    return str(data_dir() / "warehouse.duckdb")


def account_resource() -> AccountResource:
    """The `account` resource from the account settings as configured (`orchestration.environment`)."""
    return AccountResource.from_settings(account_settings())


def world_dir() -> str:
    return str(data_dir() / "world" / f"seed-{world_seed()}")


class WarehouseDbt(DbtCliResource):
    """dagster-dbt's resource without two costs paid on every invocation that GAELP does not use (a loop day paid
    about 4 s for them on 2 cores): `dbt --version` in a subprocess to learn the version of the dbt installed in this
    very environment (read from its package metadata instead), and a dbt adapter built inside the Dagster process
    for row counts and column metadata (the warehouse asset counts rows itself, read-only, after dbt has exited)."""

    @functools.cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):
        return None


def dbt_executable() -> str:
    """dbt from the same virtual environment as Dagster (CI and fresh machines have no other dbt)."""
    return str(Path(sys.executable).parent / "dbt")


def dbt_resource(executable: str | None = None) -> DbtCliResource:
    """The warehouse's dbt resource; `executable` replaces the venv's dbt (e.g. the warm dbt of cli/dbt_server.py)."""
    return WarehouseDbt(project_dir=DBT_PROJECT, dbt_executable=executable or dbt_executable())


BID_PLATFORM_KEYS = ("bid_google_ads", "bid_meta", "bid_tiktok", "bid_microsoft_ads")
LIVE_PUSH_VAR = "GAELP_LIVE_PUSH_{}"


def live_switch(platform: str) -> bool:
    """An account's live-push switch from `GAELP_LIVE_PUSH_<PLATFORM>` (1/true/yes); off unless set."""
    return os.environ.get(LIVE_PUSH_VAR.format(platform.upper()), "").strip().lower() in ("1", "true", "yes")


def demo_bid_platforms(world_dir: str, world_file: str, seed: int) -> dict[str, dg.ConfigurableResource]:
    """All four bid platform resources pushing to the demo market (audit mode "demo", never "live")."""
    return {key: DemoBidPlatform(world_dir=world_dir, world_file=world_file, seed=seed) for key in BID_PLATFORM_KEYS}


def prod_bid_platforms() -> dict[str, dg.ConfigurableResource]:
    return {
        "bid_google_ads": GoogleAdsBidPlatform(
            developer_token=dg.EnvVar("GOOGLE_ADS_DEVELOPER_TOKEN"),
            client_id=dg.EnvVar("GOOGLE_ADS_CLIENT_ID"),
            client_secret=dg.EnvVar("GOOGLE_ADS_CLIENT_SECRET"),
            refresh_token=dg.EnvVar("GOOGLE_ADS_REFRESH_TOKEN"),
            login_customer_id=dg.EnvVar("GOOGLE_ADS_LOGIN_CUSTOMER_ID"),
            customer_id=dg.EnvVar("GOOGLE_ADS_CUSTOMER_ID"),
            live_pushing_enabled=live_switch("google_ads"),
        ),
        "bid_meta": MetaBidPlatform(
            app_id=dg.EnvVar("META_APP_ID"),
            app_secret=dg.EnvVar("META_APP_SECRET"),
            access_token=dg.EnvVar("META_ACCESS_TOKEN"),
            ad_account_id=dg.EnvVar("META_AD_ACCOUNT_ID"),
            live_pushing_enabled=live_switch("meta"),
        ),
        "bid_tiktok": TikTokBidPlatform(
            advertiser_id=dg.EnvVar("TIKTOK_ADVERTISER_ID"),
            access_token=dg.EnvVar("TIKTOK_ACCESS_TOKEN"),
            live_pushing_enabled=live_switch("tiktok"),
        ),
        "bid_microsoft_ads": MicrosoftAdsBidPlatform(
            developer_token=dg.EnvVar("MICROSOFT_ADS_DEVELOPER_TOKEN"),
            client_id=dg.EnvVar("MICROSOFT_ADS_CLIENT_ID"),
            client_secret=dg.EnvVar("MICROSOFT_ADS_CLIENT_SECRET"),
            refresh_token=dg.EnvVar("MICROSOFT_ADS_REFRESH_TOKEN"),
            customer_id=dg.EnvVar("MICROSOFT_ADS_CUSTOMER_ID"),
            account_id=dg.EnvVar("MICROSOFT_ADS_ACCOUNT_ID"),
            live_pushing_enabled=live_switch("microsoft_ads"),
        ),
    }


def build_resources(environment: Environment | None = None) -> dict[str, dg.ConfigurableResource]:
    environment = environment or current_environment()
    duckdb = DuckDBResource(database=warehouse_path())
    common = {"duckdb": duckdb, "dbt": dbt_resource(), "account": account_resource()}
    if environment is Environment.DEMO:
        world = {"world_dir": world_dir(), "world_file": str(world_file()), "seed": world_seed()}
        return {
            "ga4": DemoGA4Resource(**world),
            "ads": DemoAdsReportingResource(**world),
            **demo_bid_platforms(**world),
            **common,
        }
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
        **prod_bid_platforms(),
        **common,
    }
