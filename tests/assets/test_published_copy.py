"""Every job that rebuilds the dbt marts republishes the analysts' read-only copy, so the copy (which analysts, the
kill switch, discovery and calibration read) never ends before the warehouse: checked on every job of the
definitions; and one day of the demo's lean closed loop leaves the copy ending on the warehouse's last day
(`check_published_copy`, run in tests/assets/test_plan_unchanged.py on its loop day, so the day runs once)."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import duckdb

from assets.dbt_project import DBT_PROJECT
from orchestration.definitions import defs

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


def check_published_copy(data, before_day: str, day: str) -> None:
    """After one lean loop day on the warehouse under `data` (run by tests/assets/test_plan_unchanged.py, which runs
    that day once for both checks): the copy ended on `before_day` before it and ends on the warehouse's last day."""
    warehouse = _last_dates(data / "warehouse.duckdb")
    assert set(warehouse.values()) == {dt.date.fromisoformat(day)}
    assert _last_dates(data / "published" / "warehouse.duckdb") == warehouse
    assert dt.date.fromisoformat(before_day) < dt.date.fromisoformat(day)
