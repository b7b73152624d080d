"""The batched market engine: resolve a day's draws under budgets and bids for C campaigns × M markets at once.

Per (market, campaign) block the auction, clicks and pacing come from `rl.market.auction` (whose docstring lists the
mechanics); this module adds what follows a click — a GA4 session, a conversion after a segment-specific lag on the
simulated clock, its order value — aggregates everything to [market, campaign, hour, device] cells, and carries
state (creative fatigue, rivals' adaptation) to the next day. `rl.market.reference` is the same day as a plain
per-opportunity loop, and tests hold the two to identical outcomes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from rl.market.auction import blocks, click_outcomes, clicks_and_cost, pace, run_auction
from rl.market.compiled import CompiledMarket
from rl.market.draws import DayDraws
from rl.market.params import DEVICES, HOURS

N_DEVICES = len(DEVICES)
COMP_MEAN_REVERSION = 0.05  # daily pull of a rival's adaptation shift back to 0, keeps shifts bounded
LAG_SKEW = 1.5  # lag = min + floor(u**LAG_SKEW × (max − min + 1)): more short lags than long ones


@dataclass
class MarketState:
    """What carries over from one day to the next. exposure: [M, C] fatigue stock in thousands of impressions;
    comp_shift: [M, K] each rival's log-bid adaptation."""

    exposure: np.ndarray
    comp_shift: np.ndarray

    @classmethod
    def initial(cls, cm: CompiledMarket, n_markets: int) -> MarketState:
        return cls(np.zeros((n_markets, cm.n_campaigns)), np.zeros((n_markets, cm.n_competitors)))

    def copy(self) -> MarketState:
        return MarketState(self.exposure.copy(), self.comp_shift.copy())


@dataclass
class ConversionEvents:
    """One row per conversion caused by the day's clicks (they happen `lag_days` after the click date)."""

    market: np.ndarray
    campaign: np.ndarray
    device: np.ndarray
    segment: np.ndarray
    click_hour: np.ndarray
    lag_days: np.ndarray
    conv_hour: np.ndarray
    value: np.ndarray

    def __len__(self) -> int:
        return len(self.market)


@dataclass
class DayResult:
    """Outcomes of one day. Cell arrays are [M, C, 24, D] (market, campaign, hour, device)."""

    date: dt.date
    opportunities: np.ndarray
    auctions_won: np.ndarray  # would have been shown had the budget allowed
    impressions: np.ndarray
    clicks: np.ndarray
    cost: np.ndarray
    sessions: np.ndarray
    conversions: np.ndarray  # conversions by click date (eventual: some happen days later)
    revenue: np.ndarray
    position_sum: np.ndarray  # sum of slot positions over impressions (search average position)
    events: ConversionEvents
    budgets: np.ndarray  # [M, C] as applied
    bids: np.ndarray  # [M, C] as applied
    extra: dict = field(default_factory=dict)

    def per_campaign(self, name: str) -> np.ndarray:
        """A cell metric summed to [M, C]."""
        return getattr(self, name).sum(axis=(2, 3))


@dataclass
class OpportunityOutcome:
    """Per-opportunity intermediate results (exposed for oracles and tests)."""

    device: np.ndarray
    segment: np.ndarray
    position: np.ndarray  # 1-based slot, 0 when not shown
    shown: np.ndarray  # won the auction (before pacing)
    clicked_if_served: np.ndarray
    cost_if_served: np.ndarray
    served: np.ndarray  # after pacing and the budget stop
    session_if_clicked: np.ndarray
    converts_if_clicked: np.ndarray


def resolve_opportunities(cm, draws, state, budgets, bids, hour_bid_mult=None) -> OpportunityOutcome:
    """Auction, click and pacing outcome of every opportunity, block by block."""
    n = draws.n_opportunities
    device = np.empty(n, dtype=np.int64)
    segment = np.empty(n, dtype=np.int64)
    position = np.zeros(n, dtype=np.int64)
    shown = np.zeros(n, dtype=bool)
    clicked = np.zeros(n, dtype=bool)
    cost = np.zeros(n)
    served = np.zeros(n, dtype=bool)
    converts = np.zeros(n, dtype=bool)
    sessions = np.zeros(n, dtype=bool)
    for b in blocks(cm, draws, state):
        sl = slice(b.lo, b.hi)
        bid = bids[b.m, b.c] if hour_bid_mult is None else bids[b.m, b.c] * hour_bid_mult[b.m, b.c][b.hour]
        pos, shw, price = run_auction(cm, b, bid)
        clk, cst = clicks_and_cost(cm, b, draws.u_click[sl], pos, shw, price)
        device[sl], segment[sl], position[sl], shown[sl], clicked[sl], cost[sl] = (
            b.device,
            b.segment,
            pos,
            shw,
            clk,
            cst,
        )
        served[sl] = pace(cst, shw, draws.u_throttle[sl], budgets[b.m, b.c])[0]
        sessions[sl], converts[sl] = click_outcomes(cm, draws, b)
    return OpportunityOutcome(device, segment, position, shown, clicked, cost, served, sessions, converts)


