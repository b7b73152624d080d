"""Market mechanics of `rl.market.engine`: auction prices on hand-computed cases, pacing, conversion timing,
determinism, monotonicity and loose statistical sanity of the reference world.

Hand-built cases use a tiny market ("tiny" below) whose rivals bid exactly their median (sigma 0, every multiplier
1), so every score, position and price can be written down by hand.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rl.market.compiled import CompiledMarket
from rl.market.draws import DayDraws, draw_day, market_rngs
from rl.market.engine import LAG_SKEW, DayResult, MarketState, resolve_day, resolve_opportunities
from rl.market.params import HOURS, MarketParams, parse_market_params
from tests.conftest import scaled

HUGE = 1e12
DATE = dt.date(2025, 3, 3)
CELL_METRICS = (
    "opportunities",
    "auctions_won",
    "impressions",
    "clicks",
    "cost",
    "sessions",
    "conversions",
    "revenue",
    "position_sum",
)

# -- the tiny hand-computable market ----------------------------------------------------------------------------
# Campaign index → (id, platform, rivals with their exact scores):
#   0: id 1, search, rivals A 6, B 4, C 2       (3 slots, reserve CPC 0.5)
#   1: id 2, search, rival  D 0.2
#   2: id 3, search, no rivals
#   3: id 4, social, rivals E 12, F 6           (1 slot, reserve CPM 5)
#   4: id 5, social, rival  G 2
# Every campaign has quality 2.0, so our score is exactly 2 × bid.
SEARCH_RESERVE, SOCIAL_RESERVE, QUALITY = 0.5, 5.0, 2.0
SEARCH_CTR = [0.1, 0.05, 0.03]


def _platform(name: str, kind: str, reserve: float, ctr: list[float]) -> dict:
    return {
        "name": name,
        "kind": kind,
        "reserve_price": reserve,
        "position_ctr": ctr,
        "session_rate": 1.0,
        "source_medium": f"{name} / paid",
        "channel_group": "Paid",
        "hour_profile": [1.0] * HOURS,
        "dow_profile": [1.0] * 7,
    }


def _campaign(cid: int, platform: str) -> dict:
    return {
        "id": cid,
        "name": f"campaign {cid}",
        "platform": platform,
        "product": "p",
        "intent": "generic",
        "opportunities_per_day": 24.0,
        "quality": QUALITY,
        "ctr_mult": 1.0,
        "cvr_mult": 1.0,
        "fatigue_per_k_impr": 0.0,
        "segment_mix": {"s": 1.0},
        "current_bid": 1.0,
        "current_daily_budget": 10.0,
        "max_bid": 100.0,
    }


def _rival(name: str, platform: str, campaigns: list[int], bid: float) -> dict:
    return {"name": name, "platform": platform, "campaigns": campaigns, "median_bid": bid, "sigma": 0.0, "quality": 1.0}


def tiny_dict() -> dict:
    return {
        "name": "tiny",
        "history_start": "2025-01-06",
        "daily_budget": 100.0,
        "target_cpa": 50.0,
        "device_shares": [0.62, 0.35, 0.03],
        "device_ctr_mult": [1.0, 1.0, 1.0],
        "device_cvr_mult": [1.0, 1.0, 1.0],
        "trend_per_year": 0.0,
        "season_amplitude": 0.0,
        "season_peak_doy": 1,
        "fatigue_decay": 0.5,
        "organic_sessions_per_day": 0.0,
        "organic_cvr": 0.0,
        "segments": [
            {
                "name": "s",
                "ctr_mult": 1.0,
                "cvr": 0.5,
                "lag_days_min": 0,
                "lag_days_max": 2,
                "value_median": 100.0,
                "value_sigma": 0.0,
                "competition_mult": 1.0,
            }
        ],
        "platforms": [
            _platform("search", "search", SEARCH_RESERVE, SEARCH_CTR),
            _platform("social", "social", SOCIAL_RESERVE, [0.01]),
        ],
        "campaigns": [_campaign(1, "search"), _campaign(2, "search"), _campaign(3, "search"),
                      _campaign(4, "social"), _campaign(5, "social")],
        "competitors": [
            _rival("A", "search", [1], 6.0),
            _rival("B", "search", [1], 4.0),
            _rival("C", "search", [1], 2.0),
            _rival("D", "search", [2], 0.2),
            _rival("E", "social", [4], 12.0),
            _rival("F", "social", [4], 6.0),
            _rival("G", "social", [5], 2.0),
        ],
    }


@pytest.fixture(scope="module")
def tiny() -> CompiledMarket:
    return CompiledMarket.from_params(parse_market_params(tiny_dict()))


def make_draws(cm: CompiledMarket, campaign, hour=None, own_markets: bool = False, **overrides) -> DayDraws:
    """Hand-built draws. Opportunities must be listed in (campaign, hour) order; with `own_markets` each one is its
    own market instead (so each can get its own bid). Defaults: mobile, first segment, rivals at their median, never
    throttled, always clicked, always a session and a conversion."""
    campaign = np.asarray(campaign, dtype=np.int64)
    n = len(campaign)
    hour = np.full(n, 12, dtype=np.int64) if hour is None else np.asarray(hour, dtype=np.int64)
    market = np.arange(n) if own_markets else np.zeros(n, dtype=np.int64)
    n_markets = n if own_markets else 1
    key = (market * cm.n_campaigns + campaign) * HOURS + hour
    assert np.all(np.diff(key) >= 0), "opportunities must be in (market, campaign, hour) order"
    counts = np.bincount(key, minlength=n_markets * cm.n_campaigns * HOURS).reshape(n_markets, cm.n_campaigns, HOURS)
    fields = {
        "u_device": np.zeros(n),
        "u_segment": np.zeros(n),
        "comp_z": np.zeros((n, cm.comp_idx.shape[1])),
        "u_throttle": np.zeros(n),
        "u_click": np.zeros(n),
        "u_session": np.zeros(n),
        "u_conv": np.zeros(n),
        "u_lag": np.zeros(n),
        "u_conv_hour": np.zeros(n),
        "z_value": np.zeros(n),
    }
    for k, v in overrides.items():
        assert k in fields, k
        fields[k] = np.broadcast_to(np.asarray(v, dtype=fields[k].dtype), fields[k].shape).copy()
    return DayDraws(
        date=DATE,
        n_markets=n_markets,
        counts=counts,
        market=market,
        campaign=campaign,
        hour=hour,
        z_drift=np.zeros((n_markets, cm.n_competitors)),
        group_start=np.concatenate([[0], np.cumsum(counts.sum(axis=2).reshape(-1))]),
        **fields,
    )


PER_OPP = ("u_device", "u_segment", "comp_z", "u_throttle", "u_click", "u_session", "u_conv", "u_lag",
           "u_conv_hour", "z_value")


def one_market_each(cm: CompiledMarket, draws: DayDraws, idx: np.ndarray, **overrides) -> DayDraws:
    """Opportunities `idx` of real draws (all from market 0), each moved into its own market."""
    fields = {k: np.asarray(getattr(draws, k)[idx]) for k in PER_OPP}
    fields.update(overrides)
    return make_draws(cm, draws.campaign[idx], hour=draws.hour[idx], own_markets=True, **fields)


def run_auction(cm: CompiledMarket, draws: DayDraws, bid, state: MarketState | None = None):
    """Auction outcome for one bid per opportunity (draws built with `own_markets`, budgets unlimited, u_click 0 so
    every shown search ad is clicked and its cost is the price). Returns position (0 = not shown), shown and the
    price per click (search) or per impression (social), NaN where not shown."""
    n_m = draws.n_markets
    assert n_m == draws.n_opportunities, "one opportunity per market"
    assert np.all(draws.u_click == 0)
    bids = np.zeros((n_m, cm.n_campaigns))
    bids[draws.market, draws.campaign] = bid
    state = MarketState.initial(cm, n_m) if state is None else state
    o = resolve_opportunities(cm, draws, state, np.full((n_m, cm.n_campaigns), HUGE), bids)
    np.testing.assert_array_equal(o.clicked_if_served, o.shown)  # u_click = 0 < CTR: every shown ad is clicked
    np.testing.assert_array_equal(o.served, o.shown)  # unlimited budget: nothing is throttled
    return o.position, o.shown, np.where(o.shown, o.cost_if_served, np.nan)


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
    draws = make_draws(cm, [0] * 4, hour=[5, 5, 6, 6], own_markets=True, u_device=[0.7, 0.7, 0.1, 0.1],
                       comp_z=comp_z)
    a_desktop_5 = 6.0 * np.exp(0.5 * 1.0) * 1.5 * 1.2 * np.exp(0.1) * 1.3 * 1.5
    a_mobile_6 = 6.0 * np.exp(0.5 * 1.0) * 1.0 * 1.0 * np.exp(0.1) * 1.3 * 1.5
    b = 4.0 * 1.3  # rival B: no multipliers but the segment's
    bids = [100.0, 10.0, 100.0, 10.0]  # 200 beats A; 20 lies between A (≈ 38 / 26) and B (5.2)
    position, _, price = run_auction(cm, draws, bids, state)
    assert position.tolist() == [1, 2, 1, 2]
    np.testing.assert_allclose(price, [a_desktop_5 / 2, b / 2, a_mobile_6 / 2, b / 2], rtol=1e-12)


def test_resolve_day_charges_the_auction_prices(tiny: CompiledMarket) -> None:
    """End to end on the hand-built day: every won auction is clicked (u_click = 0); search pays its GSP price per
    click, social its eCPM price per impression; per-hour bid multipliers set the bid."""
    campaign = [0, 0, 0, 0, 1, 3, 3, 3]
    hour = [1, 2, 3, 4, 0, 0, 1, 2]
    draws = make_draws(tiny, campaign, hour=hour)
    bids = np.array([[1.0, 0.6, 1.0, 1.0, 1.0]])
    mult = np.ones((1, 5, HOURS))
    mult[0, 0, 1:5] = [3.5, 2.5, 1.5, 0.75]  # positions 1, 2, 3, not shown
    mult[0, 3, 0:3] = [7.0, 5.5, 50.0]  # shown, not shown, shown
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
    mult = np.random.default_rng(seed).uniform(0.0, 3.0, (2, cm.n_campaigns, HOURS)) if hourly else None
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


# -- conversions ------------------------------------------------------------------------------------------------


def _same_day_params(params: MarketParams) -> MarketParams:
    """The market with every segment's shortest lag 0, so same-day conversions occur."""
    data = params.model_dump()
    for s in data["segments"]:
        s["lag_days_min"] = 0
    return MarketParams.model_validate(data)


