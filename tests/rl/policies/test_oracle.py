"""The two hindsight yardsticks: the clairvoyant oracle is exact on its action grid, and the LP bound is above it."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rl.market.compiled import CompiledMarket
from rl.market.draws import draw_day, market_rngs
from rl.market.engine import MarketState, resolve_day
from rl.policies.oracle import (
    DEFAULT_BID_MULTIPLIERS,
    bid_grid,
    clairvoyant_oracle,
    day_score,
    informed_oracle,
    lp_bound,
)
from tests.conftest import scaled

STEP = 25.0  # a coarse budget grid keeps the property tests quick; exactness does not depend on it


@pytest.fixture(scope="module")
def mid_market(reference_params) -> CompiledMarket:
    """A fifth of the reference volume: enough conversions per day for the scores to differ."""
    return CompiledMarket.from_params(scaled(reference_params, 0.2))


def _day(cm, seed: int, offset: int):
    date = dt.date(2025, 3, 3) + dt.timedelta(days=offset)
    return draw_day(cm, date, market_rngs(seed, 1, date)), MarketState.initial(cm, 1)


def _score(cm, draws, state, budgets, bids) -> float:
    r, _ = resolve_day(cm, draws, state, budgets[None], bids[None])
    return day_score(float(r.conversions.sum()), float(r.cost.sum()), cm.params.target_cpa)


def test_oracle_choice_replays_exactly_through_the_engine(mid_market):
    draws, state = _day(mid_market, seed=4, offset=0)
    o = clairvoyant_oracle(mid_market, draws, state, budget_step=STEP)
    r, _ = resolve_day(mid_market, draws, state, o.budgets[None], o.bids[None])
    np.testing.assert_allclose(r.per_campaign("cost")[0], o.campaign_spend, rtol=1e-12)
    np.testing.assert_array_equal(r.per_campaign("conversions")[0], o.campaign_conversions)
    assert o.budgets.sum() <= mid_market.params.daily_budget + 1e-9
    assert o.spend <= mid_market.params.daily_budget + 1e-9
    assert o.score == pytest.approx(day_score(o.conversions, o.spend, mid_market.params.target_cpa))
    assert o.conversions > 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), offset=st.integers(0, 300), data=st.data())
def test_oracle_beats_every_fixed_grid_policy_and_lp_bound_beats_oracle(mid_market, seed, offset, data):
    cm = mid_market
    draws, state = _day(cm, seed, offset)
    o = clairvoyant_oracle(cm, draws, state, budget_step=STEP)
    grid = bid_grid(cm)
    n_units = int(cm.params.daily_budget // STEP)
    for _ in range(4):
        rows = data.draw(
            st.lists(st.integers(0, len(DEFAULT_BID_MULTIPLIERS) - 1), min_size=cm.n_campaigns, max_size=cm.n_campaigns)
        )
        units = data.draw(st.lists(st.integers(0, n_units), min_size=cm.n_campaigns, max_size=cm.n_campaigns))
        while sum(units) > n_units:  # trim the largest allocation until the plan fits the daily budget
            units[int(np.argmax(units))] -= sum(units) - n_units if max(units) >= sum(units) - n_units else max(units)
        bids = grid[rows, np.arange(cm.n_campaigns)]
        budgets = np.array(units, dtype=float) * STEP
        assert _score(cm, draws, state, budgets, bids) <= o.score + 1e-9
    assert lp_bound(cm, draws, state).score >= o.score - 1e-9


def test_oracle_beats_bids_in_force_on_a_full_reference_day(reference_params):
    cm = CompiledMarket.from_params(reference_params)
    draws, state = _day(cm, seed=11, offset=40)
    budgets = np.array([c.current_daily_budget for c in reference_params.campaigns])
    bids = np.array([c.current_bid for c in reference_params.campaigns])
    current = _score(cm, draws, state, budgets, bids)
    o = clairvoyant_oracle(cm, draws, state)  # default $5 grid: the budgets in force lie on it
    lp = lp_bound(cm, draws, state)
    assert current <= o.score <= lp.score
    assert o.score > current  # hindsight must be worth something on a real-sized day


def test_lp_bound_respects_budget_and_counts_only_converting_opportunities(mid_market):
    draws, state = _day(mid_market, seed=8, offset=3)
    lp = lp_bound(mid_market, draws, state)
    assert lp.spend <= mid_market.params.daily_budget + 1e-9
    assert 0 <= lp.conversions <= lp.items
    # No policy converts an opportunity the LP cannot: with every bid at its cap and the whole budget on every
    # campaign, conversions stay within the LP's candidate items.
    caps = np.array([c.max_bid for c in mid_market.params.campaigns])
    r, _ = resolve_day(mid_market, draws, state, np.full((1, mid_market.n_campaigns), 1e9), caps[None])
    assert r.conversions.sum() <= lp.items


def test_oracles_refuse_batched_draws(mid_market):
    date = dt.date(2025, 3, 3)
    draws = draw_day(mid_market, date, market_rngs(0, 2, date))
    with pytest.raises(ValueError, match="one market"):
        clairvoyant_oracle(mid_market, draws, MarketState.initial(mid_market, 2))


def test_informed_oracle_sits_between_the_settings_in_force_and_hindsight(mid_market):
    """Knowing the true parameters (not the day's draws) is worth something on average over days, and never more
    than hindsight on the same day: its choice is one point of the clairvoyant oracle's grid."""
    cm = mid_market
    in_force = informed = clairvoyant = 0.0
    budgets_now = np.array([c.current_daily_budget for c in cm.params.campaigns])
    bids_now = np.array([c.current_bid for c in cm.params.campaigns])
    for offset in range(6):
        draws, state = _day(cm, seed=21, offset=offset)
        date = draws.date
        replicates = [draw_day(cm, date, [np.random.default_rng([99, offset, r])]) for r in range(4)]
        budgets, bids, _ = informed_oracle(cm, replicates, state, budget_step=STEP)
        assert budgets.sum() <= cm.params.daily_budget + 1e-9
        assert np.all(np.isin(bids, bid_grid(cm)))
        day_informed = _score(cm, draws, state, budgets, bids)
        day_clairvoyant = clairvoyant_oracle(cm, draws, state, budget_step=STEP).score
        assert day_informed <= day_clairvoyant + 1e-9
        informed += day_informed
        clairvoyant += day_clairvoyant
        in_force += _score(cm, draws, state, budgets_now, bids_now)
    assert in_force < informed < clairvoyant


def test_informed_oracle_needs_replicates(mid_market):
    _, state = _day(mid_market, seed=1, offset=0)
    with pytest.raises(ValueError, match="at least one replicate"):
        informed_oracle(mid_market, [], state)
