"""Every job that rebuilds the dbt marts republishes the analysts' read-only copy, so the copy (which analysts, the
kill switch, discovery and calibration read) never ends before the warehouse: checked on every job of the
definitions, and by running one day of the demo's lean closed loop (bidding_loop_job's selection)."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import dagster as dg
import duckdb

from assets.dbt_project import DBT_PROJECT
from cli.closed_loop import run_loop
from orchestration.definitions import defs
from tests.assets.conftest import LAST

PUBLISHED = dg.AssetKey("published_warehouse")


def _marts() -> set[dg.AssetKey]:
    manifest = json.loads(DBT_PROJECT.manifest_path.read_text())
    return {
        dg.AssetKey(node["name"])
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["fqn"][1] == "marts"
    }


def test_every_job_that_rebuilds_marts_republishes_the_copy():
    graph = defs.resolve_asset_graph()
    marts = _marts()
    assert dg.AssetKey("fct_ga4_traffic_daily") in marts and len(marts) >= 10
    rebuilding = {}
    for job in defs.jobs:
        keys = job.selection.resolve(graph)
        if keys & marts:
            rebuilding[job.name] = PUBLISHED in keys
    assert "bidding_loop_job" in rebuilding and "warehouse_job" in rebuilding
    assert all(rebuilding.values()), [name for name, publishes in rebuilding.items() if not publishes]


def _last_dates(path) -> dict[str, dt.date]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {
            table: con.sql(f"SELECT max(date) FROM {table}").fetchall()[0][0]
            for table in ("fct_campaign_daily", "fct_ga4_traffic_daily")
        }


def test_the_lean_loop_day_leaves_the_copy_ending_on_the_warehouse_last_day(built, tmp_path, monkeypatch):
    assert built["result"].success
    src, data = built["tmp"], tmp_path / "data"
    (data / "published").mkdir(parents=True)
    shutil.copyfile(src / "data" / "warehouse.duckdb", data / "warehouse.duckdb")
    shutil.copyfile(src / "data" / "published" / "warehouse.duckdb", data / "published" / "warehouse.duckdb")
    ga4 = built["resources"]["ga4"]
    shutil.copytree(src / "world", data / "world" / f"seed-{ga4.seed}")  # where the demo resources look for it
    for name, value in (("GAELP_ENV", "demo"), ("GAELP_WORLD_FILE", ga4.world_file), ("GAELP_WORLD_SEED", ga4.seed)):
        monkeypatch.setenv(name, str(value))
    day = (dt.date.fromisoformat(LAST) + dt.timedelta(days=1)).isoformat()
    assert set(_last_dates(data / "published" / "warehouse.duckdb").values()) == {dt.date.fromisoformat(LAST)}

    (result,) = run_loop([day], data, dg.DagsterInstance.ephemeral(), {})

    assert result.ok, result.error
    warehouse = _last_dates(data / "warehouse.duckdb")
    assert set(warehouse.values()) == {dt.date.fromisoformat(day)}
    assert _last_dates(data / "published" / "warehouse.duckdb") == warehouse
