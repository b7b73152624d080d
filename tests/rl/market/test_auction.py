"""GSP and eCPM auctions: hand-computed positions, prices and ties; the rival score formula; price
properties on real draws.
"""

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rl.market.compiled import CompiledMarket
from rl.market.draws import draw_day, market_rngs
from rl.market.engine import MarketState, resolve_day
from rl.market.params import HOURS, parse_market_params
from tests.rl.market.tiny_market import (
    HUGE,
    make_draws,
    one_market_each,
    run_auction,
    tiny_dict,
)

# -- GSP / eCPM prices, hand-computed ---------------------------------------------------------------------------

# (campaign index, bid, expected position (0 = not shown), expected price per click (search) or impression (social))
AUCTION_CASES = [
    # Search campaign 0, rivals 6 / 4 / 2, our score 2 × bid.
    (0, 3.5, 1, 3.0),  # score 7 beats all; pays next score 6 / quality 2
    (0, 100.0, 1, 3.0),  # the price does not depend on our own bid
    (0, 3.0, 1, 3.0),  # exact tie with A (6): A is not strictly higher, so we rank above it and pay our bid
    (0, 2.5, 2, 2.0),  # score 5: below A, pays B's 4 / 2
    (0, 2.0, 2, 2.0),  # tie with B
    (0, 1.5, 3, 1.0),  # score 3: third slot, pays C's 2 / 2
    (0, 1.0, 3, 1.0),  # tie with C: still the last slot
    (0, 1.0 - 1e-12, 0, None),  # a hair below C: fourth, and there is no fourth slot
    (0, 0.75, 0, None),  # score 1.5 → position 4 of 3 slots: not shown
    (0, 0.4, 0, None),  # below the last slot and the reserve
    # Search campaign 1, one rival at 0.2: the reserve decides.
    (1, 0.09, 0, None),  # below the rival and the reserve
    (1, 0.4, 0, None),  # outranks the rival (0.8 > 0.2) but the bid is below the reserve 0.5
    (1, 0.5, 1, 0.5),  # bid exactly at the reserve is enough
    (1, 0.6, 1, 0.5),  # next score / quality = 0.1 < reserve: pays the reserve
    (1, 9.0, 1, 0.5),
    # Search campaign 2, no rivals at all.
    (2, 0.49, 0, None),
    (2, 0.7, 1, 0.5),
    # Social campaign 3, rivals 12 / 6 (CPM), one slot, per-impression price = max(5, best / 2) / 1000.
    (3, 7.0, 1, 0.006),
    (3, 6.0, 1, 0.006),  # tie with E
    (3, 50.0, 1, 0.006),
    (3, 5.5, 0, None),  # score 11 < 12: a social auction has no second slot
    (3, 3.5, 0, None),
    # Social campaign 4, one rival at 2: the reserve CPM decides.
    (4, 4.0, 0, None),  # beats the rival but bids under the reserve CPM 5
    (4, 5.0, 1, 0.005),
    (4, 20.0, 1, 0.005),
]


def test_auction_positions_and_prices(tiny: CompiledMarket) -> None:
    campaign = [c for c, *_ in AUCTION_CASES]
    bid = np.array([b for _, b, *_ in AUCTION_CASES])
    draws = make_draws(tiny, campaign, own_markets=True)
    position, shown, price = run_auction(tiny, draws, bid)
    for i, (c, b, want_pos, want_price) in enumerate(AUCTION_CASES):
        case = f"campaign {c}, bid {b}"
        assert position[i] == want_pos, case
        assert shown[i] == (want_pos > 0), case
        if want_price is not None:
            assert price[i] == pytest.approx(want_price, rel=1e-12), case
            unit = price[i] if tiny.is_search[c] else price[i] * 1000
            assert unit <= b * (1 + 1e-12), case  # never pay more than the bid


