"""The batched VecEnv: SB3's VecEnv contract (auto-reset, terminal observations), seeding, and equivalence with
the single-market environment."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

from rl.env import BatchedBiddingVecEnv, BiddingEnv, EnvConfig
from rl.training.train import sb3_logger

M = 3


@pytest.fixture()
def venv(small_params, schema, short_config):
    return BatchedBiddingVecEnv(small_params, n_envs=M, config=short_config, schema=schema, seed=0)


def _actions(n, size, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, M, size)).astype(np.float32)


def test_shapes_spaces_and_auto_reset(venv, schema, short_config):
    assert isinstance(venv, VecEnv) and venv.num_envs == M
    obs = venv.reset()
    assert obs.shape == (M, schema.obs_size) and obs.dtype == np.float32
    first_seed = venv.reset_infos[0]["market_seed"]
    actions = _actions(short_config.episode_days, schema.action_size)
    for day, action in enumerate(actions):
        obs, rewards, dones, infos = venv.step(action)
        assert rewards.shape == (M,) and rewards.dtype == np.float32 and dones.dtype == bool
        assert all(venv.observation_space.contains(o) for o in obs)
        last = day == short_config.episode_days - 1
        assert dones.all() == last and dones.any() == last
        assert all(("terminal_observation" in i) == last for i in infos)
    for m, info in enumerate(infos):
        assert info["TimeLimit.truncated"] is False  # settled: the score is final, no bootstrapping
        assert info["terminal_observation"].shape == (schema.obs_size,)
        assert not np.array_equal(info["terminal_observation"], obs[m])  # obs already belongs to the next episode
        assert info["episode_summary"]["market"] == m
    assert venv.reset_infos[0]["market_seed"] != first_seed  # a new cycle was drawn
    # the returned observation is a fresh episode: nothing decided yet
    progress = obs[:, schema.global_index("episode_progress")]
    np.testing.assert_array_equal(progress, 0.0)
    venv.step(actions[0])  # and it keeps going


def test_markets_differ_and_seeding_reproduces(small_params, schema, short_config):
    a = BatchedBiddingVecEnv(small_params, n_envs=M, config=short_config, schema=schema)
    b = BatchedBiddingVecEnv(small_params, n_envs=M, config=short_config, schema=schema)
    a.seed(7)
    b.seed(7)
    oa, ob = a.reset(), b.reset()
    np.testing.assert_array_equal(oa, ob)
    assert not np.array_equal(oa[0], oa[1])  # independent markets
    for action in _actions(2, schema.action_size):
        ra, rb = a.step(action), b.step(action)
        np.testing.assert_array_equal(ra[0], rb[0])
        np.testing.assert_array_equal(ra[1], rb[1])


def test_market_zero_is_the_single_environment(small_params, schema, short_config):
    """A batch of M markets resolved in one engine call = the single env on the same setup (market seed m = 0)."""
    venv = BatchedBiddingVecEnv(small_params, n_envs=M, config=short_config, schema=schema, seed=3)
    obs = venv.reset()
    setup = venv.sim.setup
    env = BiddingEnv(small_params, short_config, schema)
    single, _ = env.reset(options={"start_date": setup.start_date, "market_seed": setup.market_seed})
    np.testing.assert_array_equal(obs[0], single)
    for action in _actions(short_config.episode_days, schema.action_size, seed=1):
        obs, rewards, dones, infos = venv.step(action)
        single, r, terminated, truncated, info = env.step(action[0])
        expected = infos[0]["terminal_observation"] if dones[0] else obs[0]
        np.testing.assert_array_equal(expected, single)
        assert rewards[0] == np.float32(r)
        assert info["spend"] == infos[0]["spend"]
    assert info["episode_summary"]["score"] == infos[0]["episode_summary"]["score"]


def test_set_options_and_oracle_actions(small_params, schema, short_config):
    venv = BatchedBiddingVecEnv(small_params, n_envs=2, config=short_config, schema=schema, seed=0)
    venv.set_options({"start_date": dt.date(2025, 5, 5), "market_seed": 42})
    venv.reset()
    assert venv.reset_infos[0]["date"] == "2025-05-05" and venv.sim.setup.market_seed == 42
    actions = venv.oracle_actions(budget_step=50.0)
    assert actions.shape == (2, schema.action_size) and np.all(np.abs(actions) <= 1)
    venv.step(actions)


def test_sb3_ppo_learns_on_the_batched_env(small_params, schema):
    torch.set_num_threads(1)
    config = EnvConfig(episode_days=4, warmup_days=2, settle_days=2)
    venv = VecMonitor(BatchedBiddingVecEnv(small_params, n_envs=2, config=config, schema=schema, seed=0))
    model = PPO("MlpPolicy", venv, n_steps=8, batch_size=16, n_epochs=1, seed=0, device="cpu")
    model.set_logger(sb3_logger(None))  # no SB3-<time> directory in the system temp dir
    model.learn(total_timesteps=32)
    assert model.num_timesteps >= 32
    assert len(model.ep_info_buffer) >= 2  # episodes finished and were logged through auto-reset


def test_a_repeated_setup_reuses_its_warm_up_and_is_the_same_simulation(small_params, schema, short_config):
    """Evaluating several policies on one seed simulates the warm-up once: the second reset of the same setup copies
    it, and the episode that follows is identical to a fresh environment's, step for step."""
    cached = BatchedBiddingVecEnv(small_params, n_envs=M, config=short_config, schema=schema, seed=0)
    actions = _actions(short_config.episode_days, schema.action_size, seed=4)

    def run(env):
        env.seed(77)
        obs = [env.reset()]
        rewards = []
        for a in actions:
            o, r, _, _ = env.step(a)
            obs.append(o)
            rewards.append(r)
        return np.array(obs), np.array(rewards)

    first = run(cached)
    calls = []
    original = cached.sim._resolve
    cached.sim._resolve = lambda settings: calls.append(1) or original(settings)
    second = run(cached)
    assert len(calls) == short_config.episode_days  # no warm-up day was simulated again
    fresh = run(BatchedBiddingVecEnv(small_params, n_envs=M, config=short_config, schema=schema, seed=0))
    for a, b, c in zip(first, second, fresh, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
