"""The vectorised engine against the per-opportunity reference loop, on the same draws."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from rl.market import engine
from rl.market.compiled import CompiledMarket
from rl.market.draws import DayDraws, draw_day, market_rngs
from rl.market.engine import DayResult, MarketState, resolve_day
from rl.market.modifiers import cell_multipliers
from rl.market.reference import reference_resolve_day

DATE = dt.date(2025, 3, 14)
SEED = 11
COUNT_FIELDS = ("opportunities", "auctions_won", "impressions", "clicks", "sessions", "conversions", "position_sum")
MONEY_FIELDS = ("cost", "revenue")
EVENT_FIELDS = ("market", "campaign", "device", "segment", "click_hour", "lag_days", "conv_hour", "value")


def current(cm: CompiledMarket, n_markets: int) -> tuple[np.ndarray, np.ndarray]:
    """The campaigns' budgets and bids in force, repeated for every market, [M, C] each."""
    budgets = np.array([c.current_daily_budget for c in cm.params.campaigns])
    bids = np.array([c.current_bid for c in cm.params.campaigns])
    return np.tile(budgets, (n_markets, 1)), np.tile(bids, (n_markets, 1))


def day(cm: CompiledMarket, n_markets: int, date: dt.date = DATE, seed: int = SEED) -> DayDraws:
    return draw_day(cm, date, market_rngs(seed, n_markets, date))


def sorted_events(result: DayResult) -> np.ndarray:
    ev = np.stack([getattr(result.events, k).astype(float) for k in EVENT_FIELDS], axis=1)
    return ev[np.lexsort(ev.T[::-1])] if len(ev) else ev


def assert_same(a: tuple[DayResult, MarketState], b: tuple[DayResult, MarketState]) -> None:
    (ra, sa), (rb, sb) = a, b
    assert ra.date == rb.date
    for name in COUNT_FIELDS:
        x, y = getattr(ra, name), getattr(rb, name)
        assert x.shape == y.shape, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    for name in MONEY_FIELDS:
        np.testing.assert_allclose(getattr(ra, name), getattr(rb, name), rtol=1e-9, atol=0, err_msg=name)
    ea, eb = sorted_events(ra), sorted_events(rb)
    assert ea.shape == eb.shape
    np.testing.assert_array_equal(ea[:, :-1], eb[:, :-1])  # every integer column exactly
    np.testing.assert_allclose(ea[:, -1], eb[:, -1], rtol=1e-9, atol=0)  # order values
    np.testing.assert_array_equal(ra.budgets, rb.budgets)
    np.testing.assert_array_equal(ra.bids, rb.bids)
    np.testing.assert_array_equal(sa.exposure, sb.exposure)
    np.testing.assert_allclose(sa.comp_shift, sb.comp_shift, rtol=1e-12, atol=1e-15)


def both(cm, draws, state, budgets, bids, bid_mult=None):
    before = state.copy()
    e = resolve_day(cm, draws, state, budgets, bids, bid_mult)
    r = reference_resolve_day(cm, draws, state, budgets, bids, bid_mult)
    np.testing.assert_array_equal(state.exposure, before.exposure)  # neither modifies its input state
    np.testing.assert_array_equal(state.comp_shift, before.comp_shift)
    return e, r


def test_single_market_current_settings(small_market: CompiledMarket) -> None:
    budgets, bids = current(small_market, 1)
    e, r = both(small_market, day(small_market, 1), MarketState.initial(small_market, 1), budgets, bids)
    assert_same(e, r)
    # not a vacuous comparison: the day has auctions won and lost, clicks and spend
    assert 0 < e[0].auctions_won.sum() < e[0].opportunities.sum()
    assert e[0].clicks.sum() > 0 and e[0].cost.sum() > 0


def test_two_markets_different_settings(small_market: CompiledMarket) -> None:
    budgets, bids = current(small_market, 2)
    budgets[1] *= 0.6
    bids[1] = np.minimum(bids[1] * 1.4, [c.max_bid for c in small_market.params.campaigns])
    draws = day(small_market, 2)
    e, r = both(small_market, draws, MarketState.initial(small_market, 2), budgets, bids)
    assert_same(e, r)
    assert not np.array_equal(e[0].impressions[0], e[0].impressions[1])


