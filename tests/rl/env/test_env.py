"""The single-market environment: API conformance, determinism, what it observes and when rewards arrive."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from rl.env import BiddingEnv, EnvConfig
from rl.env.observation import decode
from rl.env.reward import score
from rl.policies.oracle import day_score
from tests.rl.env.conftest import with_segments

START = dt.date(2025, 4, 7)
VOLUME_FEATURES = (
    "spend_1d",
    "spend_7d",
    "spend_28d",
    "budget_utilisation_1d",
    "impressions_1d",
    "impressions_7d",
    "clicks_1d",
    "clicks_7d",
    "impression_share_1d",
    "impression_share_7d",
    "cpc_7d",
    "budget",
    "bid",
)


def _pair(params_a, params_b, schema, config, seed=11):
    """Two environments on the same days and random numbers, differing only in hidden parameters."""
    envs = [BiddingEnv(p, config, schema) for p in (params_a, params_b)]
    opts = {"start_date": START, "market_seed": seed}
    firsts = [env.reset(seed=0, options=opts)[0] for env in envs]
    return envs, firsts


def _random_actions(n_days, size, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n_days, size)).astype(np.float32)


def test_gymnasium_and_sb3_env_checkers_pass(small_params, schema, short_config):
    env = BiddingEnv(small_params, short_config, schema)
    check_env(env, skip_render_check=True)
    sb3_check_env(BiddingEnv(small_params, short_config, schema), warn=False)
    obs, info = env.reset(seed=1)
    assert obs.dtype == np.float32 and obs.shape == (schema.obs_size,)
    assert env.observation_space.contains(obs)
    n_modifiers = schema.n_modifier_campaigns * (3 + schema.hour_blocks)
    assert schema.n_modifier_campaigns > 0 and env.action_space.shape == (2 * schema.n_campaigns + n_modifiers,)


def test_episode_ends_after_the_settle_period_with_the_true_score(small_params, schema, short_config):
    env = BiddingEnv(small_params, short_config, schema)
    env.reset(seed=2)
    total = 0.0
    for day in range(short_config.episode_days):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        total += reward
        assert not truncated
        assert terminated == (day == short_config.episode_days - 1)
        assert ("episode_summary" in info) == terminated
        assert env.observation_space.contains(obs)
    summary = info["episode_summary"]
    assert summary["days"] == short_config.episode_days
    assert summary["settle_days"] == max(s.lag_days_max for s in small_params.segments)
    assert summary["return"] == pytest.approx(total)
    assert summary["score"] == pytest.approx(day_score(summary["conversions"], summary["spend"], 100.0))
    # after settling every conversion of the episode's clicks has been reported: the return IS the scaled score
    assert summary["reported_conversions"] == summary["conversions"]
    assert total == pytest.approx(summary["score"] * small_params.target_cpa / small_params.daily_budget)
    assert summary["max_daily_spend"] <= small_params.daily_budget + 1e-9
    with pytest.raises(RuntimeError, match="finished"):
        env.step(env.action_space.sample())


def test_without_settling_the_episode_is_truncated(small_params, schema):
    env = BiddingEnv(small_params, EnvConfig(episode_days=2, warmup_days=0, settle_days=0), schema)
    env.reset(seed=2)
    env.step(env.action_space.sample())
    *_, terminated, truncated, info = env.step(env.action_space.sample())
    assert truncated and not terminated and info["episode_summary"]["settle_days"] == 0


def test_same_seed_same_episode_and_dates_in_range(small_params, schema, short_config):
    a, b = BiddingEnv(small_params, short_config, schema), BiddingEnv(small_params, short_config, schema)
    oa, ia = a.reset(seed=5)
    ob, ib = b.reset(seed=5)
    np.testing.assert_array_equal(oa, ob)
    lo, hi = short_config.date_range(small_params)
    assert lo <= dt.date.fromisoformat(ia["date"]) <= hi
    for action in _random_actions(3, schema.action_size):
        ra, rb = a.step(action), b.step(action)
        np.testing.assert_array_equal(ra[0], rb[0])
        assert ra[1] == rb[1]
    oc, ic = a.reset(seed=6)
    assert ic["market_seed"] != ia["market_seed"]


def test_first_observation_ignores_hidden_segment_parameters(mid_params, schema):
    """With no warm-up nothing is reported yet: changing hidden segment behaviour cannot show."""
    config = EnvConfig(episode_days=3, warmup_days=0)
    data = mid_params.model_dump()
    for c in data["campaigns"]:  # a different hidden segment mix everywhere
        c["segment_mix"] = {"crisis_parent": 0.7, "concerned_parent": 0.1, "researcher": 0.1, "price_sensitive": 0.1}
    mixed = type(mid_params).model_validate(data)
    cvr = with_segments(mixed, cvr=lambda v: min(2 * v, 0.5))
    _, (a, b, c) = (
        None,
        [
            BiddingEnv(p, config, schema).reset(seed=0, options={"start_date": START})[0]
            for p in (mid_params, mixed, cvr)
        ],
    )
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_observation_identical_until_reports_differ_conversion_rate(mid_params, schema):
    """Doubling every segment's hidden conversion rate (clicks, spend unchanged under common random numbers): the
    volume features never differ, and the conversion features only once a reported conversion differs."""
    config = EnvConfig(episode_days=14, warmup_days=0)
    higher = with_segments(mid_params, cvr=lambda v: min(2 * v, 0.5))
    (a, b), (oa, ob) = _pair(mid_params, higher, schema, config)
    np.testing.assert_array_equal(oa, ob)
    vol = np.concatenate([np.arange(schema.obs_size)[schema.campaign_index(f)] for f in VOLUME_FEATURES])
    reported = np.zeros(2)
    first_difference = None
    for day, action in enumerate(_random_actions(14, schema.action_size)):
        (oa, ra, *_, ia), (ob, rb, *_, ib) = a.step(action), b.step(action)
        reported += [ia["conversions_reported"], ib["conversions_reported"]]
        np.testing.assert_array_equal(oa[vol], ob[vol])
        assert ia["spend"] == ib["spend"]
        if reported[0] == reported[1]:  # B converts a superset of A's sessions: equal counts = equal reports
            np.testing.assert_array_equal(oa, ob)
            assert ra == rb
        elif first_difference is None:
            first_difference = day
            assert not np.array_equal(oa, ob)
    assert first_difference is not None, "the test market never reported a difference: make it bigger"


def test_observation_identical_until_reports_differ_lag(mid_params, schema):
    """Delaying every conversion by three days changes nothing the platforms report until the first conversion
    of the undelayed market happens; an environment leaking eventual conversions would differ from day one."""
    config = EnvConfig(episode_days=10, warmup_days=0)
    later = with_segments(mid_params, lag_days_min=lambda v: v + 3, lag_days_max=lambda v: v + 3)
    (a, b), (oa, ob) = _pair(mid_params, later, schema, config)
    truth_first_day = None
    first_report = None
    for day, action in enumerate(_random_actions(10, schema.action_size, seed=1)):
        (oa, ra, *_, ia), (ob, rb, *_, ib) = a.step(action), b.step(action)
        assert ia["truth"]["conversions"] == ib["truth"]["conversions"]  # the same eventual conversions
        if truth_first_day is None and ia["truth"]["conversions"] > 0:
            truth_first_day = day
        if first_report is None and ia["conversions_reported"] > 0:
            first_report = day
        if first_report is None:
            np.testing.assert_array_equal(oa, ob)
            assert ra == rb == 0.0
        elif day == first_report:
            assert not np.array_equal(oa, ob) and ra > rb
    assert truth_first_day is not None and first_report is not None and first_report > truth_first_day


def test_no_reward_before_conversions_are_reported(mid_params, schema):
    """Every conversion lags its click by 2–4 days: days 0 and 1 have clicks and eventual conversions but no
    conversion reward; each later day's reward counts exactly the conversions that happen on it."""
    params = with_segments(mid_params, lag_days_min=2, lag_days_max=4, cvr=lambda v: min(3 * v, 0.5))
    config = EnvConfig(episode_days=8, warmup_days=0)
    env = BiddingEnv(params, config, schema)
    env.reset(seed=0, options={"start_date": START})
    rewards, happened, eventual = [], [], []
    for _ in range(config.episode_days):
        _, r, *_, info = env.step(np.zeros(schema.action_size, dtype=np.float32))
        rewards.append(r)
        happened.append(info["conversions_reported"])
        eventual.append(info["truth"]["conversions"])
    assert eventual[0] > 0 and eventual[1] > 0
    assert rewards[0] == rewards[1] == 0.0 and happened[0] == happened[1] == 0.0
    assert sum(happened) > 0
    # conversions happening on day d are exactly the click-day conversions with click day + lag = d
    conv = env.sim.reports.conv_by_lag[0]  # [H, C, L]
    for d in range(config.episode_days):
        expected = sum(conv[c, :, d - c].sum() for c in range(max(0, d - conv.shape[-1] + 1), d + 1))
        assert happened[d] == expected
    # the last step also settles: the conversions after the last decided day arrive within its transition
    summary = info["episode_summary"]
    assert info["conversions_settled"] > 0
    reported = sum(happened) + info["conversions_settled"]
    assert summary["reported_conversions"] == reported == summary["conversions"] == sum(eventual)
    scale = params.target_cpa / params.daily_budget
    assert sum(rewards[:-1]) == pytest.approx(scale * score(sum(happened[:-1]), summary["spend"] - info["spend"], 100))
    assert sum(rewards) == pytest.approx(scale * score(reported, summary["spend"], params.target_cpa))


