"""Residual learning: a correction of a baseline that starts as the baseline, carries its baseline in the model
file, and is refused for baselines with per-market memory."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rl.policies.base import run_episode
from rl.policies.baselines import OnlineLPPolicy, ProportionalPolicy
from rl.policies.residual import ResidualSpec, ResidualVecEnv, combine, residual_spec
from rl.policies.sb3 import SB3Policy
from rl.training.model_registry import ModelRegistry
from rl.training.train import TrainConfig, load_model, make_venv, train
from tests.rl.training.conftest import tiny_config

LP = (("decay", 0.5), ("slack", 1.0))


def residual_config(**kw) -> TrainConfig:
    return tiny_config(residual_base="online_lp", residual_kwargs=LP, residual_scale=0.3, **kw)


class Offset:
    """`base` plus a constant action offset: what a residual policy with a constant correction must equal."""

    name = "offset"

    def __init__(self, base, offset):
        self.base, self.offset = base, np.asarray(offset, dtype=float)

    def reset(self, n_envs):
        self.base.reset(n_envs)

    def act(self, obs):
        return np.clip(self.base.act(obs) + self.offset, -1.0, 1.0)


def test_untrained_residual_model_acts_exactly_as_its_baseline(tmp_path, tiny_params):
    res = train(tiny_params, residual_config(total_timesteps=0), tmp_path)
    policy = SB3Policy(load_model(res.model_path, "ppo"))
    assert policy.residual is not None and policy.residual.base == "online_lp"
    venv = make_venv(tiny_params, tiny_config(), seed=3)
    lp = OnlineLPPolicy.for_env(venv, **dict(LP))
    venv.seed(11)
    obs = venv.reset()
    np.testing.assert_allclose(policy.act(obs), lp.act(obs), atol=1e-7)
    ours = run_episode(policy, venv, seed=5).scores
    theirs = run_episode(lp, venv, seed=5).scores
    np.testing.assert_array_equal(ours, theirs)


def test_trained_residual_model_keeps_its_baseline_through_save_and_load(tmp_path, tiny_params):
    res = train(tiny_params, residual_config(total_timesteps=64, log_std_init=0.0, learning_rate=1e-2), tmp_path)
    loaded = load_model(res.model_path, "ppo")
    spec = residual_spec(loaded)
    assert spec == residual_spec(res.model)
    assert spec.kwargs == dict(LP) and spec.scale == 0.3 and spec.schema_json == res.schema.to_json()
    venv = make_venv(tiny_params, tiny_config(), seed=3)
    venv.seed(2)
    obs = venv.reset()
    correction = loaded.predict(obs, deterministic=True)[0]
    assert np.abs(correction).max() > 0, "training moved the zeroed action head"
    expected = combine(OnlineLPPolicy.for_env(venv, **dict(LP)).act(obs), correction, 0.3)
    np.testing.assert_allclose(SB3Policy(loaded).act(obs), expected, atol=1e-6)


def test_registry_serves_a_residual_model_with_its_baseline(tmp_path, tiny_params):
    res = train(tiny_params, residual_config(total_timesteps=0), tmp_path / "run")
    con = duckdb.connect(str(tmp_path / "registry.duckdb"))
    registry = ModelRegistry(con, tmp_path / "models")
    entry = registry.register(
        res.model_path,
        schema=res.schema,
        params_hash="h",
        window=(None, None),
        evaluation=None,
        algo="ppo",
        timesteps=0,
        source="test",
    )
    policy = registry.load_policy(entry, schema=res.schema)
    assert policy.residual is not None and policy.residual.label.startswith("online_lp(decay=0.5, slack=1)")


def test_residual_env_hands_the_combined_action_to_the_market(tiny_params):
    """Stepping the wrapper with a constant correction gives the same episode (common random numbers) as running
    baseline + scale × correction directly."""
    venv = make_venv(tiny_params, tiny_config(), seed=3)
    spec = ResidualSpec("proportional", 0.5, venv.schema.to_json(), venv.codec.bid_range, {"smoothing": 2.0})
    n_c, n_mod = venv.schema.n_campaigns, venv.schema.action_size - 2 * venv.schema.n_campaigns
    correction = np.tile(np.r_[np.full(n_c, 0.4), np.full(n_c, -0.6), np.linspace(-0.5, 0.5, n_mod)], (2, 1))
    wrapped = ResidualVecEnv(venv, spec)
    wrapped.seed(4)
    wrapped.reset()
    totals = np.zeros(2)
    while True:
        _, rewards, dones, infos = wrapped.step(correction)
        totals += rewards
        if dones.all():
            break
    direct = run_episode(Offset(ProportionalPolicy.for_env(venv, smoothing=2.0), 0.5 * correction[0]), venv, seed=4)
    np.testing.assert_allclose(totals, direct.returns)
    np.testing.assert_allclose([i["episode_summary"]["score"] for i in infos], direct.scores)


@settings(max_examples=60, deadline=None)
@given(
    base=arrays(np.float64, (3, 8), elements=st.floats(-1, 1)),
    correction=arrays(np.float64, (3, 8), elements=st.floats(-1e6, 1e6)),
    scale=st.floats(0.01, 2.0),
)
def test_combined_action_stays_in_the_action_box(base, correction, scale):
    out = combine(base, correction, scale)
    assert out.shape == (3, 8) and np.all(out >= -1) and np.all(out <= 1)


def test_a_base_with_memory_or_a_warm_start_is_refused(tiny_params):
    with pytest.raises(ValueError, match="residual base must be one of .*'pacer'"):
        ResidualSpec("pacer", 0.3, "{}", 4.0)
    with pytest.raises(ValueError, match="residual_base must be one of"):
        tiny_config(residual_base="response_curve")
    with pytest.raises(ValueError, match="bc_cycles=0"):
        tiny_config(residual_base="online_lp", bc_cycles=2)
    with pytest.raises(ValueError, match="scale"):
        ResidualSpec("online_lp", 0.0, "{}", 4.0)


def test_paired_twin_sees_the_same_draws_so_a_zero_correction_earns_exactly_zero(tiny_params):
    """The twin copies the learner's markets at every new cycle and stays in step across the automatic reset: with
    no correction the learner *is* the reference and every paired reward is 0; with a correction the twin's reward
    is unchanged (it does not depend on the learner)."""
    from rl.training.paired import PairedVecEnv

    def no_warmup(*args, **kwargs):
        raise AssertionError("the twin simulated a warm-up of its own instead of copying the learner's")

    def paired(seed=3):
        venv = make_venv(tiny_params, tiny_config(), seed=seed)
        spec = ResidualSpec("online_lp", 0.3, venv.schema.to_json(), venv.codec.bid_range, dict(LP))
        twin = make_venv(tiny_params, tiny_config(), seed=seed + 1)  # its own seed is never used
        twin._start = no_warmup
        return PairedVecEnv(ResidualVecEnv(venv, spec), twin, spec.baseline())

    zero = np.zeros((2, make_venv(tiny_params, tiny_config()).schema.action_size))
    push = zero + 0.8
    runs = {}
    for name, action in (("zero", zero), ("push", push)):
        env = paired()
        env.seed(21)
        env.reset()
        rewards, refs = [], []
        for _ in range(2 * tiny_config().episode_days + 1):  # across an automatic reset
            _, r, _, infos = env.step(action)
            rewards.append(r)
            refs.append([i["reference_reward"] for i in infos])
        runs[name] = (np.array(rewards), np.array(refs))
    np.testing.assert_array_equal(runs["zero"][0], 0.0)
    assert np.any(runs["zero"][1] != 0), "the reference earned something"
    np.testing.assert_array_equal(runs["push"][1], runs["zero"][1])
    assert np.any(runs["push"][0] != 0)
    # a twin that simulates its own cycles from the same seed is the same simulation
    venv = make_venv(tiny_params, tiny_config(), seed=3)
    spec = ResidualSpec("online_lp", 0.3, venv.schema.to_json(), venv.codec.bid_range, dict(LP))
    own = PairedVecEnv(
        ResidualVecEnv(venv, spec), make_venv(tiny_params, tiny_config(), seed=3), spec.baseline(), copy_warmup=False
    )
    own.seed(21)
    own.reset()
    rewards = [own.step(push)[1] for _ in range(2 * tiny_config().episode_days + 1)]
    np.testing.assert_array_equal(np.array(rewards), runs["push"][0])


def test_paired_training_runs_and_needs_a_fixed_reference(tmp_path, tiny_params):
    res = train(tiny_params, residual_config(total_timesteps=32, paired=True), tmp_path)
    assert res.timesteps >= 32 and residual_spec(load_model(res.model_path, "ppo")).base == "online_lp"
    with pytest.raises(ValueError, match="paired training compares with a fixed reference"):
        tiny_config(paired=True)


def test_a_twin_without_auto_restart_refuses_to_step_a_finished_cycle(tiny_params):
    venv = make_venv(tiny_params, tiny_config(), seed=3)
    venv.auto_restart = False
    venv.reset()
    action = np.zeros((2, venv.schema.action_size))
    for _ in range(tiny_config().episode_days):
        venv.step(action)
    with pytest.raises(RuntimeError, match="call follow"):
        venv.step(action)
    with pytest.raises(ValueError, match="same number of markets"):
        venv.follow(make_venv(tiny_params, tiny_config(n_envs=3), seed=3))


def test_paired_training_against_the_frozen_warm_start(tmp_path, tiny_params):
    """Without a residual base, paired training's twin is driven by a frozen copy of the distilled warm start: the
    learner's updates never move it."""
    import torch

    from rl.training import train as train_module

    seen = {}
    original = train_module.FrozenPolicy

    def spy(network, name="frozen"):
        seen["before"] = [p.detach().clone() for p in network.parameters()]
        seen["policy"] = original(network, name)
        return seen["policy"]

    train_module.FrozenPolicy = spy
    try:
        cfg = tiny_config(
            total_timesteps=64, bc_cycles=1, bc_epochs=5, teacher="proportional", dagger_rounds=1, paired=True
        )
        res = train(tiny_params, cfg, tmp_path)
    finally:
        train_module.FrozenPolicy = original
    assert res.timesteps >= 64 and res.bc["teacher"] == "proportional"
    after = list(seen["policy"].network.parameters())
    assert all(torch.equal(a, b) for a, b in zip(seen["before"], after, strict=True))
    learner = list(res.model.policy.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(seen["before"], learner, strict=True))  # PPO did move it
