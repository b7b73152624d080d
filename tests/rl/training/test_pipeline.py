"""The learning stages end to end on a tiny calibrated market whose Meta prospecting volume (202) the calibration
only bounds from below: training, its yardsticks and its evaluation run the same drawn markets."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pytest

from rl.training.params import LOWER_BOUND_REACH
from rl.training.pipeline import (
    calibration_path,
    eval_config,
    evaluate_and_register,
    run_yardsticks,
    train_policy,
)
from rl.training.train import make_venv
from rl.training.yardsticks import EvalSettings
from rl.world.paths import DEFAULT_WORLD_FILE
from tests.rl.training.conftest import tiny_config

BOUNDED = 202
SETTINGS = EvalSettings(eval_seeds=(901,), tune_seeds=(), n_envs=2, oracle_budget_step=50.0, ceiling=False)


@pytest.fixture
def calibrated_dir(tmp_path, tiny_params):
    path = calibration_path(tmp_path)
    path.parent.mkdir(parents=True)
    campaigns = {str(BOUNDED): {"uncertainty": {"volume": 0.2}, "volume_is_lower_bound": True}}
    path.write_text(json.dumps({"params": tiny_params.model_dump(mode="json"), "campaigns": campaigns}))
    return tmp_path


def test_lower_bound_volumes_reach_the_yardsticks_and_the_gate(calibrated_dir, tiny_params):
    run = train_policy(calibrated_dir, DEFAULT_WORLD_FILE, tiny_config(), lower_bound_volumes=True)
    assert run.info["volume_lower_bounds"] == [BOUNDED]
    ranges = ((BOUNDED, 1.0, LOWER_BOUND_REACH),)
    recorded = json.loads((calibrated_dir / "models" / "latest_training.json").read_text())["config"]
    tc = eval_config(recorded, SETTINGS)
    assert tc.campaign_volume_ranges == ranges

    # the evaluation's markets draw the bounded volume (and only it) upwards, per market
    venv = make_venv(tiny_params, tc, seed=0)
    venv.reset()
    scale = np.asarray(venv.sim.setup.volume_scale)
    col = tiny_params.campaign_ids.index(BOUNDED)
    others = np.delete(scale, col, axis=1)
    assert scale.shape == (SETTINGS.n_envs, len(tiny_params.campaign_ids))
    assert np.all(scale[:, col] >= 1.0) and np.all(scale[:, col] <= LOWER_BOUND_REACH)
    assert np.ptp(scale[:, col]) > 0 and np.all(others == 1.0)

    # yardsticks run without the draws are for another setup: the evaluation says so and runs its own
    _, path = run_yardsticks(calibrated_dir, DEFAULT_WORLD_FILE, tiny_config(), SETTINGS)
    assert json.loads(path.read_text())["key"]["campaign_volume_ranges"] == []
    with duckdb.connect(str(calibrated_dir / "w.duckdb")) as con:
        ev, _, _ = evaluate_and_register(calibrated_dir, con, SETTINGS)
    assert ev.extra["yardsticks"] == (
        "the yardsticks recorded were run for another setup (differs in campaign_volume_ranges)"
    )

    # with the same rule as training, they are used as recorded
    found, _ = run_yardsticks(calibrated_dir, DEFAULT_WORLD_FILE, tiny_config(), SETTINGS, lower_bound_volumes=True)
    assert found["key"]["campaign_volume_ranges"] == [list(ranges[0])]
    with duckdb.connect(str(calibrated_dir / "w.duckdb")) as con:
        ev, entry, _ = evaluate_and_register(calibrated_dir, con, SETTINGS)
    assert ev.extra["yardsticks"] == "recorded" and entry.version == 2
    assert {"policy", "static", "oracle", "lp_bound"} <= set(ev.table())
