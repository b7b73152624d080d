"""The batched engine resolves all markets of a campaign in one pass; these tests hold it to the per-block mechanics
of `rl.market.auction` bit for bit, and each market of a batch to the outcome it gets alone."""

import datetime as dt

import numpy as np
import pytest

from rl.market.auction import (
    blocks,
    buckets,
    campaign_major,
    click_outcomes,
    clicks_and_cost,
    pace,
    pace_blocks,
    run_auction,
    thresholds,
)
from rl.market.compiled import CompiledMarket
from rl.market.draws import RANDOM_FIELDS, DayDraws, draw_day, market_rngs
from rl.market.engine import MarketState, OpportunityOutcome, resolve_day, resolve_opportunities
from rl.market.modifiers import cell_multipliers
from rl.market.params import HOURS
from tests.rl.market.tiny_market import CELL_METRICS

OUTCOME_FIELDS = (
    "device",
    "segment",
    "position",
    "shown",
    "clicked_if_served",
    "cost_if_served",
    "served",
    "session_if_clicked",
    "converts_if_clicked",
)
EVENT_FIELDS = ("market", "campaign", "device", "segment", "click_hour", "lag_days", "conv_hour", "value")


def block_by_block(cm, draws, state, budgets, bids, bid_mult=None) -> OpportunityOutcome:
    """Every opportunity resolved one (market, campaign) block at a time with the per-block functions."""
    n = draws.n_opportunities
    out = {
        "device": np.zeros(n, dtype=np.int64),
        "segment": np.zeros(n, dtype=np.int64),
        "position": np.zeros(n, dtype=np.int64),
        "shown": np.zeros(n, dtype=bool),
        "clicked_if_served": np.zeros(n, dtype=bool),
        "cost_if_served": np.zeros(n),
        "served": np.zeros(n, dtype=bool),
        "session_if_clicked": np.zeros(n, dtype=bool),
        "converts_if_clicked": np.zeros(n, dtype=bool),
    }
    for b in blocks(cm, draws, state):
        sl = slice(b.lo, b.hi)
        bid = bids[b.m, b.c] if bid_mult is None else bids[b.m, b.c] * bid_mult[b.m, b.c][b.hour, b.device]
        pos, shown, price = run_auction(cm, b, bid)
        clicked, cost = clicks_and_cost(cm, b, draws.u_click[sl], pos, shown, price)
        out["device"][sl], out["segment"][sl], out["position"][sl] = b.device, b.segment, pos
        out["shown"][sl], out["clicked_if_served"][sl], out["cost_if_served"][sl] = shown, clicked, cost
        out["served"][sl] = pace(cost, shown, draws.u_throttle[sl], budgets[b.m, b.c])[0]
        out["session_if_clicked"][sl], out["converts_if_clicked"][sl] = click_outcomes(cm, draws, b)
    return OpportunityOutcome(**out)


def assert_outcomes_identical(a: OpportunityOutcome, b: OpportunityOutcome) -> None:
    for name in OUTCOME_FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)


def random_setting(cm: CompiledMarket, n_markets: int, rng: np.random.Generator, volume: float):
    """Budgets (some binding, some zero), bids (some zero), device × hour-block modifiers (some devices excluded)
    and a state with fatigue and shifts."""
    budgets = np.array([c.current_daily_budget for c in cm.params.campaigns]) * volume
    budgets = budgets * rng.choice([0.002, 0.02, 0.3, 1.0, 1e6], size=(n_markets, cm.n_campaigns))
    budgets[rng.random(budgets.shape) < 0.1] = 0.0
    max_bid = np.array([c.max_bid for c in cm.params.campaigns])
    current = np.array([c.current_bid for c in cm.params.campaigns])
    bids = np.minimum(current * rng.uniform(0.2, 3.0, budgets.shape), max_bid)
    bids[rng.random(bids.shape) < 0.05] = 0.0
    state = MarketState(
        exposure=rng.uniform(0.0, 20.0, (n_markets, cm.n_campaigns)),
        comp_shift=rng.normal(0.0, 0.3, (n_markets, cm.n_competitors)),
    )
    device = rng.uniform(0.3, 2.5, (n_markets, cm.n_campaigns, 3))
    device[rng.random(device.shape) < 0.05] = 0.0  # −100%: the device is excluded
    hours = rng.uniform(0.1, 2.5, (n_markets, cm.n_campaigns, cm.params.hour_blocks))
    return budgets, bids, cell_multipliers(device, hours), state