def _check_funnel_and_events(cm: CompiledMarket, res: DayResult) -> None:
    order = ["opportunities", "auctions_won", "impressions", "clicks", "sessions", "conversions"]
    for hi, lo in zip(order, order[1:], strict=False):
        assert np.all(getattr(res, lo) <= getattr(res, hi)), f"{lo} > {hi}"
    ev = res.events
    assert len(ev) == res.conversions.sum()
    assert np.all(ev.lag_days >= cm.lag_min[ev.segment])
    assert np.all(ev.lag_days <= cm.lag_max[ev.segment])
    assert np.all(cm.lag_min >= 0)
    assert np.all((ev.conv_hour >= 0) & (ev.conv_hour < HOURS))
    assert np.all((ev.click_hour >= 0) & (ev.click_hour < HOURS))
    same_day = ev.lag_days == 0
    assert np.all(ev.conv_hour[same_day] >= ev.click_hour[same_day])
    # Events add up to the cell counts and revenue.
    n_c = cm.n_campaigns
    cell = ((ev.market * n_c + ev.campaign) * HOURS + ev.click_hour) * 3 + ev.device
    counts = np.bincount(cell, minlength=res.conversions.size).reshape(res.conversions.shape)
    np.testing.assert_array_equal(counts, res.conversions)
    revenue = np.bincount(cell, weights=ev.value, minlength=res.revenue.size).reshape(res.revenue.shape)
    np.testing.assert_allclose(revenue, res.revenue, rtol=1e-12)
    assert np.all(ev.value > 0)


