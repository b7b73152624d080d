"""The ingestion defects of issue 15 that need the demo market: a backfill that does not start at the account's
first day, and recovering a window that holds rows no report has (without editing DuckDB by hand)."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from assets.ingestion import INGESTION_ASSETS
from orchestration.jobs import recover_window_job
from orchestration.resources.ads import DemoAdsReportingResource
from orchestration.resources.ga4 import DemoGA4Resource
from tests.conftest import scaled

START = dt.date(2025, 1, 10)  # 45 days after the demo account's first day (2024-11-26)
END = dt.date(2025, 1, 13)


def tags(first: dt.date, last: dt.date) -> dict:
    return {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }


@pytest.fixture
def demo(tmp_path, monkeypatch, reference_params):
    monkeypatch.setenv("GAELP_DATA_DIR", str(tmp_path / "data"))
    world_file = tmp_path / "world.yaml"
    world_file.write_text(scaled(reference_params, 0.02).to_yaml())
    world = {"world_dir": str(tmp_path / "world"), "world_file": str(world_file), "seed": 5}
    db = tmp_path / "warehouse.duckdb"
    resources = {
        "ga4": DemoGA4Resource(**world),
        "ads": DemoAdsReportingResource(**world),
        "duckdb": DuckDBResource(database=str(db)),
    }
    return resources, db


def days_of(db, table: str) -> set[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return set(con.execute(f"SELECT DISTINCT platform, campaign_id, date FROM raw.{table}").fetchall())


def test_a_backfill_that_does_not_start_at_the_first_day_has_a_bid_in_force_for_every_delivery_day(demo):
    """The delivery report re-pulled 30 days before the first partition and the settings report did not: 30 days of
    delivery without a bid in force, which market_calibration refuses."""
    resources, db = demo
    assert dg.materialize(INGESTION_ASSETS, resources=resources, tags=tags(START, END)).success
    delivery, settings = days_of(db, "ad_performance"), days_of(db, "ad_settings")
    assert delivery and delivery <= settings
    assert min(d for _, _, d in delivery) == START
    # the next day's run revisits the days now loaded (its lookback), still each with its settings
    assert dg.materialize(INGESTION_ASSETS, resources=resources, partition_key="2025-01-14").success
    delivery, settings = days_of(db, "ad_performance"), days_of(db, "ad_settings")
    assert delivery <= settings and max(d for _, _, d in delivery) == dt.date(2025, 1, 14)


def test_the_recovery_job_rebuilds_a_window_and_deletes_rows_no_report_has(demo):
    resources, db = demo
    assert dg.materialize(INGESTION_ASSETS, resources=resources, tags=tags(START, END)).success
    with duckdb.connect(str(db)) as con:
        good = con.execute("SELECT * FROM raw.ad_performance ORDER BY ALL").fetchall()
        row = con.execute("SELECT * FROM raw.ad_performance WHERE date = ? LIMIT 1", [END]).fetchone()
        phantom = (*row[:3], dt.date(2099, 1, 1), *row[4:])  # a day no report can have
        duplicate = (*row[:4], *row[4:5], 999, *row[6:])  # the same key twice in the window
        con.executemany(
            "INSERT INTO raw.ad_performance VALUES (" + ", ".join("?" * len(row)) + ")", [phantom, duplicate]
        )
    config = recover_window_job.config  # the job's own run config: every ingestion asset with recover=True
    ops = config.config["ops"] if hasattr(config, "config") else config["ops"]
    assert {name for name, c in ops.items() if c["config"]["recover"]} == {a.key.path[-1] for a in INGESTION_ASSETS}
    result = dg.materialize(INGESTION_ASSETS, resources=resources, tags=tags(END, END), run_config={"ops": ops})
    assert result.success
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT * FROM raw.ad_performance ORDER BY ALL").fetchall() == good
    purged = result.asset_materializations_for_node("ad_performance")[0].metadata["stray_rows_deleted"].value
    assert purged == 1