def test_device_and_hour_block_modifiers(small_market: CompiledMarket) -> None:
    """Effective bid = base × device modifier × hour-block modifier, applied identically by both implementations,
    including a device excluded outright (modifier 0, Google's −100%)."""
    budgets, bids = current(small_market, 2)
    rng = np.random.default_rng(3)
    n_c, n_b = small_market.n_campaigns, small_market.params.hour_blocks
    device = rng.uniform(0.4, 2.5, size=(2, n_c, 3))
    device[1, 0, 0] = 0.0
    hours = rng.uniform(0.1, 2.5, size=(2, n_c, n_b))
    mult = cell_multipliers(device, hours)
    draws = day(small_market, 2)
    state = MarketState.initial(small_market, 2)
    e, r = both(small_market, draws, state, budgets, bids, mult)
    assert_same(e, r)
    plain, _ = resolve_day(small_market, draws, state, budgets, bids)
    assert not np.array_equal(plain.auctions_won, e[0].auctions_won)  # the modifiers mattered
    assert e[0].auctions_won[1, 0, :, 0].sum() == 0  # the excluded device wins nothing
    assert e[0].auctions_won[1, 0, :, 1].sum() > 0
    # a modifier is a multiplier of the bid: doubling the base bid equals doubling every modifier
    doubled, _ = resolve_day(small_market, draws, state, budgets, bids * 2.0, mult)
    via_mods, _ = resolve_day(small_market, draws, state, budgets, bids, mult * 2.0)
    np.testing.assert_array_equal(doubled.auctions_won, via_mods.auctions_won)


def test_binding_budgets(small_market: CompiledMarket) -> None:
    budgets, bids = current(small_market, 2)
    budgets[0] *= 0.004  # the small market spends ~2% of the real one: these budgets bind
    budgets[1] *= 0.01
    budgets[1, 0] = 0.0  # and one campaign has no budget at all
    e, r = both(small_market, day(small_market, 2), MarketState.initial(small_market, 2), budgets, bids)
    assert_same(e, r)
    res = e[0]
    spend = res.per_campaign("cost")
    assert np.all(spend <= budgets + 1e-12)
    assert res.per_campaign("impressions")[1, 0] == 0
    binding = res.per_campaign("impressions") < res.per_campaign("auctions_won")
    assert binding.sum() >= 4  # pacing actually withheld won auctions


def test_budget_covering_the_potential_spend(small_market: CompiledMarket) -> None:
    """A budget equal to the unthrottled spend serves every won auction: p = 1 and the running sum ends on it.

    Exactly equal for the engine against its own costs; with a 1e-12 relative margin across implementations, whose
    prices may differ in the last bit (the engine may rank and price in log space)."""
    budgets, bids = current(small_market, 1)
    draws = day(small_market, 1)
    state = MarketState.initial(small_market, 1)
    o = engine.resolve_opportunities(small_market, draws, state, budgets, bids)
    potential = np.zeros((1, small_market.n_campaigns))
    for c, cost, shown in zip(draws.campaign.tolist(), o.cost_if_served.tolist(), o.shown.tolist(), strict=True):
        potential[0, c] += cost if shown else 0.0  # arrival order, as the platform sums it
    spends = potential[0] > 0
    potential[potential == 0] = 1e-9  # a zero budget means paused; any positive budget serves cost-free impressions
    exact, _ = resolve_day(small_market, draws, state, potential, bids)
    np.testing.assert_array_equal(exact.per_campaign("impressions"), exact.per_campaign("auctions_won"))
    e, r = both(small_market, draws, state, potential * (1 + 1e-12), bids)
    assert_same(e, r)
    np.testing.assert_array_equal(r[0].per_campaign("impressions"), r[0].per_campaign("auctions_won"))
    # a hair less: the last costly auction overflows and nothing after it is served (not even free search
    # impressions); a campaign without spend (potential 0, a tiny positive budget) is still served in full
    e, r = both(small_market, draws, state, potential * (1 - 1e-6), bids)
    assert_same(e, r)
    impressions, won = r[0].per_campaign("impressions")[0], r[0].per_campaign("auctions_won")[0]
    assert spends.sum() >= 4 and (~spends).sum() >= 1
    assert np.all(impressions[spends] < won[spends]) and np.all(impressions[~spends] == won[~spends])


