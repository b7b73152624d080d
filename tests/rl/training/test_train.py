"""Tiny trainings end to end: PPO (with the oracle warm start), SAC, checkpoints and resume."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rl.policies.base import run_episode
from rl.policies.sb3 import SB3Policy
from rl.training.params import make_params_sampler
from rl.training.train import TrainConfig, latest_checkpoint, load_model, make_venv, train
from tests.rl.training.conftest import tiny_config


def test_tiny_ppo_training_runs_end_to_end(tmp_path, tiny_params):
    unc = {c.id: dict.fromkeys(("volume", "rival_median", "cvr", "ctr"), 0.1) for c in tiny_params.campaigns}
    cfg = tiny_config(total_timesteps=160, bc_cycles=1, bc_epochs=20, tensorboard=True, progress_bar=True)
    res = train(tiny_params, cfg, tmp_path, params_sampler=make_params_sampler(tiny_params, unc))
    assert res.timesteps >= 160 and res.model_path.exists()
    assert res.curve and all(np.isfinite(c["score"]) for c in res.curve)
    assert res.bc["samples"] == 2 * 4 and res.bc["loss_last"] <= res.bc["loss_first"]
    assert any((tmp_path / "tensorboard").rglob("events.out.tfevents.*"))
    info = json.loads((tmp_path / "training.json").read_text())
    assert info["timesteps"] == res.timesteps
    venv = make_venv(tiny_params, cfg, seed=9)
    out = run_episode(SB3Policy(load_model(res.model_path, "ppo")), venv, seed=1)
    assert np.all(np.isfinite(out.scores))


def test_training_is_seeded(tmp_path, tiny_params):
    a = train(tiny_params, tiny_config(), tmp_path / "a")
    b = train(tiny_params, tiny_config(), tmp_path / "b")
    obs = np.random.default_rng(0).normal(size=(3, a.schema.obs_size)).astype(np.float32)
    np.testing.assert_allclose(a.model.predict(obs, deterministic=True)[0], b.model.predict(obs, deterministic=True)[0])


def test_resume_from_checkpoint_continues_the_step_count(tmp_path, tiny_params):
    first = train(tiny_params, tiny_config(total_timesteps=64, checkpoint_every=32), tmp_path)
    ckpt = latest_checkpoint(tmp_path)
    assert ckpt is not None and ckpt.name == "model_64_steps.zip" and first.timesteps == 64
    resumed = train(tiny_params, tiny_config(total_timesteps=128, checkpoint_every=32), tmp_path, resume_from=ckpt)
    assert resumed.timesteps == 128
    assert latest_checkpoint(tmp_path).name == "model_128_steps.zip"
    assert all(c["timesteps"] > 64 for c in resumed.curve)


def test_sac_is_selectable(tmp_path, tiny_params):
    res = train(tiny_params, tiny_config(algo="sac", total_timesteps=48, batch_size=8), tmp_path)
    assert res.timesteps >= 48 and type(res.model).__name__ == "SAC"
    assert type(load_model(res.model_path, "sac")).__name__ == "SAC"


def test_bad_config_is_an_error():
    with pytest.raises(ValueError, match="algo"):
        TrainConfig(algo="dqn")


def test_teacher_spends_the_whole_budget_and_ignores_bids_where_the_oracle_does_not_spend(tiny_params):
    from rl.env.guardrails import ActionCodec
    from rl.training.imitation import teacher_actions

    venv = make_venv(tiny_params, tiny_config(), seed=3)
    venv.reset()
    acts, weights = teacher_actions(venv, budget_step=5.0)
    raw = venv.oracle_results(5.0)
    n_c = venv.schema.n_campaigns
    shares, mults = ActionCodec.for_schema(venv.schema, venv.config.bid_range).decode(acts)
    for m, o in enumerate(raw):
        if o.budgets.sum() > 0:
            assert shares[m].sum() == pytest.approx(1.0)
            np.testing.assert_allclose(shares[m], o.budgets / o.budgets.sum(), atol=1e-9)
        np.testing.assert_array_equal(weights[m, :n_c], 1.0)
        np.testing.assert_array_equal(weights[m, n_c : 2 * n_c], (o.budgets > 0).astype(float))
        np.testing.assert_array_equal(weights[m, 2 * n_c :], 0.0)  # modifiers held: nothing to imitate
        unfunded = o.budgets == 0
        np.testing.assert_allclose(
            (mults[m] * venv.sim.limits.ref_bids)[unfunded], venv.sim.reports.bids_now[m][unfunded], rtol=1e-9
        )
