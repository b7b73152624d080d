"""The learning assets in process on tiny configs: training (fallback params, flagged), evaluation against every
baseline, the oracle and the LP bound, a world-vs-simulator comparison on a copy of the demo world, the registry
row, and the blocking promotion gate."""

from __future__ import annotations

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from assets.learning import LEARNING_ASSETS
from tests.conftest import scaled

TRAIN = {
    "total_timesteps": 64,
    "n_envs": 2,
    "episode_days": 3,
    "warmup_days": 7,
    "settle_days": 3,
    "net_arch": [16],
    "n_steps": 8,
    "batch_size": 16,
    "tensorboard": False,
    "bc_cycles": 1,
    "dagger_rounds": 1,
    "bc_epochs": 5,
    "select_seeds": [],
}
EVAL = {"eval_seeds": [901, 902], "tune_seeds": [], "n_envs": 2, "oracle_budget_step": 25.0, "world_days": 3}


def test_learning_assets_materialize(tmp_path, monkeypatch, reference_params):
    world_file = tmp_path / "world.yaml"
    world_file.write_text(scaled(reference_params, 0.05).to_yaml())
    monkeypatch.setenv("GAELP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GAELP_WORLD_FILE", str(world_file))
    monkeypatch.setenv("GAELP_ENV", "demo")
    db = tmp_path / "warehouse.duckdb"
    result = dg.materialize(
        LEARNING_ASSETS,
        resources={"duckdb": DuckDBResource(database=str(db))},
        run_config={"ops": {"bidding_policy": {"config": TRAIN}, "policy_evaluation": {"config": EVAL}}},
        raise_on_error=False,
    )
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "promotion_gate"
    # a blocking check that fails stops the run after the materialization (the tiny model loses to the baselines)
    assert result.success == check.passed
    train_meta = result.asset_materializations_for_node("bidding_policy")[0].metadata
    assert train_meta["params_source"].value == "fallback_world_file_with_noise"
    assert train_meta["fallback_params"].value is True
    assert train_meta["learns"].value.startswith(
        "the budget, bid and modifier actions themselves, distilled from the ceiling (DAgger)"
    )
    assert "data:image/png;base64," in train_meta["learning_curve"].value
    meta = result.asset_materializations_for_node("policy_evaluation")[0].metadata
    assert "data:image/png;base64," in meta["scores_chart"].value
    scores = meta["scores"].value
    assert {"policy", "static", "online_lp_patterns", "informed_ceiling", "oracle", "lp_bound"} <= set(scores)
    assert {"world_score", "sim_score", "gap"} <= set(meta["world_vs_sim"].value)
    if not check.passed:
        assert any("does not beat" in r for r in check.metadata["reasons"].value)
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT version, gate_passed, promoted FROM policy_registry").fetchall()
    assert rows == [(1, check.passed, check.passed)]
    assert (tmp_path / "data" / "models" / "policy-v1.zip").exists()


def test_evaluation_refuses_overlapping_seeds(tmp_path, monkeypatch):
    monkeypatch.setenv("GAELP_DATA_DIR", str(tmp_path / "data"))
    result = dg.materialize(
        LEARNING_ASSETS[1:],
        resources={"duckdb": DuckDBResource(database=str(tmp_path / "w.duckdb"))},
        run_config={"ops": {"policy_evaluation": {"config": EVAL | {"tune_seeds": [901]}}}},
        raise_on_error=False,
    )
    assert not result.success