def test_nonzero_state(small_market: CompiledMarket) -> None:
    rng = np.random.default_rng(5)
    state = MarketState(
        exposure=rng.uniform(0, 40, size=(2, small_market.n_campaigns)),
        comp_shift=rng.normal(0, 0.3, size=(2, small_market.n_competitors)),
    )
    budgets, bids = current(small_market, 2)
    draws = day(small_market, 2)
    e, r = both(small_market, draws, state, budgets, bids)
    assert_same(e, r)
    fresh, _ = resolve_day(small_market, draws, MarketState.initial(small_market, 2), budgets, bids)
    assert not np.array_equal(fresh.clicks, e[0].clicks)  # the state mattered


def test_five_consecutive_days(small_market: CompiledMarket) -> None:
    budgets, bids = current(small_market, 2)
    budgets[1] *= 0.02
    state_e = state_r = MarketState.initial(small_market, 2)
    n_events = 0
    for t in range(5):
        date = DATE + dt.timedelta(days=t)
        draws = day(small_market, 2, date)
        e = resolve_day(small_market, draws, state_e, budgets, bids)
        r = reference_resolve_day(small_market, draws, state_r, budgets, bids)
        assert_same(e, r)
        n_events += len(r[0].events)
        state_e, state_r = e[1], r[1]
    assert n_events >= 3  # conversions (lags, hours, values) were compared too
    assert np.all(state_e.exposure > 0) and np.any(state_e.comp_shift != 0)


def test_perturbed_bid_is_detected(small_market: CompiledMarket) -> None:
    """The comparison can fail: a reference run with one bid raised does not match the engine."""
    budgets, bids = current(small_market, 1)
    draws = day(small_market, 1)
    state = MarketState.initial(small_market, 1)
    e = resolve_day(small_market, draws, state, budgets, bids)
    raised = bids.copy()
    raised[0, 1] *= 1.3
    r = reference_resolve_day(small_market, draws, state, budgets, raised)
    assert not np.array_equal(e[0].auctions_won, r[0].auctions_won)
    with pytest.raises(AssertionError):
        assert_same(e, r)


def test_reference_is_independent_of_engine_helpers(small_market: CompiledMarket, monkeypatch) -> None:
    def forbidden(*args, **kwargs):
        raise AssertionError("the reference loop must not call the engine's vectorised helpers")

    for name in (
        "devices_and_segments",
        "rival_scores",
        "auction",
        "pace",
        "resolve_opportunities",
        "resolve_day",
        "next_state",
        "click_multiplier",
        "click_outcomes",
    ):
        if hasattr(engine, name):
            monkeypatch.setattr(engine, name, forbidden)
    budgets, bids = current(small_market, 1)
    result, _ = reference_resolve_day(
        small_market, day(small_market, 1), MarketState.initial(small_market, 1), budgets, bids
    )
    assert result.clicks.sum() > 0


def test_reference_rejects_bad_inputs(small_market: CompiledMarket) -> None:
    budgets, bids = current(small_market, 1)
    draws = day(small_market, 1)
    state = MarketState.initial(small_market, 1)
    with pytest.raises(ValueError):
        reference_resolve_day(small_market, draws, state, -budgets, bids)
    with pytest.raises(ValueError):
        reference_resolve_day(small_market, draws, state, budgets, bids * np.nan)


def test_market_without_opportunities(small_market: CompiledMarket) -> None:
    """Empty (market, campaign) groups: the second market has no volume at all."""
    budgets, bids = current(small_market, 2)
    date = DATE
    draws = draw_day(small_market, date, market_rngs(SEED, 2, date), volume_scale=np.array([1.0, 0.0]))
    assert draws.counts[1].sum() == 0
    e, r = both(small_market, draws, MarketState.initial(small_market, 2), budgets, bids)
    assert_same(e, r)
    assert r[0].opportunities[1].sum() == 0 and r[0].clicks[0].sum() > 0


def test_world_without_rivals(small_params) -> None:
    data = small_params.model_dump()
    data["competitors"] = []
    cm = CompiledMarket.from_params(type(small_params).model_validate(data))
    budgets, bids = current(cm, 1)
    e, r = both(cm, day(cm, 1), MarketState.initial(cm, 1), budgets, bids)
    assert_same(e, r)
