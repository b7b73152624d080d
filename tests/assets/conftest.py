"""A small demo warehouse built once per test session: 60 ingested days and one dbt build over them."""

from __future__ import annotations

import shutil

import dagster as dg
import pytest
from dagster_duckdb import DuckDBResource

from orchestration.resources import account_resource, demo_bid_platforms
from tests.builders import build_warehouse, demo_resources, partition_range

FIRST, LAST = "2024-12-01", "2025-01-29"  # 60 days: enough mature click dates for lags
RANGE = partition_range(FIRST, LAST)


@pytest.fixture(scope="session")
def built(tmp_path_factory, reference_params):
    """60 ingested demo days (20% volume) and one warehouse build over them."""
    tmp = tmp_path_factory.mktemp("warehouse")
    mp = pytest.MonkeyPatch()
    mp.setenv("GAELP_DATA_DIR", str(tmp / "data"))
    resources = demo_resources(tmp, reference_params, scale=0.2, seed=5)
    instance = dg.DagsterInstance.ephemeral()
    result = build_warehouse(resources, FIRST, LAST, instance)
    yield {"tmp": tmp, "resources": resources, "result": result, "instance": instance}
    mp.undo()


@pytest.fixture
def copy(built, tmp_path, monkeypatch):
    """A private copy of the built warehouse and demo world (pushes change the world), with the warehouse and the
    four demo bid platforms as resources."""
    assert built["result"].success
    src = built["tmp"]
    shutil.copytree(src / "world", tmp_path / "world")
    (tmp_path / "data").mkdir()
    shutil.copyfile(src / "data" / "warehouse.duckdb", tmp_path / "data" / "warehouse.duckdb")
    monkeypatch.setenv("GAELP_DATA_DIR", str(tmp_path / "data"))
    world = {"world_dir": str(tmp_path / "world"), "world_file": str(src / "world.yaml"), "seed": 5}
    resources = {
        "duckdb": DuckDBResource(database=str(tmp_path / "data" / "warehouse.duckdb")),
        **demo_bid_platforms(**world),
        "account": account_resource(),
    }
    return {"tmp": tmp_path, "resources": resources, "world": world}


@pytest.fixture
def demo_data(built, tmp_path, monkeypatch):
    """The built warehouse, its published copy and its demo world laid out as a demo data directory (what the
    closed loop runs on), with the demo environment pointed at it (GAELP_DATA_DIR, world file and seed)."""
    src, data = built["tmp"], tmp_path / "data"
    (data / "published").mkdir(parents=True)
    shutil.copyfile(src / "data" / "warehouse.duckdb", data / "warehouse.duckdb")
    shutil.copyfile(src / "data" / "published" / "warehouse.duckdb", data / "published" / "warehouse.duckdb")
    ga4 = built["resources"]["ga4"]
    shutil.copytree(src / "world", data / "world" / f"seed-{ga4.seed}")
    for name, value in (
        ("GAELP_ENV", "demo"),
        ("GAELP_DATA_DIR", data),
        ("GAELP_WORLD_FILE", ga4.world_file),
        ("GAELP_WORLD_SEED", ga4.seed),
    ):
        monkeypatch.setenv(name, str(value))
    return data