@pytest.mark.parametrize("same_day", [False, True], ids=["reference-lags", "lag-min-0"])
def test_no_conversion_is_reported_before_it_happens(reference_params: MarketParams, same_day: bool) -> None:
    base = scaled(reference_params, 0.25)  # enough volume for a few hundred conversions
    params = _same_day_params(base) if same_day else base
    cm = CompiledMarket.from_params(params)
    state = MarketState.initial(cm, 3)
    bids = np.tile([c.max_bid for c in params.campaigns], (3, 1))  # bid high: many clicks and conversions
    lags, n_events = [], 0
    for day in range(4):
        date = params.history_start + dt.timedelta(days=day)
        draws = draw_day(cm, date, market_rngs(11, 3, date))
        res, state = resolve_day(cm, draws, state, np.full((3, cm.n_campaigns), HUGE), bids)
        _check_funnel_and_events(cm, res)
        lags.append(res.events.lag_days)
        n_events += len(res.events)
    lags = np.concatenate(lags)
    assert n_events > 100  # the checks above had something to check
    if same_day:
        assert np.sum(lags == 0) > 10  # and the same-day branch was exercised
    else:
        assert lags.min() >= 1


def test_conversion_lag_and_hour_by_hand(tiny: CompiledMarket) -> None:
    """Segment lag range 0..2 (span 3): lag = floor(u_lag^1.5 × 3); same day → hour = click hour + floor(u × (24 −
    click hour)), later days → floor(u × 24). Order value = median (sigma 0)."""
    u_lag = np.array([0.0, 0.5, 0.8, 0.9999, 0.3, 0.3])
    u_hour = np.array([0.0, 0.5, 0.9999, 0.25, 0.9999, 0.5])
    hour = [3, 5, 10, 20, 23, 23]
    draws = make_draws(tiny, [2] * 6, hour=hour, u_lag=u_lag, u_conv_hour=u_hour)
    res, _ = resolve_day(tiny, draws, MarketState.initial(tiny, 1), np.full((1, 5), HUGE), np.ones((1, 5)))
    ev = res.events
    assert len(ev) == 6
    want_lag = [int(u**LAG_SKEW * 3) for u in u_lag]
    assert want_lag == [0, 1, 2, 2, 0, 0]
    assert ev.lag_days.tolist() == want_lag
    assert ev.click_hour.tolist() == hour
    # lag 0 at hour 3, u 0: hour 3; lag 1: floor(0.5 × 24) = 12; lag 2: 23; lag 2: 6; lag 0 at hour 23: 23 both.
    assert ev.conv_hour.tolist() == [3, 12, 23, 6, 23, 23]
    np.testing.assert_array_equal(ev.value, 100.0)
    assert res.revenue.sum() == 600.0