def resolve_day(
    cm: CompiledMarket,
    draws: DayDraws,
    state: MarketState,
    budgets: np.ndarray,
    bids: np.ndarray,
    hour_bid_mult: np.ndarray | None = None,
) -> tuple[DayResult, MarketState]:
    """Resolve one day. budgets, bids: [M, C]; hour_bid_mult: optional [M, C, 24]. Returns the result and the
    next day's state (the input state is not modified)."""
    n_m, n_c = draws.n_markets, cm.n_campaigns
    budgets = np.asarray(budgets, dtype=float).reshape(n_m, n_c)
    bids = np.asarray(bids, dtype=float).reshape(n_m, n_c)
    if np.any(~np.isfinite(budgets)) or np.any(budgets < 0):
        raise ValueError(f"budgets must be finite and >= 0, got {budgets}")
    if np.any(~np.isfinite(bids)) or np.any(bids < 0):
        raise ValueError(f"bids must be finite and >= 0, got {bids}")
    o = resolve_opportunities(cm, draws, state, budgets, bids, hour_bid_mult)
    c = draws.campaign
    clicked = o.served & o.clicked_if_served
    session = clicked & o.session_if_clicked
    convert = clicked & o.converts_if_clicked
    cell = ((draws.market * n_c + c) * HOURS + draws.hour) * N_DEVICES + o.device
    size = n_m * n_c * HOURS * N_DEVICES
    shape = (n_m, n_c, HOURS, N_DEVICES)

    def total(mask=None, weights=None) -> np.ndarray:
        if mask is None:
            w = weights
        else:
            w = mask.astype(float) if weights is None else np.where(mask, weights, 0.0)
        # astype: bincount of an empty day returns int64 even with weights
        return np.bincount(cell, weights=w, minlength=size).reshape(shape).astype(float)

    idx = np.flatnonzero(convert)
    seg = o.segment[idx]
    span = cm.lag_max[seg] - cm.lag_min[seg] + 1
    u_lag = draws.u_lag[idx].astype(np.float64)
    lag = cm.lag_min[seg] + np.minimum((u_lag**LAG_SKEW * span).astype(np.int64), span - 1)
    click_hour = draws.hour[idx]
    same_day_hour = click_hour + (draws.u_conv_hour[idx] * (HOURS - click_hour)).astype(np.int64)
    conv_hour = np.where(lag == 0, same_day_hour, (draws.u_conv_hour[idx] * HOURS).astype(np.int64))
    value = cm.value_median[seg] * np.exp(cm.value_sigma[seg] * draws.z_value[idx].astype(np.float64))
    served_impr = o.served
    events = ConversionEvents(
        market=draws.market[idx],
        campaign=c[idx],
        device=o.device[idx],
        segment=seg,
        click_hour=click_hour,
        lag_days=lag,
        conv_hour=np.minimum(conv_hour, HOURS - 1),
        value=value,
    )
    result = DayResult(
        date=draws.date,
        opportunities=np.bincount(cell, minlength=size).reshape(shape).astype(float),
        auctions_won=total(o.shown),
        impressions=total(served_impr),
        clicks=total(clicked),
        cost=total(served_impr, o.cost_if_served),
        sessions=total(session),
        conversions=total(convert),
        revenue=total(convert, value_full(convert, idx, value)),
        position_sum=total(served_impr, o.position.astype(float)),
        events=events,
        budgets=budgets,
        bids=bids,
    )
    return result, next_state(cm, state, result, draws)


def value_full(mask: np.ndarray, idx: np.ndarray, value: np.ndarray) -> np.ndarray:
    out = np.zeros(len(mask))
    out[idx] = value
    return out


def next_state(cm: CompiledMarket, state: MarketState, result: DayResult, draws: DayDraws) -> MarketState:
    """Fatigue stock decays and adds today's impressions; each rival's log bid drifts, reverts towards 0 and
    adapts to our impression share in the auctions it enters (above 50% it bids up, below it eases off)."""
    impressions = result.per_campaign("impressions")  # [M, C]
    opps = result.per_campaign("opportunities")
    exposure = cm.params.fatigue_decay * state.exposure + impressions / 1000.0
    mask = cm.comp_campaigns.astype(float)  # [K, C]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = (impressions @ mask.T) / np.maximum(opps @ mask.T, 1.0)  # [M, K]
    shift = (
        (1.0 - COMP_MEAN_REVERSION) * state.comp_shift + cm.comp_adapt * (share - 0.5) + cm.comp_drift * draws.z_drift
    )
    return MarketState(exposure=exposure, comp_shift=shift)