@pytest.mark.parametrize("hourly", [False, True], ids=["flat-bids", "device-and-hour-modifiers"])
@pytest.mark.parametrize("seed", [1, 2])
def test_engine_matches_block_by_block(small_market: CompiledMarket, seed: int, hourly: bool) -> None:
    cm = small_market
    rng = np.random.default_rng(seed)
    date = cm.params.history_start + dt.timedelta(days=int(rng.integers(0, 700)))
    draws = draw_day(cm, date, market_rngs(seed, 4, date), volume_scale=np.array([1.0, 0.3, 0.0, 2.0]))
    budgets, bids, mult, state = random_setting(cm, 4, rng, 0.02)
    mult = mult if hourly else None
    engine = resolve_opportunities(cm, draws, state, budgets, bids, mult)
    assert_outcomes_identical(engine, block_by_block(cm, draws, state, budgets, bids, mult))
    assert engine.served.any() and (engine.shown & ~engine.served).any()  # pacing had something to do


def test_engine_matches_block_by_block_on_float64_draws(tiny: CompiledMarket) -> None:
    """Hand-built draws carry float64 uniforms; several markets, every campaign, random everything."""
    rng = np.random.default_rng(5)
    n_m, n = 3, 180
    market = np.sort(rng.integers(0, n_m, n))
    campaign = rng.integers(0, tiny.n_campaigns, n)
    hour = rng.integers(0, HOURS, n)
    order = np.lexsort((hour, campaign, market))
    market, campaign, hour = market[order], campaign[order], hour[order]
    counts = np.zeros((n_m, tiny.n_campaigns, HOURS), dtype=np.int64)
    np.add.at(counts, (market, campaign, hour), 1)
    fields = {f: rng.random(n) for f in RANDOM_FIELDS if f != "comp_z"}
    draws = DayDraws(
        date=dt.date(2025, 3, 3),
        n_markets=n_m,
        counts=counts,
        market=market,
        campaign=campaign,
        hour=hour,
        comp_z=rng.normal(0.0, 1.0, (n, tiny.comp_idx.shape[1])),
        z_drift=np.zeros((n_m, tiny.n_competitors)),
        group_start=np.concatenate([[0], np.cumsum(counts.sum(axis=2).reshape(-1))]),
        **fields,
    )
    budgets = rng.choice([0.0, 1.0, 5.0, 1e9], size=(n_m, tiny.n_campaigns))
    bids = rng.uniform(0.0, 8.0, (n_m, tiny.n_campaigns))
    state = MarketState(rng.uniform(0, 5, (n_m, tiny.n_campaigns)), rng.normal(0, 0.5, (n_m, tiny.n_competitors)))
    engine = resolve_opportunities(tiny, draws, state, budgets, bids)
    assert_outcomes_identical(engine, block_by_block(tiny, draws, state, budgets, bids))
    assert engine.shown.any() and not engine.shown.all()