def test_exact_tie_ranks_us_above_the_rival(tiny: CompiledMarket) -> None:
    """Bids whose score equals a rival's exactly (2 × 3 = 6 = A, …): a rival ranks above us only if its score is
    strictly higher, and GSP then charges exactly our bid (the tied score / our quality)."""
    draws = make_draws(tiny, [0, 0, 0, 3], own_markets=True)
    tie_bid = np.array([3.0, 2.0, 1.0, 6.0])  # rivals A 6, B 4, C 2 (search) and E 12 (social), quality 2
    position, shown, price = run_auction(tiny, draws, tie_bid)
    assert position.tolist() == [1, 2, 3, 1]
    assert shown.all()
    np.testing.assert_allclose(price, tie_bid * [1, 1, 1, 1e-3], rtol=1e-14)
    # A hair less and the rival outranks us: search drops a slot (or out), social loses the only slot.
    position, shown, _ = run_auction(tiny, draws, tie_bid * (1 - 1e-12))
    assert position.tolist() == [2, 3, 0, 0]


def test_zero_bid_never_enters_even_without_a_reserve() -> None:
    data = tiny_dict()
    data["platforms"][0]["reserve_price"] = 0.0
    cm = CompiledMarket.from_params(parse_market_params(data))
    draws = make_draws(cm, [2, 2], own_markets=True)  # campaign without rivals
    position, shown, price = run_auction(cm, draws, [0.0, 0.01])
    assert position.tolist() == [0, 1]
    assert shown.tolist() == [False, True]
    assert price[1] == 0.0  # no rival, no reserve: a free click


def test_rival_score_multipliers_by_hand() -> None:
    """Rival score = median × exp(sigma·z) × hour mult × device mult × exp(adaptation shift) × segment competition
    mult × rival quality, seen through the price: at position 1 we pay the top rival's score / our quality, at
    position 2 the second's."""
    data = tiny_dict()
    data["segments"][0]["competition_mult"] = 1.3
    a = data["competitors"][0]
    a.update(sigma=0.5, quality=1.5, device_mult=[1.0, 1.2, 1.0])
    a["hour_mult"] = [1.0] * HOURS
    a["hour_mult"][5] = 1.5
    cm = CompiledMarket.from_params(parse_market_params(data))
    state = MarketState.initial(cm, 4)
    state.comp_shift[:, 0] = 0.1  # rival A's adaptation
    comp_z = np.zeros((4, cm.comp_idx.shape[1]))
    comp_z[:, 0] = 1.0  # A is rival slot 0 of campaign 0
    # Desktop (u = 0.7 falls in [0.62, 0.97)) at hour 5, twice; then mobile at hour 6, twice.
    draws = make_draws(cm, [0] * 4, hour=[5, 5, 6, 6], own_markets=True, u_device=[0.7, 0.7, 0.1, 0.1], comp_z=comp_z)
    a_desktop_5 = 6.0 * np.exp(0.5 * 1.0) * 1.5 * 1.2 * np.exp(0.1) * 1.3 * 1.5
    a_mobile_6 = 6.0 * np.exp(0.5 * 1.0) * 1.0 * 1.0 * np.exp(0.1) * 1.3 * 1.5
    b = 4.0 * 1.3  # rival B: no multipliers but the segment's
    bids = [100.0, 10.0, 100.0, 10.0]  # 200 beats A; 20 lies between A (≈ 38 / 26) and B (5.2)
    position, _, price = run_auction(cm, draws, bids, state)
    assert position.tolist() == [1, 2, 1, 2]
    np.testing.assert_allclose(price, [a_desktop_5 / 2, b / 2, a_mobile_6 / 2, b / 2], rtol=1e-12)


