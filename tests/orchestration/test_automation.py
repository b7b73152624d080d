"""Schedules, sensors and jobs: the Definitions load with them, and the sensors react to planted events."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import duckdb
import pytest

from assets.bidding import KILL_SWITCH_TAG
from assets.partitions import DAILY_PARTITIONS


@pytest.fixture(scope="module")
def defs():
    from orchestration.definitions import defs

    return defs


def test_the_definitions_load_with_jobs_schedules_and_sensors(defs):
    jobs = {j.name for j in defs.resolve_all_job_defs()}
    assert {"daily_bidding_job", "bidding_loop_job", "safe_push_job", "retrain_job", "daily_data_job"} <= jobs
    assert {s.name for s in defs.schedules} == {"daily_bidding_schedule", "weekly_retrain_schedule"}
    assert {s.name for s in defs.sensors} == {"retrain_on_failed_checks", "cpa_kill_switch", "record_run_failures"}
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"daily_bid_plan", "bid_push", "market_calibration"} <= keys
    checks = {k.name for k in graph.asset_check_keys if k.asset_key == dg.AssetKey("daily_bid_plan")}
    assert checks == {
        "total_within_account_budget",
        "bids_within_max_bid",
        "changes_within_daily_step",
        "campaigns_known_and_enabled",
        "no_nan",
        "within_platform_rules",
        "modifiers_within_rules",
    }
    daily = defs.resolve_job_def("daily_bidding_job")
    selected = {k.to_user_string() for k in daily.asset_layer.asset_graph.get_all_asset_keys()}
    assert {"ad_performance", "fct_campaign_daily", "discovered_patterns", "daily_bid_plan", "bid_push"} <= selected
    retrain = defs.resolve_job_def("retrain_job")
    assert dg.AssetKey("market_calibration") in retrain.asset_layer.executable_asset_keys


def test_the_daily_schedule_runs_yesterdays_partition(defs):
    schedule = defs.get_schedule_def("daily_bidding_schedule")
    when = dt.datetime(2025, 3, 2, 6, 0, tzinfo=dt.UTC)
    with dg.build_schedule_context(scheduled_execution_time=when) as context:
        (request,) = list(schedule.evaluate_tick(context).run_requests)
    assert request.partition_key == "2025-03-01"
    assert defs.get_schedule_def("weekly_retrain_schedule").cron_schedule == "0 3 * * 1"


def _published(tmp_path, rows):
    path = tmp_path / "published" / "warehouse.duckdb"
    path.parent.mkdir(parents=True)
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE fct_campaign_daily (date DATE, spend DOUBLE, key_events DOUBLE)")
        con.executemany("INSERT INTO fct_campaign_daily VALUES (?, ?, ?)", rows)


def test_the_kill_switch_sensor_requests_the_safe_push_on_a_planted_cpa_breach(tmp_path, monkeypatch):
    from orchestration.sensors import cpa_kill_switch

    monkeypatch.setenv("GAELP_DATA_DIR", str(tmp_path))
    last = dt.date.fromisoformat(DAILY_PARTITIONS.get_last_partition_key())
    days = [last - dt.timedelta(days=i) for i in range(5)]
    _published(tmp_path, [(d, 500.0, 2.0 if i < 3 else 6.0) for i, d in enumerate(days)])  # CPA 250 for 3 days
    with dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral()) as context:
        request = cpa_kill_switch(context)
    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == last.isoformat() and KILL_SWITCH_TAG in request.tags
    assert request.run_key == f"kill-switch-{last.isoformat()}"


def test_the_kill_switch_sensor_stays_quiet_when_cpa_is_healthy(tmp_path, monkeypatch):
    from orchestration.sensors import cpa_kill_switch

    monkeypatch.setenv("GAELP_DATA_DIR", str(tmp_path))
    last = dt.date.fromisoformat(DAILY_PARTITIONS.get_last_partition_key())
    _published(tmp_path, [(last - dt.timedelta(days=i), 500.0, 2.0 if i != 1 else 6.0) for i in range(3)])
    with dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral()) as context:
        assert isinstance(cpa_kill_switch(context), dg.SkipReason)


def test_a_failed_backtest_check_requests_retraining_once():
    from orchestration.sensors import retrain_on_failed_checks

    @dg.asset(
        name="market_calibration", check_specs=[dg.AssetCheckSpec("calibration_backtest", asset="market_calibration")]
    )
    def fake_calibration():
        return dg.MaterializeResult(
            check_results=[dg.AssetCheckResult(check_name="calibration_backtest", passed=False)]
        )

    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize([fake_calibration], instance=instance).success
    with dg.build_sensor_context(instance=instance) as context:
        requests = retrain_on_failed_checks(context)
        assert len(requests) == 1 and "calibration_backtest" in requests[0].run_key
        again = retrain_on_failed_checks(
            context.with_cursor(context.cursor) if hasattr(context, "with_cursor") else context
        )
    assert isinstance(again, dg.SkipReason)
