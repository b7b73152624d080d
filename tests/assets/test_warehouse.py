"""The dbt warehouse built in process over demo ingestion into a real DuckDB file: marts land, dbt tests are asset
checks that block downstream assets, and the published copy stays readable while the warehouse is being written."""

from __future__ import annotations

import datetime as dt
import os
import threading

import dagster as dg
import duckdb
import polars as pl
import pytest
from dagster_duckdb import DuckDBResource

from assets.dbt_project import DBT_PROJECT_DIR
from assets.warehouse import DBT_BUILDS_KEPT, PARTIAL_PARSE, WAREHOUSE_ASSETS, keep_partial_parse, publish_copy
from tests.assets.conftest import FIRST, LAST, RANGE


def test_marts_are_built_and_every_dbt_test_passes(built):
    result = built["result"]
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert len(checks) >= 20 and all(c.passed for c in checks), [c.check_name for c in checks if not c.passed]
    with duckdb.connect(str(built["tmp"] / "data" / "published" / "warehouse.duckdb"), read_only=True) as con:
        days = con.execute("SELECT count(DISTINCT date) FROM fct_campaign_daily").fetchone()[0]
        spend = con.execute("SELECT sum(spend) FROM fct_campaign_daily").fetchone()[0]
        raw = con.execute("SELECT sum(cost_micros) / 1e6 FROM raw.ad_performance").fetchone()[0]
    # a range starts where it was asked: the lookbacks revisit only days already loaded (issue 15: the 30-day
    # conversion lookback reached 30 days before the first day, delivery without the settings in force)
    assert days == (dt.date.fromisoformat(LAST) - dt.date.fromisoformat(FIRST)).days + 1
    assert spend == pytest.approx(raw)


def schedule_sql(modifier: str) -> str:
    """Ad-schedule criteria for campaign 101 on 2025-01-20: the day's six 4-hour blocks on all seven weekdays,
    `modifier` an SQL expression of the weekday d (1 = Monday) and the block b."""
    weekdays = "['MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY', 'SUNDAY']"
    return (
        "INSERT INTO raw.ad_modifiers SELECT 'google_ads', 101, DATE '2025-01-20', 1000000 + 100 * d + 4 * b, "
        f"'AD_SCHEDULE', NULL, {weekdays}[d], 4 * b, 4 * b + 4, 'ZERO', 'ZERO', {modifier} "
        "FROM range(1, 8) AS t(d), range(6) AS u(b)"
    )