def test_resolve_day_charges_the_auction_prices(tiny: CompiledMarket) -> None:
    """End to end on the hand-built day: every won auction is clicked (u_click = 0); search pays its GSP price per
    click, social its eCPM price per impression; per-(hour, device) bid multipliers set the bid."""
    campaign = [0, 0, 0, 0, 1, 3, 3, 3]
    hour = [1, 2, 3, 4, 0, 0, 1, 2]
    draws = make_draws(tiny, campaign, hour=hour)
    bids = np.array([[1.0, 0.6, 1.0, 1.0, 1.0]])
    mult = np.ones((1, 5, HOURS, 1))  # the same for every device
    mult[0, 0, 1:5, 0] = [3.5, 2.5, 1.5, 0.75]  # positions 1, 2, 3, not shown
    mult[0, 3, 0:3, 0] = [7.0, 5.5, 50.0]  # shown, not shown, shown
    res, _ = resolve_day(tiny, draws, MarketState.initial(tiny, 1), np.full((1, 5), HUGE), bids, mult)
    assert res.per_campaign("opportunities")[0].tolist() == [4, 1, 0, 3, 0]
    assert res.per_campaign("auctions_won")[0].tolist() == [3, 1, 0, 2, 0]
    assert res.per_campaign("impressions")[0].tolist() == [3, 1, 0, 2, 0]
    assert res.per_campaign("clicks")[0].tolist() == [3, 1, 0, 2, 0]
    np.testing.assert_allclose(res.per_campaign("cost")[0], [3.0 + 2.0 + 1.0, 0.5, 0, 0.012, 0], rtol=1e-12)
    assert res.per_campaign("position_sum")[0].tolist() == [1 + 2 + 3, 1, 0, 2, 0]
    np.testing.assert_allclose(res.cost[0, 0, 1:4].sum(axis=1), [3.0, 2.0, 1.0], rtol=1e-12)  # by hour


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    day=st.integers(0, 700),
    bids=st.lists(st.floats(0.0, 40.0), min_size=8, max_size=8),
)
def test_gsp_price_properties_on_random_auctions(small_market: CompiledMarket, seed: int, day: int, bids) -> None:
    """On real draws (random rivals) and arbitrary bids: a shown ad pays between the reserve and its bid, sits in a
    valid slot (social: the only one), and its price is exactly the bid that keeps its position — a hair above
    keeps position and price, a hair below loses the position (GSP: price = max(reserve, next score / quality))."""
    cm = small_market
    date = cm.params.history_start + dt.timedelta(days=day)
    day_draws = draw_day(cm, date, market_rngs(seed, 1, date))
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(day_draws.n_opportunities, size=min(300, day_draws.n_opportunities), replace=False))
    draws = one_market_each(cm, day_draws, idx, u_click=np.zeros(len(idx)))
    c = draws.campaign
    bid = np.asarray(bids)[c] * rng.uniform(0.5, 1.5, len(idx))
    position, shown, price = run_auction(cm, draws, bid)
    reserve = cm.reserve[c]
    unit = np.where(cm.is_search[c], price, price * 1000)  # per click (search) or CPM (social)
    np.testing.assert_array_equal(position == 0, ~shown)
    np.testing.assert_array_equal(shown[bid == 0], False)
    assert np.all(position[shown] <= cm.n_slots[c][shown])
    assert np.all(bid[shown] >= reserve[shown]) and np.all(bid[shown] > 0)
    assert np.all(unit[shown] <= bid[shown] * (1 + 1e-12))
    assert np.all(unit[shown] >= reserve[shown] * (1 - 1e-12))
    if not shown.any():
        return
    keep_bid = np.where(shown, np.minimum(bid, unit * (1 + 1e-9)), bid)
    keep_pos, keep_shown, keep_price = run_auction(cm, draws, keep_bid)
    np.testing.assert_array_equal(keep_pos, position)
    np.testing.assert_allclose(keep_price[shown], price[shown], rtol=1e-12)
    lower_pos, *_ = run_auction(cm, draws, np.where(shown, unit * (1 - 1e-9), bid))
    assert np.all((lower_pos[shown] == 0) | (lower_pos[shown] > position[shown]))