def test_conversion_needs_a_session(tiny: CompiledMarket) -> None:
    """A click that GA4 does not record as a session (u_session ≥ rate) never converts; nor does u_conv ≥ CVR 0.5."""
    data = tiny_dict()
    data["platforms"][0]["session_rate"] = 0.9
    cm = CompiledMarket.from_params(parse_market_params(data))
    draws = make_draws(cm, [2, 2, 2], u_session=[0.95, 0.1, 0.1], u_conv=[0.0, 0.6, 0.4])
    res, _ = resolve_day(cm, draws, MarketState.initial(cm, 1), np.full((1, 5), HUGE), np.ones((1, 5)))
    assert res.clicks.sum() == 3
    assert res.sessions.sum() == 2
    assert res.conversions.sum() == 1


# -- determinism ------------------------------------------------------------------------------------------------


def _assert_draws_equal(a: DayDraws, b: DayDraws) -> None:
    for f in dataclasses.fields(DayDraws):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y, err_msg=f.name)
        else:
            assert x == y, f.name


def _assert_results_equal(a: DayResult, b: DayResult) -> None:
    for name in CELL_METRICS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for f in dataclasses.fields(a.events):
        np.testing.assert_array_equal(getattr(a.events, f.name), getattr(b.events, f.name), err_msg=f.name)