# Bad input of the ingestion issue that reaches the warehouse anyway (e.g. loaded by hand), and the dbt test that
# must name it.
FAULTS = {
    "negative_cost": (
        "UPDATE raw.ad_performance SET cost_micros = -5000000 WHERE campaign_id = 101 AND hour = 12",
        "assert_no_negative_spend",
    ),
    "duplicated_row": (
        "INSERT INTO raw.ad_performance SELECT * FROM raw.ad_performance WHERE campaign_id = 102 LIMIT 1",
        "assert_no_duplicate_ad_performance_hour",
    ),
    "unknown_campaign": (
        "UPDATE raw.ad_performance SET campaign_id = 999 WHERE campaign_id = 202 AND date = '2024-12-05'",
        "assert_no_campaign_outside_dim_campaign",
    ),
    # one not_null_columns test per relation checks all its key columns in one scan
    "null_hour": (
        "UPDATE raw.ad_performance SET hour = NULL WHERE campaign_id = 101 AND date = '2024-12-05'",
        "not_null_columns_stg_ads__performance",
    ),
    "missing_day": (
        "DELETE FROM raw.ad_performance WHERE date = '2024-12-10'",
        "assert_no_missing_ad_delivery_day",
    ),
    # a Monday ad schedule that differs from the other weekdays of its block: no single modifier for the block
    "schedule_weekdays_disagree": (
        schedule_sql("CASE WHEN b = 2 AND d = 1 THEN 1.7 ELSE 1.0 END"),
        "assert_ad_schedule_folds_into_hour_blocks",
    ),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_bad_raw_data_fails_a_named_dbt_test_and_blocks_publishing(built, tmp_path, monkeypatch, fault):
    sql, test_name = FAULTS[fault]
    data = tmp_path / "data"
    data.mkdir()
    (data / "warehouse.duckdb").write_bytes((built["tmp"] / "data" / "warehouse.duckdb").read_bytes())
    monkeypatch.setenv("GAELP_DATA_DIR", str(data))
    with duckdb.connect(str(data / "warehouse.duckdb")) as con:
        con.execute(sql)
    resources = {**built["resources"], "duckdb": DuckDBResource(database=str(data / "warehouse.duckdb"))}
    result = dg.materialize(WAREHOUSE_ASSETS, resources=resources, tags=RANGE, raise_on_error=False)
    assert not result.success
    failed = [c.check_name for c in result.get_asset_check_evaluations() if not c.passed]
    assert test_name in failed, failed
    published = [m.asset_key for m in result.get_asset_materialization_events()]
    assert dg.AssetKey("published_warehouse") not in published
    assert not (data / "published" / "warehouse.duckdb").exists()


def test_device_and_modifier_marts(built, tmp_path, monkeypatch):
    """fct_campaign_device_daily splits fct_campaign_daily by device; fct_campaign_modifiers_daily has each search
    campaign-day's device and hour-block modifiers, folding seven weekday schedules into one block modifier."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "warehouse.duckdb").write_bytes((built["tmp"] / "data" / "warehouse.duckdb").read_bytes())
    monkeypatch.setenv("GAELP_DATA_DIR", str(data))
    with duckdb.connect(str(data / "warehouse.duckdb")) as con:
        # campaign 101 on 2025-01-20: mobile +30%, an ad schedule with the 08-12 block at 1.7 on every weekday
        con.execute(schedule_sql("CASE WHEN b = 2 THEN 1.7 ELSE 1.0 END"))
        con.execute(
            "UPDATE raw.ad_modifiers SET bid_modifier = 1.3 WHERE campaign_id = 101 AND date = '2025-01-20' "
            "AND criterion_device = 'mobile'"
        )
    resources = {**built["resources"], "duckdb": DuckDBResource(database=str(data / "warehouse.duckdb"))}
    in_project = set((DBT_PROJECT_DIR / "target").glob("warehouse-*"))
    assert dg.materialize(WAREHOUSE_ASSETS, resources=resources, tags=RANGE, raise_on_error=False).success
    # the build's dbt target and log went under the data directory, nothing into the project tree
    (build,) = (data / "dbt").glob("warehouse-*")
    assert (build / "run_results.json").exists() and (build / "dbt.log").exists()
    assert set((DBT_PROJECT_DIR / "target").glob("warehouse-*")) <= in_project
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        by_device = con.sql(
            "SELECT d.date, d.campaign_id, sum(d.spend) AS spend, sum(d.clicks) AS clicks, "
            "sum(d.conversions) AS conversions, any_value(c.spend) AS day_spend, any_value(c.clicks) AS day_clicks, "
            "any_value(c.conversions) AS day_conversions, count(*) AS devices "
            "FROM fct_campaign_device_daily d JOIN fct_campaign_daily c USING (date, platform, campaign_id) "
            "GROUP BY ALL"
        ).pl()
        modifiers = con.sql("SELECT * FROM fct_campaign_modifiers_daily").pl()
        platforms = set(con.sql("SELECT DISTINCT platform FROM fct_campaign_device_daily").pl()["platform"])
    assert by_device.height > 0 and set(by_device["devices"]) <= {1, 2, 3}
    for metric in ("spend", "clicks", "conversions"):
        assert (by_device[metric] - by_device[f"day_{metric}"]).abs().max() < 1e-6, metric
    assert platforms == {"google_ads", "microsoft_ads", "meta", "tiktok"}
    assert set(modifiers["platform"]) == {"google_ads", "microsoft_ads"}  # social platforms have no modifiers
    per_day = modifiers.group_by("date", "campaign_id").len()
    assert set(per_day["len"]) == {9}  # 3 devices + 6 hour blocks
    keys = (
        modifiers.filter(pl.col("campaign_id") == 101)
        .sort("dimension", "key_order")["modifier_key"]
        .unique(maintain_order=True)
    )
    assert keys.to_list() == ["mobile", "desktop", "tablet", "h00_04", "h04_08", "h08_12", "h12_16", "h16_20", "h20_24"]
    day = modifiers.filter((pl.col("campaign_id") == 101) & (pl.col("date") == dt.date(2025, 1, 20)))
    assert dict(day.select("modifier_key", "bid_modifier").iter_rows()) == {
        "mobile": pytest.approx(1.3),
        "desktop": 1.0,
        "tablet": 1.0,
        "h00_04": 1.0,
        "h04_08": 1.0,
        "h08_12": pytest.approx(1.7),
        "h12_16": 1.0,
        "h16_20": 1.0,
        "h20_24": 1.0,
    }
    others = modifiers.filter((pl.col("campaign_id") != 101) | (pl.col("date") != dt.date(2025, 1, 20)))
    assert set(others["bid_modifier"]) == {1.0}  # the demo history ran without modifiers


def test_the_published_copy_is_readable_while_the_warehouse_is_being_written(built, tmp_path):
    main = tmp_path / "warehouse.duckdb"
    main.write_bytes((built["tmp"] / "data" / "warehouse.duckdb").read_bytes())
    published = publish_copy(main, tmp_path / "published" / "warehouse.duckdb")
    writer = duckdb.connect(str(main))  # the pipeline's single writer, mid-transaction
    writer.execute("BEGIN TRANSACTION")
    writer.execute("DELETE FROM raw.ad_performance")
    reader = duckdb.connect(str(published), read_only=True)
    try:
        before = reader.execute("SELECT count(*) FROM fct_campaign_daily").fetchone()[0]
        assert before > 0
        # A new copy lands while the reader is open: it keeps its snapshot, and a new reader sees the new file.
        done = threading.Event()
        threading.Thread(target=lambda: (publish_copy(main, published), done.set())).start()
        assert done.wait(30)
        assert reader.execute("SELECT count(*) FROM fct_campaign_daily").fetchone()[0] == before
    finally:
        reader.close()
        writer.execute("ROLLBACK")
        writer.close()
    with duckdb.connect(str(published), read_only=True) as again:
        assert again.execute("SELECT count(*) FROM raw.ad_performance").fetchone()[0] > 0


def test_a_build_keeps_its_parse_for_the_next_and_only_the_newest_build_directories(tmp_path):
    builds = []
    for i in range(DBT_BUILDS_KEPT + 3):
        build = tmp_path / f"warehouse-run{i}"
        build.mkdir()
        (build / "run_results.json").write_text("{}")
        os.utime(build, (1_000_000 + i, 1_000_000 + i))
        builds.append(build)
    (builds[-1] / PARTIAL_PARSE).write_bytes(b"parse")
    keep_partial_parse(builds[-1])
    assert (tmp_path / PARTIAL_PARSE).read_bytes() == b"parse"
    assert sorted(tmp_path.glob("warehouse-*")) == builds[-DBT_BUILDS_KEPT:]
