"""Bid landscapes and the fast day against the full engine: the expected outcomes match the engine's averages, and
training's fast simulator gives the same scores and the same policy ranking within their noise."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from rl.env import BatchedBiddingVecEnv, EnvConfig, ObservationSchema
from rl.market.compiled import CompiledMarket
from rl.market.draws import draw_day, market_rngs
from rl.market.engine import MarketState, resolve_day
from rl.market.fast import fast_day, fast_draws, poisson_quantile
from rl.market.landscape import Landscape, expected_day
from rl.market.modifiers import cell_multipliers
from rl.policies.base import run_episode
from rl.policies.baselines import BASELINES, StaticPolicy
from tests.conftest import scaled

DATE = dt.date(2025, 3, 5)


@pytest.fixture(scope="module")
def market(reference_params):
    params = scaled(reference_params, 0.25)
    cm = CompiledMarket.from_params(params)
    return params, cm, Landscape.build(cm)


@pytest.mark.parametrize(
    ("bid_mult", "budget_mult", "modifiers"),
    [(1.0, 1.0, False), (0.6, 1e6, False), (1.5, 1e6, True), (1.2, 0.5, True)],
    ids=["in-force", "low-bids", "high-bids-modifiers", "binding-budgets-modifiers"],
)
def test_expected_day_matches_the_engine_on_average(market, bid_mult, budget_mult, modifiers):
    params, cm, land = market
    n_m = 48
    budgets = np.array([c.current_daily_budget for c in params.campaigns]) * 0.25 * budget_mult
    bids = np.minimum(
        np.array([c.current_bid for c in params.campaigns]) * bid_mult, [c.max_bid for c in params.campaigns]
    )
    device = np.ones((cm.n_campaigns, 3))
    hours = np.ones((cm.n_campaigns, params.hour_blocks))
    if modifiers:
        device[cm.is_search] = [0.7, 1.4, 1.0]
        hours[cm.is_search, :2] = 0.5
    mult = cell_multipliers(device, hours)
    state = MarketState.initial(cm, n_m)
    draws = draw_day(cm, DATE, market_rngs(17, n_m, DATE))
    engine, _ = resolve_day(cm, draws, state, np.tile(budgets, (n_m, 1)), np.tile(bids, (n_m, 1)), mult[None])
    e = expected_day(land, DATE, state.exposure[:1], state.comp_shift[:1], budgets[None], bids[None], mult[None])
    for name, tol in (("clicks", 0.06), ("cost", 0.06), ("conversions", 0.25)):
        got = engine.per_campaign(name).mean(axis=0).sum()
        want = e.per_campaign("cost" if name == "cost" else name)[0].sum()
        assert got == pytest.approx(want, rel=tol), name
    # per campaign, clicks within 10% wherever there are a few a day
    got, want = engine.per_campaign("clicks").mean(axis=0), e.per_campaign("clicks")[0]
    busy = want > 5
    np.testing.assert_allclose(got[busy], want[busy], rtol=0.1)


def test_the_fast_day_keeps_the_budget_and_its_draws_do_not_depend_on_the_settings(market):
    params, cm, land = market
    n_m = 6
    state = MarketState.initial(cm, n_m)
    draws = fast_draws(cm, DATE, 5, n_m)
    again = fast_draws(cm, DATE, 5, n_m)
    np.testing.assert_array_equal(draws.u_conv, again.u_conv)  # a market's luck: (seed, market, date) only
    budgets = np.tile([c.current_daily_budget * 0.05 for c in params.campaigns], (n_m, 1))
    bids = np.tile([c.current_bid * 2.0 for c in params.campaigns], (n_m, 1))
    result, nxt = fast_day(land, draws, state, budgets, bids)
    assert np.all(result.per_campaign("cost") <= budgets * (1 + 1e-9))
    assert np.all(result.clicks <= np.maximum(result.impressions, result.clicks))  # clicks only where shown
    assert np.all(result.conversions <= result.sessions) and np.all(result.sessions <= result.clicks)
    assert len(result.events) == result.conversions.sum()
    np.testing.assert_allclose(nxt.exposure, result.per_campaign("impressions") / 1000.0)  # fatigue carries over


def test_poisson_quantile_is_the_poisson_quantile():
    from scipy.stats import poisson

    rng = np.random.default_rng(3)
    u = rng.random(4000)
    mu = rng.choice([0.0, 0.01, 0.3, 2.0, 12.0, 29.0], size=4000)
    np.testing.assert_array_equal(poisson_quantile(u, mu), poisson.ppf(u, mu).astype(int))
    big = poisson_quantile(rng.random(20000), 400.0)
    assert big.mean() == pytest.approx(400.0, rel=0.01) and big.std() == pytest.approx(20.0, rel=0.05)


def test_the_fast_simulator_gives_the_full_engines_scores_and_ranking(reference_params):
    """Four policies that differ by more than the noise, on the same 16 episodes in both simulators: each
    policy's mean score within 3 combined standard errors, and the same order."""
    params = scaled(reference_params, 0.3)
    schema = ObservationSchema.from_params(params)
    scores = {}
    for engine in ("full", "fast"):
        config = EnvConfig(episode_days=10, warmup_days=14, engine=engine)
        venv = BatchedBiddingVecEnv(params, n_envs=8, config=config, schema=schema, seed=0)
        policies = {
            "static": StaticPolicy.reference(venv),
            "static_cheap": StaticPolicy.for_env(venv, bid_mult=0.6),
            "pacer": BASELINES["pacer"].for_env(venv),
            "online_lp_patterns": BASELINES["online_lp_patterns"].for_env(venv, slack=1.0, decay=0.5, strength=400),
        }
        for name, policy in policies.items():
            s = np.concatenate([run_episode(policy, venv, seed).scores for seed in (31, 32)])
            scores[engine, name] = (s.mean(), s.std(ddof=1) / np.sqrt(len(s)))
    names = ["static", "static_cheap", "pacer", "online_lp_patterns"]
    for name in names:
        (full, se_full), (fast, se_fast) = scores["full", name], scores["fast", name]
        assert abs(full - fast) <= 3 * np.hypot(se_full, se_fast), (name, full, fast)
    order = lambda engine: sorted(names, key=lambda n: scores[engine, n][0])  # noqa: E731
    assert order("full") == order("fast"), scores
