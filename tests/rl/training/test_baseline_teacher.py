"""Warm start by imitating a baseline (DAgger on the student's own states) and validation-based model selection."""

from __future__ import annotations

import time

import numpy as np
import pytest

from rl.policies.baselines import BASELINES
from rl.training.imitation import budget_weights, collect_dagger, distill
from rl.training.train import TrainConfig, build_model, make_venv, train
from tests.rl.training.conftest import tiny_config


def test_baseline_teacher_warm_start_and_selection(tmp_path, tiny_params):
    cfg = tiny_config(
        total_timesteps=64, bc_cycles=2, bc_epochs=30, teacher="proportional", dagger_rounds=2, select_seeds=(7,)
    )
    res = train(tiny_params, cfg, tmp_path)
    assert res.bc["teacher"] == "proportional" and len(res.bc["rounds"]) == 2
    per_cycle = cfg.dagger_envs * cfg.episode_days  # markets of a teaching cycle × its decided days
    assert res.bc["rounds"][1]["samples"] == 2 * res.bc["rounds"][0]["samples"] == 2 * per_cycle
    assert res.bc["markets_per_cycle"] == cfg.dagger_envs
    assert res.extra["kept"] in ("rl", "warm_start")
    assert np.isfinite(res.extra["select_warm_score"]) and np.isfinite(res.extra["select_rl_score"])
    assert res.model_path.exists() and res.timesteps >= 64


def test_the_students_rounds_get_their_share_of_the_teaching_time(tiny_params):
    # far more cycles than fit before the deadline: a teacher-driven first round would use up all the time, and the
    # student would never drive
    cfg = tiny_config(bc_cycles=30_000, bc_epochs=1, teacher="proportional", dagger_rounds=3)
    venv = make_venv(tiny_params, cfg, seed=3)
    model = build_model(cfg, venv, None)
    info = distill(model, venv, cfg, deadline=time.perf_counter() + 1.5)
    samples = [r["samples"] for r in info["rounds"]]
    assert len(samples) == 3 and 0 < samples[0] < samples[1] < samples[2]


def test_a_budget_error_weighs_as_the_error_of_its_log_share():
    # labels: campaign 0 at 30 a day of 500 (share 0.06), campaign 1 at 300; then the two bid actions
    labels = np.array([[2 * 0.06 - 1, 2 * 0.6 - 1, 0.2, -0.1]])
    w = budget_weights(labels, n_campaigns=2, floor=0.04, bid_range=4.0)
    np.testing.assert_array_equal(w[:, 2:], 1.0)
    # a small error in a small share s costs as the same relative error in log(s + floor), in units of log(4)
    d_share = 1e-4
    expected = (np.log((0.06 + d_share + 0.04) / (0.06 + 0.04)) / np.log(4.0)) ** 2
    assert w[0, 0] * (2 * d_share) ** 2 == pytest.approx(expected, rel=0.01)
    # a large share's error weighs as before, and far less per unit of action than the small one's
    assert w[0, 1] == 1.0 and w[0, 0] > 10
    with pytest.raises(ValueError, match="bc_budget_floor"):
        TrainConfig(bc_budget_floor=0.0)


def test_dagger_labels_are_the_teachers_actions(tiny_params):
    venv = make_venv(tiny_params, tiny_config(), seed=1)
    teacher = BASELINES["online_lp"].for_env(venv)
    obs, acts, weights, rets = collect_dagger(venv, teacher, 1, 0.98, seed=5)
    assert obs.shape == (2 * 4, venv.schema.obs_size) and acts.shape == (2 * 4, venv.schema.action_size)
    np.testing.assert_allclose(acts, np.clip(teacher.act(obs), -1, 1), atol=1e-6)
    assert np.all(weights == 1.0) and np.all(np.isfinite(rets))


def test_unknown_teacher_is_an_error():
    with pytest.raises(ValueError, match="teacher"):
        TrainConfig(teacher="nobody")


def test_fixed_bids_teacher_keeps_the_budgets_and_sets_the_bids(tiny_params):
    from rl.training.imitation import baseline_teacher

    venv = make_venv(tiny_params, tiny_config(), seed=2)
    obs = venv.reset()
    cfg = tiny_config(teacher="online_lp", teacher_kwargs=(("slack", 1.0),), teacher_bid_mult=0.8)
    teacher, info = baseline_teacher(venv, cfg)
    base = BASELINES["online_lp"].for_env(venv, slack=1.0)
    got, ref = teacher.act(obs), base.act(obs)
    c = venv.schema.n_campaigns
    np.testing.assert_allclose(got[:, :c], ref[:, :c])
    _, mults = venv.codec.decode(got)
    np.testing.assert_allclose(mults, 0.8)
    assert info["teacher_kwargs"] == {"slack": 1.0} and info["teacher_bid_mult"] == 0.8
