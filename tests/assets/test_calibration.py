"""The calibration asset on the session's demo warehouse: it fits, stores the fit with its hash and window, and
runs the blocking backtest check."""

from __future__ import annotations

import json

import dagster as dg
import duckdb
import pytest

from assets.calibration import BACKTEST, BACKTEST_GOAL, market_calibration
from rl.market.params import parse_market_params


@pytest.fixture(scope="module")
def calibrated(built):
    # 60 days at 20% volume and two replicates: a noise floor too rough to judge by, so the pass bar is wide here
    # (benchmarks.calibration holds a year of the full-volume account to the default goal)
    # the goal is set out of reach here (a margin of 0.01) while the block stays wide: the goal's miss is a warning
    config = {
        "window_days": 60,
        "backtest_markets": 2,
        "floor_margin": 0.01,
        "total_tolerance": 0.0,
        "block_floor_margin": 100.0,
        "block_total_tolerance": 10.0,
    }
    result = dg.materialize(
        [market_calibration],
        resources=built["resources"],
        instance=built["instance"],
        run_config={"ops": {"market_calibration": {"config": config}}},
        raise_on_error=False,
    )
    return built, result


def test_calibration_writes_params_with_hash_window_and_flags(calibrated):
    built, result = calibrated
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    artifact = built["tmp"] / "data" / "calibration" / "market_calibration.json"
    stored = json.loads(artifact.read_text())
    params = parse_market_params(stored["params"], str(artifact))
    assert stored["params_hash"] == params.params_hash()
    assert stored["window"] == {"first": "2024-12-01", "last": "2025-01-29"}
    assert {c.id for c in params.campaigns} == {101, 102, 103, 104, 201, 202, 301, 401}
    assert any("prior" in f for f in stored["flags"])  # what is not fitted says so
    mats = result.asset_materializations_for_node("market_calibration")
    meta = mats[0].metadata
    assert meta["params_hash"].value == params.params_hash()
    assert "data:image/png;base64," in meta["fit"].value
    with duckdb.connect(str(built["tmp"] / "data" / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("select params_hash, first_date, last_date from main.market_calibrations").fetchall()
    assert (params.params_hash(),) == (rows[-1][0],)


def test_backtest_check_reports_wape_per_platform(calibrated):
    _, result = calibrated
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    check, goal = checks[BACKTEST], checks[BACKTEST_GOAL]
    assert check.passed and check.metadata["failures"].value == "none"
    # the goal missed: reported as a warning with the pairs that missed it, and the asset still materialized
    assert not goal.passed and goal.severity == dg.AssetCheckSeverity.WARN and "WAPE" in goal.metadata["failures"].value
    assert result.success
    assert check.metadata["held_out"].value == "2025-01-16 .. 2025-01-29"
    assert "google_ads" in check.metadata["wape"].value and "conversions" in check.metadata["wape"].value
