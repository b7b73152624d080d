"""A small demo warehouse built once per test session: 60 ingested days and one dbt build over them."""

from __future__ import annotations

import dagster as dg
import pytest
from dagster_duckdb import DuckDBResource

from assets.ingestion import INGESTION_ASSETS
from assets.warehouse import WAREHOUSE_ASSETS
from orchestration.resources import dbt_resource
from orchestration.resources.ads import DemoAdsReportingResource
from orchestration.resources.ga4 import DemoGA4Resource
from tests.conftest import scaled

FIRST, LAST = "2024-12-01", "2025-01-29"  # 60 days: enough mature click dates for lags
RANGE = {"dagster/asset_partition_range_start": FIRST, "dagster/asset_partition_range_end": LAST}


@pytest.fixture(scope="session")
def built(tmp_path_factory, reference_params):
    """20 ingested demo days and one warehouse build over them."""
    tmp = tmp_path_factory.mktemp("warehouse")
    mp = pytest.MonkeyPatch()
    mp.setenv("GAELP_DATA_DIR", str(tmp / "data"))
    world_file = tmp / "world.yaml"
    world_file.write_text(scaled(reference_params, 0.2).to_yaml())
    world = {"world_dir": str(tmp / "world"), "world_file": str(world_file), "seed": 5}
    resources = {
        "ga4": DemoGA4Resource(**world),
        "ads": DemoAdsReportingResource(**world),
        "duckdb": DuckDBResource(database=str(tmp / "data" / "warehouse.duckdb")),
        "dbt": dbt_resource(),
    }
    (tmp / "data").mkdir()
    instance = dg.DagsterInstance.ephemeral()
    ingest = dg.materialize(INGESTION_ASSETS, resources=resources, tags=RANGE, instance=instance)
    assert ingest.success
    result = dg.materialize(WAREHOUSE_ASSETS, resources=resources, tags=RANGE, instance=instance, raise_on_error=False)
    yield {"tmp": tmp, "resources": resources, "result": result, "instance": instance}
    mp.undo()
