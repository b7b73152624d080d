"""The learning assets in process on tiny configs: training (fallback params, flagged), evaluation against every
baseline, the oracle and the LP bound, a world-vs-simulator comparison on a copy of the demo world, the registry
row, and the blocking promotion gate."""

from __future__ import annotations

import dataclasses

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from assets.learning import LEARNING_ASSETS, TRAINING_KNOBS, PolicyTrainingConfig
from rl.training.config import TrainConfig
from tests.conftest import scaled

# The asset's defaults as tuned (issue 16 derived the config from TrainConfig: these must not move with it).
ASSET_DEFAULTS = {
    "algo": "ppo",
    "total_timesteps": 200_000,
    "n_envs": 16,
    "seed": 0,
    "episode_days": 14,
    "warmup_days": 28,
    "settle_days": None,
    "net_arch": [256, 256],
    "learning_rate": 3e-5,
    "log_std_init": -2.0,
    "n_steps": 14,
    "batch_size": 112,
    "residual_base": None,
    "residual_kwargs": {"slack": 1.0, "decay": 0.5},
    "residual_scale": 0.3,
    "paired": True,
    "teacher": "ceiling",
    "bc_cycles": 48,
    "dagger_rounds": 3,
    "dagger_envs": 4,
    "dagger_share": 0.4,
    "bc_epochs": 100,
    "select_seeds": [601],
    "engine": "fast",
    "oracle_budget_step": 25.0,
    "checkpoint_every": 0,
    "progress_bar": False,
    "tensorboard": True,
    "max_wall_s": 300.0,
    "uncertainty_scale": 0.0,
    "lower_bound_volumes": True,
}

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


@pytest.fixture
def demo_env(tmp_path, monkeypatch, reference_params):
    """The demo environment on a small world file, with its data directory under tmp_path."""
    world_file = tmp_path / "world.yaml"
    world_file.write_text(scaled(reference_params, 0.05).to_yaml())
    monkeypatch.setenv("GAELP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GAELP_WORLD_FILE", str(world_file))
    monkeypatch.setenv("GAELP_ENV", "demo")


@pytest.mark.usefixtures("demo_env")
def test_learning_assets_materialize(tmp_path):
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
    # the baselines and yardsticks came from evaluation_yardsticks, run for the same setup
    assert meta["yardsticks"].value == "recorded"
    yard = result.asset_materializations_for_node("evaluation_yardsticks")[0].metadata
    assert yard["eval_seeds"].value == EVAL["eval_seeds"]
    assert "informed_ceiling" in yard["scores_table"].value
    if not check.passed:
        assert any("does not beat" in r for r in check.metadata["reasons"].value)
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT version, gate_passed, promoted FROM policy_registry").fetchall()
    assert rows == [(1, check.passed, check.passed)]
    assert (tmp_path / "data" / "models" / "policy-v1.zip").exists()


@pytest.mark.usefixtures("demo_env")
def test_evaluation_reruns_yardsticks_run_for_another_setup(tmp_path):
    """Yardsticks recorded for other seeds are not used: the evaluation runs its own and says why."""
    resources = {"duckdb": DuckDBResource(database=str(tmp_path / "warehouse.duckdb"))}
    fast = EVAL | {"world_days": 0, "oracle_budget_step": 50.0, "ceiling": False}
    first = dg.materialize(
        LEARNING_ASSETS,
        resources=resources,
        run_config={"ops": {"bidding_policy": {"config": TRAIN}, "policy_evaluation": {"config": fast}}},
        raise_on_error=False,  # the tiny model may well fail the gate
    )
    assert first.asset_materializations_for_node("policy_evaluation")[0].metadata["yardsticks"].value == "recorded"
    result = dg.materialize(
        LEARNING_ASSETS[2:],
        resources=resources,
        run_config={"ops": {"policy_evaluation": {"config": fast | {"eval_seeds": [903]}}}},
        raise_on_error=False,
    )
    meta = result.asset_materializations_for_node("policy_evaluation")[0].metadata
    assert meta["yardsticks"].value == ("the yardsticks recorded were run for another setup (differs in eval_seeds)")
    assert {"policy", "static", "oracle", "lp_bound"} <= set(meta["scores"].value)


def test_evaluation_refuses_overlapping_seeds(tmp_path, monkeypatch):
    monkeypatch.setenv("GAELP_DATA_DIR", str(tmp_path / "data"))
    result = dg.materialize(
        LEARNING_ASSETS[1:],
        resources={"duckdb": DuckDBResource(database=str(tmp_path / "w.duckdb"))},
        run_config={"ops": {"policy_evaluation": {"config": EVAL | {"tune_seeds": [901]}}}},
        raise_on_error=False,
    )
    assert not result.success


def test_training_config_defaults_are_the_tuned_ones():
    assert PolicyTrainingConfig().model_dump() == ASSET_DEFAULTS
    assert PolicyTrainingConfig().train_config() == TrainConfig(
        total_timesteps=200_000,
        n_envs=16,
        net_arch=(256, 256),
        learning_rate=3e-5,
        log_std_init=-2.0,
        batch_size=112,
        residual_kwargs=(("decay", 0.5), ("slack", 1.0)),
        paired=True,
        teacher="ceiling",
        bc_cycles=48,
        dagger_rounds=3,
        dagger_envs=4,
        dagger_share=0.4,
        bc_epochs=100,
        select_seeds=(601,),
        progress_bar=False,
        max_wall_s=300.0,
    )


def test_every_training_knob_reaches_train_config():
    """Each exposed knob is a `TrainConfig` field and arrives there (as a tuple where `TrainConfig` holds one)."""
    assert set(TRAINING_KNOBS) <= {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(PolicyTrainingConfig.model_fields) == set(ASSET_DEFAULTS)
    changed = {
        "algo": "sac",
        "total_timesteps": 64,
        "n_envs": 3,
        "seed": 7,
        "episode_days": 5,
        "warmup_days": 9,
        "settle_days": 2,
        "net_arch": [16, 8],
        "learning_rate": 1e-3,
        "log_std_init": -0.5,
        "n_steps": 4,
        "batch_size": 8,
        "residual_kwargs": {"b": 2.0, "a": 1.0},
        "residual_scale": 0.1,
        "teacher": "proportional",
        "bc_cycles": 2,
        "dagger_rounds": 1,
        "dagger_envs": 2,
        "dagger_share": 0.5,
        "bc_epochs": 5,
        "select_seeds": [1, 2],
        "engine": "full",
        "oracle_budget_step": 5.0,
        "checkpoint_every": 32,
        "progress_bar": True,
        "tensorboard": False,
        "max_wall_s": None,
    }
    assert set(changed) == set(TRAINING_KNOBS) - {"residual_base", "paired"}
    assert all(changed[k] != ASSET_DEFAULTS[k] for k in changed)
    tc = PolicyTrainingConfig(**changed).train_config()
    for name, value in changed.items():
        expected = tuple(sorted(value.items())) if isinstance(value, dict) else value
        expected = tuple(expected) if isinstance(expected, list) else expected
        assert getattr(tc, name) == expected, name
    assert tc.paired
    # a residual base: no warm start, and the twin is the base
    residual = PolicyTrainingConfig(residual_base="online_lp", paired=False).train_config()
    assert (residual.residual_base, residual.bc_cycles, residual.paired) == ("online_lp", 0, False)
    assert PolicyTrainingConfig(residual_base="online_lp").train_config().paired
    # no warm start and no residual base: nothing to pair with
    assert not PolicyTrainingConfig(bc_cycles=0).train_config().paired