def _simulate(cm: CompiledMarket, seed: int, n_markets: int, days: int = 3):
    state = MarketState.initial(cm, n_markets)
    bids = np.tile([c.current_bid for c in cm.params.campaigns], (n_markets, 1))
    budgets = np.tile([c.current_daily_budget for c in cm.params.campaigns], (n_markets, 1)) * 0.02
    out = []
    for day in range(days):
        date = cm.params.history_start + dt.timedelta(days=day)
        draws = draw_day(cm, date, market_rngs(seed, n_markets, date))
        res, state = resolve_day(cm, draws, state, budgets, bids)
        out.append((draws, res, state))
    return out


def test_same_seed_same_draws_and_results(small_market: CompiledMarket) -> None:
    a, b = _simulate(small_market, 5, 2), _simulate(small_market, 5, 2)
    for (da, ra, sa), (db, rb, sb) in zip(a, b, strict=True):
        _assert_draws_equal(da, db)
        _assert_results_equal(ra, rb)
        np.testing.assert_array_equal(sa.exposure, sb.exposure)
        np.testing.assert_array_equal(sa.comp_shift, sb.comp_shift)


def test_different_seed_different_draws(small_market: CompiledMarket) -> None:
    date = small_market.params.history_start
    a = draw_day(small_market, date, market_rngs(5, 1, date))
    b = draw_day(small_market, date, market_rngs(6, 1, date))
    assert not np.array_equal(a.counts, b.counts)
    n = min(a.n_opportunities, b.n_opportunities)
    assert not np.array_equal(a.u_click[:n], b.u_click[:n])
    ra, rb = _simulate(small_market, 5, 1, days=1)[0][1], _simulate(small_market, 6, 1, days=1)[0][1]
    assert not np.array_equal(ra.impressions, rb.impressions)
    # ... and another date with the same seed is another day too.
    c = draw_day(small_market, date + dt.timedelta(days=1), market_rngs(5, 1, date + dt.timedelta(days=1)))
    assert not np.array_equal(a.counts, c.counts)


def _market_slice(draws: DayDraws, m: int) -> dict[str, np.ndarray]:
    sel = draws.market == m
    out = {name: getattr(draws, name)[sel] for name in ("campaign", "hour", "u_device", "u_segment", "comp_z",
                                                        "u_throttle", "u_click", "u_session", "u_conv", "u_lag",
                                                        "u_conv_hour", "z_value")}
    out["counts"] = draws.counts[m]
    out["z_drift"] = draws.z_drift[m]
    return out


@pytest.mark.parametrize("m", [0, 1, 2])
def test_market_draws_do_not_depend_on_the_batch(small_market: CompiledMarket, m: int) -> None:
    cm = small_market
    seed, date = 9, cm.params.history_start + dt.timedelta(days=40)
    batch = draw_day(cm, date, market_rngs(seed, 3, date))
    alone = draw_day(cm, date, [market_rngs(seed, 3, date)[m]])
    if m == 0:
        _assert_draws_equal(alone, draw_day(cm, date, market_rngs(seed, 1, date)))
    for name, value in _market_slice(alone, 0).items():
        np.testing.assert_array_equal(value, _market_slice(batch, m)[name], err_msg=name)
    # ... and so do its outcomes, at the same bids and budgets.
    bids = np.array([c.current_bid for c in cm.params.campaigns])
    budgets = np.array([c.current_daily_budget for c in cm.params.campaigns]) * 0.02
    rb, sb = resolve_day(cm, batch, MarketState.initial(cm, 3), np.tile(budgets, (3, 1)), np.tile(bids, (3, 1)))
    ra, sa = resolve_day(cm, alone, MarketState.initial(cm, 1), budgets[None], bids[None])
    for name in CELL_METRICS:
        np.testing.assert_array_equal(getattr(ra, name)[0], getattr(rb, name)[m], err_msg=name)
    np.testing.assert_array_equal(sa.exposure[0], sb.exposure[m])
    np.testing.assert_array_equal(sa.comp_shift[0], sb.comp_shift[m])


