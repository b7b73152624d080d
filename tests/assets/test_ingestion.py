"""Ingestion assets materialized in process against the demo market and a real DuckDB file: what lands, that a
re-run changes nothing, and that bad reports are refused with a clear message, nothing half-written, raw kept."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
from dagster_duckdb import DuckDBResource
from google.analytics.data_v1beta.types import RunReportRequest, RunReportResponse

from assets.ingestion import INGESTION_ASSETS
from orchestration.resources.ads import DemoAdsReportingResource
from orchestration.resources.ga4 import DemoGA4Resource
from rl.world.world import DemoWorld
from tests.conftest import scaled

DAY = "2024-12-10"  # window 12-07..12-10 with the 3-day lookback, over the days already loaded
HISTORY_START = dt.date(2024, 11, 26)
TABLES = ("ga4_sessions", "ga4_conversions", "ad_performance", "ad_conversion_lag")


@pytest.fixture
def env(tmp_path, monkeypatch, reference_params):
    monkeypatch.setenv("GAELP_DATA_DIR", str(tmp_path / "data"))
    world_file = tmp_path / "world.yaml"
    world_file.write_text(scaled(reference_params, 0.1).to_yaml())
    world = {"world_dir": str(tmp_path / "world"), "world_file": str(world_file), "seed": 3}
    return {
        "tmp": tmp_path,
        "world": world,
        "resources": {
            "ga4": DemoGA4Resource(**world),
            "ads": DemoAdsReportingResource(**world),
            "duckdb": DuckDBResource(database=str(tmp_path / "warehouse.duckdb")),
        },
    }


def _materialize_range(resources, first, last, raise_on_error=True):
    tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    return dg.materialize(INGESTION_ASSETS, resources=resources, tags=tags, raise_on_error=raise_on_error)


def _materialize(resources, partition=DAY, raise_on_error=True):
    return dg.materialize(INGESTION_ASSETS, partition_key=partition, resources=resources, raise_on_error=raise_on_error)


def _table(path: Path, table: str) -> pl.DataFrame:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.sql(f"SELECT * FROM raw.{table} ORDER BY ALL").pl()


def _failure(result: dg.ExecuteInProcessResult) -> str:
    failures = [e for e in result.all_events if e.is_step_failure]
    assert failures, "the run should have failed"
    return "\n".join(e.step_failure_data.error.to_string() for e in failures)


def test_a_range_lands_what_the_world_reports_and_a_rerun_changes_nothing(env):
    result = _materialize_range(env["resources"], "2024-12-07", DAY)
    assert result.success
    db = env["tmp"] / "warehouse.duckdb"
    first = {t: _table(db, t) for t in TABLES}
    window = (dt.date(2024, 12, 7), dt.date(2024, 12, 10))
    # nothing was loaded before the range: no lookback reaches before its first day (issue 15: a delivery day
    # without the settings report's day next to it cannot be calibrated)
    for t in (*TABLES, "ad_settings"):
        table = first.get(t, _table(db, t))
        assert table.height > 0
        assert table["date"].min() >= window[0] and table["date"].max() <= window[1], t
        if t != "ad_conversion_lag":  # the lag report has only click days with conversions so far
            assert (table["date"].min(), table["date"].max()) == window, t
    assert first["ga4_sessions"]["date"].n_unique() == 4  # every day has delivery
    facts = DemoWorld.open(env["world"]["world_dir"], env["world"]["world_file"], seed=3).frames()
    in_window = pl.col("date").is_between(*window)
    perf = first["ad_performance"]
    assert perf["cost_micros"].sum() == facts["ads"].filter(in_window)["cost_micros"].sum()
    assert perf["clicks"].sum() == facts["ads"].filter(in_window)["clicks"].sum()
    assert first["ga4_sessions"]["sessions"].sum() == facts["sessions"].filter(in_window)["sessions"].sum()
    assert set(perf["platform"]) == {"google_ads", "meta", "tiktok", "microsoft_ads"}
    meta = result.asset_materializations_for_node("ad_performance")[-1].metadata
    assert meta["rows"].value == perf.height and "preview" in meta
    raw = list((env["tmp"] / "data" / "raw" / "ga4_sessions").rglob("*.jsonl.gz"))
    assert len(raw) == 1

    rerun = _materialize(env["resources"])  # the last day again: its lookback covers the days already loaded
    assert rerun.success
    assert "2024-12-07..2024-12-10 (partitions 2024-12-10..2024-12-10, 3-day lookback)" in str(
        rerun.asset_materializations_for_node("ad_performance")[0].metadata["window"]
    )
    for t in TABLES:
        assert _table(db, t).equals(first[t]), f"{t} changed on re-materialization"


def test_a_later_partition_replaces_only_its_lookback_over_the_days_loaded(env):
    assert _materialize_range(env["resources"], "2024-12-01", "2024-12-29").success
    db = env["tmp"] / "warehouse.duckdb"
    before = {t: _table(db, t) for t in ("ga4_sessions", "ad_performance", "ad_settings")}
    assert _materialize(env["resources"], "2024-12-30").success
    # GA4 re-pulls 3 days (12-27..12-30); the click-date conversion report 30, but only over the days loaded
    # (12-01..12-30, not 11-30); the settings only the day
    for table, first_replaced in (
        ("ga4_sessions", dt.date(2024, 12, 27)),
        ("ad_performance", dt.date(2024, 12, 1)),
        ("ad_settings", dt.date(2024, 12, 30)),
    ):
        after = _table(db, table)
        untouched = pl.col("date") < first_replaced
        assert after.filter(untouched).equals(before[table].filter(untouched)), table
        assert (after["date"].min(), after["date"].max()) == (dt.date(2024, 12, 1), dt.date(2024, 12, 30)), table


class _TamperedGA4(DemoGA4Resource):
    """The demo GA4 property with one fault injected into each response page."""

    fault: str

    def _run_report(self, request: RunReportRequest) -> RunReportResponse:
        response = super()._run_report(request)
        pb = RunReportResponse.pb(response)
        if self.fault == "renamed_header":
            pb.metric_headers[0].name = "sessionz"
        elif self.fault == "bad_metric":
            pb.rows[3].metric_values[0].value = "12,5"
        elif self.fault == "duplicate_row":
            pb.rows.append(pb.rows[0])
            pb.row_count += 1
        elif self.fault == "empty_day":
            keep = [r for r in pb.rows if r.dimension_values[0].value != "20241209"]
            del pb.rows[:]
            pb.rows.extend(keep)
            pb.row_count = len(keep)
        return response


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("renamed_header", "sessionz"),
        ("bad_metric", "12,5"),
        ("duplicate_row", "share a key"),
        ("empty_day", "no rows for day(s) 2024-12-09"),
    ],
)
def test_bad_ga4_reports_are_refused_and_nothing_is_written(env, fault, message):
    assert _materialize_range(env["resources"], "2024-12-05", "2024-12-09").success  # the days before, loaded
    db = env["tmp"] / "warehouse.duckdb"
    before = _table(db, "ga4_sessions")
    resources = {**env["resources"], "ga4": _TamperedGA4(**env["world"], fault=fault)}
    result = dg.materialize(
        [a for a in INGESTION_ASSETS if a.key.path[-1] == "ga4_sessions"],
        partition_key=DAY,
        resources=resources,
        raise_on_error=False,
    )
    assert not result.success
    assert message in _failure(result)
    assert _table(db, "ga4_sessions").equals(before)  # the failed window left the table as it was
    kept = list((env["tmp"] / "data" / "raw" / "ga4_sessions" / "2024-12-07_2024-12-10").glob("*.jsonl.gz"))
    assert len(kept) == 1  # ... and what was received is still on disk


class _UnknownCampaignAds(DemoAdsReportingResource):
    """The demo accounts, except that Meta reports a campaign the registry does not have."""

    def _search_stream(self, customer_id, query, through):
        batches = list(super()._search_stream(customer_id, query, through))
        if customer_id == "3456789012" and batches and batches[0].results:
            batches[0].results[0].campaign.id = 999
        return batches


def test_a_campaign_the_account_does_not_have_is_refused(env):
    resources = {**env["resources"], "ads": _UnknownCampaignAds(**env["world"])}
    perf = [a for a in INGESTION_ASSETS if a.key.path[-1] == "ad_performance"]
    result = dg.materialize(perf, partition_key=DAY, resources=resources, raise_on_error=False)
    assert not result.success
    assert "campaign id(s) [999] on meta are not in the campaign registry" in _failure(result)
    with duckdb.connect(str(env["tmp"] / "warehouse.duckdb")) as con:
        tables = con.sql("SELECT table_name FROM information_schema.tables").pl()["table_name"].to_list()
    assert "ad_performance" not in tables
    kept = sorted(p.name for p in (env["tmp"] / "data" / "raw" / "ad_performance").rglob("*.jsonl.gz"))
    assert [name.split("-", 1)[1] for name in kept] == [
        "google_ads.jsonl.gz",
        "meta.jsonl.gz",
        "microsoft_ads.jsonl.gz",
        "tiktok.jsonl.gz",
    ]


def test_a_partition_outside_the_partitions_is_refused(env):
    with pytest.raises(Exception, match="Could not find a partition with key `1999-01-01`"):
        _materialize(env["resources"], "1999-01-01")


def test_the_modifiers_in_force_land_per_day_from_the_search_platforms(env):
    world = DemoWorld.open(env["world"]["world_dir"], env["world"]["world_file"], seed=3)
    world.advance_to(dt.date.fromisoformat(DAY))
    world.push(401, device_modifiers=[1.25, 0.8, 0.0], hour_modifiers=[0.5, 1, 1, 1, 1, 2], source="test")
    assert _materialize(env["resources"]).success
    raw = _table(env["tmp"] / "warehouse.duckdb", "ad_modifiers")
    assert set(raw["date"]) == {dt.date.fromisoformat(DAY)}  # the settings' way: the partition day only
    assert set(raw["platform"]) == {"google_ads", "microsoft_ads"}
    per_campaign = dict(raw.group_by("campaign_id").len().iter_rows())
    assert per_campaign == {101: 3, 102: 3, 103: 3, 104: 3, 401: 3 + 6 * 7}  # only 401 is scheduled by hour
    bing = raw.filter(pl.col("campaign_id") == 401)
    devices = bing.filter(pl.col("criterion_type") == "DEVICE").sort("criterion_id")
    assert devices.select("criterion_id", "criterion_device").rows() == [
        (30000, "desktop"),
        (30001, "mobile"),
        (30002, "tablet"),
    ]
    assert devices["bid_modifier"].round(6).to_list() == [0.8, 1.25, 0.0]
    schedule = bing.filter(pl.col("criterion_type") == "AD_SCHEDULE")
    by_block = schedule.group_by("start_hour", "end_hour").agg(pl.col("bid_modifier").round(6).unique(), pl.len())
    assert sorted(by_block.rows()) == [
        (0, 4, [0.5], 7),
        (4, 8, [1.0], 7),
        (8, 12, [1.0], 7),
        (12, 16, [1.0], 7),
        (16, 20, [1.0], 7),
        (20, 24, [2.0], 7),
    ]
    perf = _table(env["tmp"] / "warehouse.duckdb", "ad_performance")
    day = perf.filter((pl.col("campaign_id") == 401) & (pl.col("date") == dt.date.fromisoformat(DAY)))
    assert set(day["device"]) == {"mobile", "desktop"}  # the excluded tablet bought nothing that day


def test_a_raw_table_of_an_older_grain_is_refused_by_name(env):
    with duckdb.connect(str(env["tmp"] / "warehouse.duckdb")) as con:  # ad_performance before it had devices
        con.execute("CREATE SCHEMA raw")
        con.execute(
            "CREATE TABLE raw.ad_performance (platform VARCHAR, campaign_id BIGINT, campaign_name VARCHAR, "
            "date DATE, hour TINYINT, impressions BIGINT, clicks BIGINT, cost_micros BIGINT, conversions DOUBLE, "
            "conversions_value DOUBLE, search_impression_share DOUBLE)"
        )
    perf = [a for a in INGESTION_ASSETS if a.key.path[-1] == "ad_performance"]
    result = dg.materialize(perf, partition_key=DAY, resources=env["resources"], raise_on_error=False)
    assert not result.success
    message = _failure(result)
    assert "raw.ad_performance has columns" in message and "DROP TABLE raw.ad_performance" in message
