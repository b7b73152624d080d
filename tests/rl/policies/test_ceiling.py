"""The informed planning ceiling: at least as good as every baseline on held-out episodes, within the same action
space and guardrails; and its planning parts (bid shapes, the expected score) do what they say."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from scipy.stats import poisson

from rl.env import BatchedBiddingVecEnv, EnvConfig, ObservationSchema
from rl.evaluation.evaluate import INFORMED_CEILING, evaluate
from rl.market.compiled import CompiledMarket
from rl.market.landscape import Landscape
from rl.market.modifiers import ModifierLimits, cell_multipliers
from rl.policies.baselines import BASELINES
from rl.policies.ceiling import InformedCeilingPolicy
from rl.policies.planning import bid_shapes, expected_score
from tests.conftest import scaled


@pytest.fixture(scope="module")
def small(reference_params):
    """A tenth of the reference account's volume."""
    return scaled(reference_params, 0.1)


def test_the_ceiling_scores_at_least_every_baseline_on_held_out_episodes(small):
    """Every baseline (and pattern variant) and the ceiling run the same 8 episodes (common random numbers) of a
    small market in the full engine, through the same guardrails: the ceiling's mean score is at least each
    baseline's, it never overspends, and it uses the modifiers."""
    config = EnvConfig(episode_days=10, warmup_days=14)
    venv = BatchedBiddingVecEnv(small, n_envs=8, config=config, schema=ObservationSchema.from_params(small), seed=0)
    policies = {name: cls.for_env(venv) for name, cls in BASELINES.items()}
    ev = evaluate(policies, venv, [4242], policy="static", oracle=False, lp_bound=False, ceiling=True)
    table = ev.table()
    ceiling = table[INFORMED_CEILING]["score"]
    for name in policies:
        assert ceiling >= table[name]["score"], (name, table[name]["score"], ceiling)
    assert table[INFORMED_CEILING]["days_over_budget"] == 0
    best = max(table[n]["score"] for n in policies)
    assert ceiling > 1.02 * best  # not a tie: planning the horizon pays


def test_shared_shapes_scale_exactly_with_each_markets_volume_per_campaign(small):
    """The teacher's shared bid shapes, planned once at volume 1 and scaled per market and campaign, are the shapes
    each market would get on its own from the same state: a campaign's volume multiplies its value and cost alike."""
    ranges = ((202, 1.0, 4.0), (101, 0.5, 1.0))
    config = EnvConfig(episode_days=3, warmup_days=7, campaign_volume_ranges=ranges)
    venv = BatchedBiddingVecEnv(small, n_envs=3, config=config, schema=ObservationSchema.from_params(small), seed=3)
    venv.reset()
    sim = venv.sim
    sim.state.exposure[:] = sim.state.exposure.mean(axis=0)  # one state for all: what sharing assumes
    sim.state.comp_shift[:] = sim.state.comp_shift.mean(axis=0)
    lams = 1.0 / np.array([30.0, 90.0])
    shared = InformedCeilingPolicy(venv, lams=lams, shared_shapes=True)
    own = InformedCeilingPolicy(venv, lams=lams)
    land = shared.landscape(sim)
    assert np.ptp(sim.setup.volume_scale[:, venv.schema.campaign_ids.index(202)]) > 0
    for a, b in zip(shared.shapes(sim, land), own.shapes(sim, land), strict=True):
        assert np.array_equal(a.bids, b.bids) and np.array_equal(a.device, b.device)
        assert np.array_equal(a.hours, b.hours)
        np.testing.assert_allclose(a.spend, b.spend, rtol=1e-9)
        np.testing.assert_allclose(a.conversions, b.conversions, rtol=1e-9)


def test_bid_shapes_stay_in_the_action_space_and_under_the_max_bid(reference_params):
    cm = CompiledMarket.from_params(reference_params)
    land = Landscape.build(cm)
    limits = ModifierLimits.from_params(reference_params)
    ref = np.array([c.current_bid for c in reference_params.campaigns])
    max_bid = np.array([c.max_bid for c in reference_params.campaigns])
    lams = 1.0 / np.array([20.0, 60.0, 150.0])
    shapes = bid_shapes(
        land,
        dt.date(2025, 4, 2),
        np.zeros(cm.n_campaigns),
        np.zeros(cm.n_competitors),
        lams,
        ref,
        max_bid,
        limits.enabled,
        reference_params.hour_blocks,
    )
    assert np.all(shapes.bids >= ref / 4 * (1 - 1e-9)) and np.all(shapes.bids <= ref * 4 * (1 + 1e-9))
    for m in (shapes.device, shapes.hours):
        assert np.all(m >= 0.25 - 1e-9) and np.all(m <= 4.0 + 1e-9)
        np.testing.assert_array_equal(m[:, ~limits.enabled], 1.0)
    top = shapes.bids[:, :, None, None] * cell_multipliers(shapes.device, shapes.hours)
    assert np.all(top.max(axis=(2, 3)) <= max_bid * (1 + 1e-9))
    # a cheaper dollar (lower λ: a higher marginal CPA is acceptable) buys more
    assert np.all(np.diff(shapes.spend.sum(axis=1)) > 0) and np.all(np.diff(shapes.conversions.sum(axis=1)) > 0)
    # with modifiers the planner does at least as well per dollar as without (it can choose all 1)
    flat = bid_shapes(
        land,
        dt.date(2025, 4, 2),
        np.zeros(cm.n_campaigns),
        np.zeros(cm.n_competitors),
        lams,
        ref,
        max_bid,
        np.zeros(cm.n_campaigns, dtype=bool),
        reference_params.hour_blocks,
    )
    gain = lambda s: (s.conversions - lams[:, None] * s.spend).sum(axis=1)  # noqa: E731
    assert np.all(gain(shapes) >= gain(flat) - 1e-9)


def test_the_expected_score_is_the_expectation_of_the_score():
    mu, spend, target = 12.0, 1500.0, 100.0  # CPA near the target: the penalty's curvature matters
    k = np.arange(0, 80)
    exact = (poisson.pmf(k, mu) * k * np.minimum(1.0, (target * k / spend) ** 2)).sum()
    assert expected_score(mu, spend, target)[0] == pytest.approx(exact, rel=1e-9)
    naive = mu * min(1.0, (target * mu / spend) ** 2)  # the score of the expectation, which the greedy oracle used
    assert abs(exact - naive) > 0.1