def test_resolve_day_does_not_modify_its_inputs(small_market: CompiledMarket) -> None:
    cm = small_market
    draws, _, state = _simulate(cm, 1, 2, days=1)[0]
    before = state.copy()
    bids = np.tile([c.current_bid for c in cm.params.campaigns], (2, 1))
    budgets = np.full((2, cm.n_campaigns), 5.0)
    r1, s1 = resolve_day(cm, draws, state, budgets, bids)
    np.testing.assert_array_equal(state.exposure, before.exposure)
    np.testing.assert_array_equal(state.comp_shift, before.comp_shift)
    r2, _ = resolve_day(cm, draws, state, budgets, bids)
    _assert_results_equal(r1, r2)


# -- monotonicity -----------------------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    day=st.integers(0, 700),
    campaign=st.integers(0, 7),
    low=st.floats(0.0, 20.0),
    raise_by=st.floats(0.0, 20.0),
)
def test_raising_a_bid_never_lowers_impressions_or_cost(small_market: CompiledMarket, seed, day, campaign, low,
                                                        raise_by) -> None:
    """Unlimited budget, common random numbers: a higher bid wins a superset of auctions at weakly better slots,
    so impressions, clicks and cost do not fall (per cell); the other campaigns are untouched."""
    cm = small_market
    date = cm.params.history_start + dt.timedelta(days=day)
    draws = draw_day(cm, date, market_rngs(seed, 1, date))
    state = MarketState.initial(cm, 1)
    budgets = np.full((1, cm.n_campaigns), HUGE)
    bids = np.array([[c.current_bid for c in cm.params.campaigns]])
    lo_bids, hi_bids = bids.copy(), bids.copy()
    lo_bids[0, campaign] = low
    hi_bids[0, campaign] = low + raise_by
    lo, _ = resolve_day(cm, draws, state, budgets, lo_bids)
    hi, _ = resolve_day(cm, draws, state, budgets, hi_bids)
    for name in ("auctions_won", "impressions", "clicks"):
        assert np.all(getattr(hi, name)[0, campaign] >= getattr(lo, name)[0, campaign]), name
    assert np.all(hi.cost[0, campaign] >= lo.cost[0, campaign] - 1e-12)
    others = np.arange(cm.n_campaigns) != campaign
    for name in CELL_METRICS:
        np.testing.assert_array_equal(getattr(hi, name)[0, others], getattr(lo, name)[0, others], err_msg=name)


# -- statistical sanity of the reference world (loose) -----------------------------------------------------------


def test_reference_world_statistics(reference_params: MarketParams) -> None:
    """20 days of the full reference world at current bids and budgets."""
    p = reference_params
    cm = CompiledMarket.from_params(p)
    bids = np.array([[c.current_bid for c in p.campaigns]])
    budgets = np.array([[c.current_daily_budget for c in p.campaigns]])
    state = MarketState.initial(cm, 1)
    totals = {k: np.zeros(cm.n_campaigns) for k in ("cost", "clicks", "impressions", "conversions")}
    by_device = np.zeros(3)
    for day in range(20):
        date = p.history_start + dt.timedelta(days=day)
        draws = draw_day(cm, date, market_rngs(2024, 1, date))
        res, state = resolve_day(cm, draws, state, budgets, bids)
        for k in totals:
            totals[k] += res.per_campaign(k)[0]
        by_device += res.opportunities.sum(axis=(0, 1, 2))
        assert np.all(res.per_campaign("cost")[0] <= budgets[0] + 1e-9)
    search = cm.is_search
    cpc = totals["cost"][search] / totals["clicks"][search]
    cpm = 1000 * totals["cost"][~search] / totals["impressions"][~search]
    cvr = totals["conversions"].sum() / totals["clicks"].sum()
    assert np.all((cpc >= 1.0) & (cpc <= 8.0)), dict(zip(cm.campaign_ids[search].tolist(), cpc.round(2), strict=True))
    assert np.all((cpm >= 8.0) & (cpm <= 25.0)), dict(zip(cm.campaign_ids[~search].tolist(), cpm.round(2), strict=True))
    assert 0.01 <= cvr <= 0.06, cvr
    np.testing.assert_allclose(by_device / by_device.sum(), [0.62, 0.35, 0.03], atol=0.01)