def test_each_market_of_a_batch_gets_its_outcome_alone(small_market: CompiledMarket) -> None:
    """Markets with different volumes, states, budgets, bids and hour multipliers, resolved together and alone."""
    cm = small_market
    rng = np.random.default_rng(7)
    n_m, seed = 5, 21
    volume = np.array([1.0, 0.5, 1.7, 0.0, 1.0])
    budgets, bids, mult, state = random_setting(cm, n_m, rng, 0.02)
    for day in range(2):
        date = cm.params.history_start + dt.timedelta(days=300 + day)
        batch = draw_day(cm, date, market_rngs(seed, n_m, date), volume)
        res, new_state = resolve_day(cm, batch, state, budgets, bids, mult)
        for m in range(n_m):
            alone = draw_day(cm, date, [market_rngs(seed, n_m, date)[m]], volume[m : m + 1])
            state_m = MarketState(state.exposure[m : m + 1], state.comp_shift[m : m + 1])
            res_m, new_m = resolve_day(cm, alone, state_m, budgets[m : m + 1], bids[m : m + 1], mult[m : m + 1])
            for name in CELL_METRICS:
                np.testing.assert_array_equal(getattr(res_m, name)[0], getattr(res, name)[m], err_msg=name)
            sel = res.events.market == m
            for name in EVENT_FIELDS:
                mine = getattr(res.events, name)[sel]
                np.testing.assert_array_equal(getattr(res_m.events, name), mine - m if name == "market" else mine)
            np.testing.assert_array_equal(new_m.exposure[0], new_state.exposure[m])
            np.testing.assert_array_equal(new_m.comp_shift[0], new_state.comp_shift[m])
        assert res.clicks.sum() > 0 and res.opportunities[3].sum() == 0
        state = new_state


def test_campaign_major_order() -> None:
    lens = np.array([[2, 0, 3], [1, 4, 0]])
    group_start = np.concatenate([[0], np.cumsum(lens.reshape(-1))])
    perm, offsets, got_lens = campaign_major(group_start, 2, 3)
    np.testing.assert_array_equal(got_lens, lens)
    np.testing.assert_array_equal(offsets, [0, 3, 7, 10])
    # flat: m0c0 = 0,1; m0c2 = 2,3,4; m1c0 = 5; m1c1 = 6..9
    np.testing.assert_array_equal(perm, [0, 1, 5, 6, 7, 8, 9, 2, 3, 4])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_buckets_match_searchsorted(dtype) -> None:
    rng = np.random.default_rng(3)
    cdf = np.cumsum([0.1, 0.0, 0.25, 1 / 3, 0.0, 0.2])
    cdf[-1] = 1.0
    edges32 = cdf.astype(np.float32)
    near = np.concatenate([edges32, np.nextafter(edges32, 0), np.nextafter(edges32, 2)])
    u = np.concatenate([rng.random(5000), near, [0.0, 1.0]]).astype(dtype)
    want = np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)
    np.testing.assert_array_equal(buckets(u, cdf), want)


def test_float32_thresholds_compare_like_float64() -> None:
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.random(200), rng.random(50).astype(np.float32), [0.0, 1.0, 1e-30, 1e300, np.inf]])
    t = thresholds(np.zeros(1, dtype=np.float32), x)
    assert t.dtype == np.float32
    for xi, ti in zip(x, t, strict=True):
        u = np.array([ti, np.nextafter(ti, -np.inf), np.nextafter(ti, np.inf)], dtype=np.float32)
        np.testing.assert_array_equal(u < ti, u.astype(np.float64) < xi)
        np.testing.assert_array_equal(u >= ti, u.astype(np.float64) >= xi)


def test_pace_blocks_matches_pace() -> None:
    rng = np.random.default_rng(6)
    lens = np.array([0, 1, 7, 40, 300, 3, 0, 150])
    n = lens.sum()
    cost = np.where(rng.random(n) < 0.3, 0.0, rng.exponential(0.7, n))
    eligible = rng.random(n) < 0.8
    u = rng.random(n).astype(np.float32)
    bounds = np.concatenate([[0], np.cumsum(lens)])
    potential = np.array([cost[a:b][eligible[a:b]].sum() for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
    for budgets in (potential, potential * 0.3, np.zeros(len(lens)), potential + 1.0, np.full(len(lens), 1e-12)):
        want = np.concatenate(
            [
                pace(cost[a:b], eligible[a:b], u[a:b], budget)[0]
                for a, b, budget in zip(bounds[:-1], bounds[1:], budgets, strict=True)
            ]
        )
        np.testing.assert_array_equal(pace_blocks(cost, eligible, u, lens, budgets), want)