def test_warm_up_conversions_are_observed_but_never_rewarded(mid_params, schema):
    """After a warm-up, pausing everything (no step limit) spends nothing: the warm-up's late conversions still
    arrive and are reported in the observation, but the reward and the episode's score stay at zero."""
    config = EnvConfig(episode_days=3, warmup_days=14, max_step=None, settle_days=0)
    env = BiddingEnv(mid_params, config, schema)
    obs0, _ = env.reset(seed=0, options={"start_date": START})
    pause = np.zeros(schema.action_size, dtype=np.float32)
    pause[: schema.n_campaigns] = -1.0  # every budget 0; bids and modifiers as they are
    for _ in range(3):
        obs, r, *_, info = env.step(pause)
        assert r == 0.0 and info["spend"] == 0.0 and info["conversions_reported"] == 0.0
    assert info["episode_summary"]["score"] == 0.0
    f0, f = decode(schema, obs0), decode(schema, obs)
    assert f["conversions_28d"].sum() > f0["conversions_28d"].sum()  # late warm-up conversions kept arriving


def test_episode_return_orders_policies_like_the_score(mid_params, schema):
    """Four clearly different fixed settings on the same markets and days: sorting by return = sorting by score."""
    from rl.env import BatchedBiddingVecEnv
    from rl.policies.base import run_episode
    from rl.policies.baselines import StaticPolicy

    config = EnvConfig(episode_days=21, warmup_days=7)
    venv = BatchedBiddingVecEnv(mid_params, n_envs=3, config=config, schema=schema)
    policies = {
        "reference": StaticPolicy.reference(venv),
        "cheap": StaticPolicy.for_env(venv, bid_mult=0.5),
        "small": StaticPolicy.for_env(venv, budget_fraction=0.25),
        "overbid": StaticPolicy.for_env(venv, bid_mult=4.0),
    }
    returns, scores = {}, {}
    for name, policy in policies.items():
        out = run_episode(policy, venv, seed=4)
        returns[name], scores[name] = out.returns.mean(), out.scores.mean()
    by_return = sorted(policies, key=returns.get)
    by_score = sorted(policies, key=scores.get)
    assert by_return == by_score, (returns, scores)
    assert len(set(scores.values())) == len(scores)


def test_oracle_action_replays_the_oracle_day(mid_params, schema):
    """Without a step limit the oracle's action reproduces the oracle's day exactly (same draws and state)."""
    env = BiddingEnv(mid_params, EnvConfig(episode_days=2, warmup_days=3, max_step=None), schema)
    env.reset(seed=0, options={"start_date": START})
    env.step(np.zeros(schema.action_size, dtype=np.float32))  # a non-initial state (fatigue, rival shifts)
    o = env.oracle_result(budget_step=25.0)
    _, _, _, _, info = env.step(env.oracle_action(budget_step=25.0))
    np.testing.assert_allclose(info["budgets"], o.budgets, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(info["bids"], o.bids, rtol=1e-9)
    assert info["spend"] == pytest.approx(o.spend, rel=1e-9)
    assert info["truth"]["conversions"] == o.conversions
