"""A tiny hand-computable market and hand-built `DayDraws` for the mechanics tests.

Its rivals bid exactly their median (sigma 0, every multiplier 1), so every score, position and price can be
written down by hand.
"""

import datetime as dt

import numpy as np

from rl.market.compiled import CompiledMarket
from rl.market.draws import RANDOM_FIELDS, DayDraws
from rl.market.engine import MarketState, resolve_opportunities
from rl.market.params import HOURS, parse_market_params

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
        "campaigns": [
            _campaign(1, "search"),
            _campaign(2, "search"),
            _campaign(3, "search"),
            _campaign(4, "social"),
            _campaign(5, "social"),
        ],
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


def tiny_market() -> CompiledMarket:
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


PER_OPP = RANDOM_FIELDS


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
