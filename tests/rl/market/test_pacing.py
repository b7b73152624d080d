"""Platform pacing: spend never exceeds a budget, the stop rule by hand, zero and unlimited budgets, spreading."""

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rl.market.compiled import CompiledMarket
from rl.market.draws import draw_day, market_rngs
from rl.market.engine import MarketState, resolve_day, resolve_opportunities
from rl.market.params import HOURS, MarketParams
from tests.rl.market.tiny_market import (
    HUGE,
    make_draws,
)

# -- pacing -----------------------------------------------------------------------------------------------------

budget_values = st.one_of(st.just(0.0), st.floats(1e-12, 1e-2), st.floats(0.0, 300.0))


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    day=st.integers(0, 700),
    budgets=st.lists(budget_values, min_size=16, max_size=16),
    bids=st.lists(st.floats(0.0, 60.0), min_size=16, max_size=16),
    hourly=st.booleans(),
)
def test_pacing_never_exceeds_the_budget(small_market: CompiledMarket, seed, day, budgets, bids, hourly) -> None:
    cm = small_market
    date = cm.params.history_start + dt.timedelta(days=day)
    draws = draw_day(cm, date, market_rngs(seed, 2, date))
    budgets = np.reshape(budgets, (2, cm.n_campaigns))
    mult = np.random.default_rng(seed).uniform(0.0, 3.0, (2, cm.n_campaigns, HOURS, 3)) if hourly else None
    res, _ = resolve_day(cm, draws, MarketState.initial(cm, 2), budgets, np.reshape(bids, (2, -1)), mult)
    cost = res.per_campaign("cost")
    assert np.all(cost <= budgets + 1e-9), (cost, budgets)
    assert np.all(res.impressions <= res.auctions_won)
    assert np.all(cost >= 0)


def test_pacing_stops_at_the_budget_by_hand(tiny: CompiledMarket) -> None:
    """Five clicks at $3 each (potential $15), budget $10 → participation probability 2/3. Arrivals with
    u_throttle 0.1, 0.9, 0.2, 0.3, 0.5 participate except the second; the running total 3, 6, 9, 12 over the
    participants serves the first three (arrivals 1, 3, 4) and stops at the fourth (arrival 5)."""
    draws = make_draws(tiny, [0] * 5, hour=[0, 1, 2, 3, 4], u_throttle=[0.1, 0.9, 0.2, 0.3, 0.5])
    bids = np.array([[3.5, 1.0, 1.0, 1.0, 1.0]])
    budgets = np.array([[10.0, HUGE, HUGE, HUGE, HUGE]])
    o = resolve_opportunities(tiny, draws, MarketState.initial(tiny, 1), budgets, bids)
    assert o.served.tolist() == [True, False, True, True, False]
    res, _ = resolve_day(tiny, draws, MarketState.initial(tiny, 1), budgets, bids)
    assert res.per_campaign("auctions_won")[0, 0] == 5
    assert res.per_campaign("impressions")[0, 0] == 3
    assert res.per_campaign("cost")[0, 0] == pytest.approx(9.0)
    # Budget ≥ potential: p = 1, nobody is throttled; a budget of exactly $9 stops right after the third click.
    for budget, want in [(15.0, 5), (9.0, 3), (8.99, 2)]:
        draws_all = make_draws(tiny, [0] * 5, hour=[0, 1, 2, 3, 4], u_throttle=0.0)
        res, _ = resolve_day(tiny, draws_all, MarketState.initial(tiny, 1), [[budget, 1, 1, 1, 1]], bids)
        assert res.per_campaign("impressions")[0, 0] == want, budget
        assert res.per_campaign("cost")[0, 0] == pytest.approx(3.0 * want)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_huge_budget_does_not_throttle(small_market: CompiledMarket, seed: int) -> None:
    cm = small_market
    date = cm.params.history_start + dt.timedelta(days=30 * seed)
    draws = draw_day(cm, date, market_rngs(seed, 2, date))
    bids = np.tile([c.current_bid for c in cm.params.campaigns], (2, 1))
    res, _ = resolve_day(cm, draws, MarketState.initial(cm, 2), np.full((2, cm.n_campaigns), HUGE), bids)
    assert res.auctions_won.sum() > 0
    np.testing.assert_array_equal(res.impressions, res.auctions_won)


@pytest.mark.parametrize("seed", range(5))
def test_zero_budget_serves_nothing(small_market: CompiledMarket, seed: int) -> None:
    """A $0 budget is a paused campaign: no impressions, clicks or cost, though it would win auctions. (On this 2%
    market some search campaigns win auctions nobody would click, i.e. potential spend 0: seed 0 day 0 had campaigns
    103 and 401 serving 87 and 22 free impressions before the engine fixed it in 228c1df.)"""
    cm = small_market
    date = cm.params.history_start + dt.timedelta(days=seed)
    draws = draw_day(cm, date, market_rngs(seed, 1, date))
    bids = np.array([[c.current_bid for c in cm.params.campaigns]])
    res, state = resolve_day(cm, draws, MarketState.initial(cm, 1), np.zeros((1, cm.n_campaigns)), bids)
    assert res.auctions_won.sum() > 0
    assert res.impressions.sum() == 0, res.per_campaign("impressions")
    assert res.cost.sum() == 0
    assert res.clicks.sum() == 0
    assert res.conversions.sum() == 0 and len(res.events) == 0
    np.testing.assert_array_equal(state.exposure, 0.0)  # no fatigue from impressions never served


def test_zero_budget_serves_no_free_impressions_hand_built(tiny: CompiledMarket) -> None:
    """Won at position 1, but u_click = 0.99 > CTR 0.1: the day's potential spend is 0, and a $0 budget still must
    not serve; a 1-cent budget serves both (they cost nothing)."""
    draws = make_draws(tiny, [0, 0], u_click=0.99)
    bids = [[3.5, 1, 1, 1, 1]]
    res, _ = resolve_day(tiny, draws, MarketState.initial(tiny, 1), np.zeros((1, 5)), bids)
    assert res.auctions_won.sum() == 2
    assert res.impressions.sum() == 0
    res, _ = resolve_day(tiny, draws, MarketState.initial(tiny, 1), [[0.01, 0, 0, 0, 0]], bids)
    assert res.impressions.sum() == 2 and res.cost.sum() == 0


def test_pacing_spreads_a_tight_budget_over_the_day(reference_params: MarketParams) -> None:
    """With half the spend it could make, a campaign is throttled rather than exhausted by mid-morning: it still
    serves in the evening, and spends most of its budget."""
    cm = CompiledMarket.from_params(reference_params)
    date = reference_params.history_start
    draws = draw_day(cm, date, market_rngs(3, 1, date))
    bids = np.array([[c.current_bid for c in reference_params.campaigns]])
    state = MarketState.initial(cm, 1)
    free, _ = resolve_day(cm, draws, state, np.full((1, cm.n_campaigns), HUGE), bids)
    budgets = free.per_campaign("cost") / 2
    res, _ = resolve_day(cm, draws, state, budgets, bids)
    cost = res.per_campaign("cost")[0]
    assert np.all(cost <= budgets[0] + 1e-9)
    assert np.all(cost >= 0.7 * budgets[0])
    evening = res.impressions[0, :, 18:].sum(axis=(1, 2))
    assert np.all(evening > 0)
