"""The batched market engine: resolve a day's draws under budgets and bids for C campaigns × M markets at once.

Mechanics per opportunity (the reference loop in `rl.market.reference` spells out the same steps one at a time):

1. device and hidden segment from their uniforms;
2. each rival's bid = exp(log median + sigma·z + log hour mult + log device mult + adaptation shift) × segment
   competition mult; score = bid × rival quality;
3. search (GSP): our score = bid × quality; position = 1 + #rivals with a strictly higher score; shown iff
   position ≤ slots and bid ≥ reserve (and bid > 0); price per click = max(reserve, next lower score / our quality).
   social (second-price eCPM): shown iff no rival's score is strictly higher and bid ≥ reserve CPM; price per impression =
   max(reserve, best rival score / our quality) / 1000;
4. click iff u_click < slot CTR × creative × segment × device × fatigue; cost = price per click (search) or
   per impression (social);
5. platform pacing: the platform throttles participation with probability p = min(1, budget / potential spend)
   (potential = what the day would cost unthrottled), then stops serving once cumulative cost would exceed the
   budget — spend never exceeds the budget;
6. session iff u_session < session rate; conversion iff u_conv < CVR; lag in whole days within the segment's range
   (skewed to the short end); an order value from the segment's lognormal.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

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


def devices_and_segments(cm: CompiledMarket, draws: DayDraws) -> tuple[np.ndarray, np.ndarray]:
    device = np.searchsorted(cm.device_cdf, draws.u_device, side="right")
    seg_cdf = cm.seg_cdf[draws.campaign]
    segment = (draws.u_segment[:, None] >= seg_cdf).sum(axis=1)
    return np.minimum(device, N_DEVICES - 1), np.minimum(segment, cm.seg_cdf.shape[1] - 1)


def rival_log_scores(cm: CompiledMarket, draws: DayDraws, state: MarketState, device, segment) -> np.ndarray:
    """Log of each rival's auction score (bid × quality) per opportunity, rival-major [Kmax, N], unsorted; -inf
    where a campaign has fewer than Kmax rivals. Computed one rival slot at a time over contiguous rows."""
    c = draws.campaign
    n_c = cm.n_campaigns
    k_max = cm.comp_idx.shape[1]
    if cm.n_competitors == 0:  # a market with no rivals: every auction is uncontested
        return np.full((k_max, len(c)), -np.inf)
    cell = (c * HOURS + draws.hour) * N_DEVICES + device
    base = cm.rival_base_table.reshape(n_c * HOURS * N_DEVICES, k_max)
    shift = np.where(cm.comp_idx >= 0, state.comp_shift[:, np.maximum(cm.comp_idx, 0)], 0.0)  # [M, C, Kmax]
    shift = shift.reshape(-1, k_max)
    mc = draws.market * n_c + c
    log_seg = np.log(cm.seg_comp)[segment]
    z = draws.comp_z.T  # [Kmax, N], contiguous
    out = np.empty((k_max, len(c)))
    for j in range(k_max):
        np.add(base[:, j][cell], cm.rival_sigma_table[:, j][c] * z[j], out=out[j])
        out[j] += shift[:, j][mc]
        out[j] += log_seg
    return out


def rival_scores(cm: CompiledMarket, draws: DayDraws, state: MarketState, device, segment) -> np.ndarray:
    """Rivals' auction scores per opportunity sorted high to low, [N, Kmax] (0 where no rival)."""
    return -np.sort(-np.exp(rival_log_scores(cm, draws, state, device, segment).T), axis=1)


def auction(cm: CompiledMarket, draws: DayDraws, rival_log: np.ndarray, bid: np.ndarray):
    """Position (1-based, 0 = not shown), shown flag and price for our per-opportunity bid [N], given the rivals'
    log scores [Kmax, N] (any rival order). A rival ranks above us only if its score is strictly higher.

    Price is per click for search and per impression for social.
    """
    c = draws.campaign
    q = cm.quality[c]
    with np.errstate(divide="ignore"):
        ours = np.log(bid * q)
    n_above = np.zeros(len(c), dtype=np.int64)
    next_log = np.full(len(c), -np.inf)
    for row in rival_log:
        above = row > ours
        n_above += above
        np.maximum(next_log, np.where(above, -np.inf, row), out=next_log)
    position = n_above + 1
    # A zero bid (a paused campaign) never enters, even where the platform has no reserve.
    shown = (position <= cm.n_slots[c]) & (bid >= cm.reserve[c]) & (bid > 0)
    price = np.maximum(cm.reserve[c], np.exp(next_log) / q)
    price = np.where(cm.is_search[c], price, price / 1000.0)
    return np.where(shown, position, 0), shown, price


def pace(draws: DayDraws, n_groups: int, cost: np.ndarray, eligible: np.ndarray, budget_flat: np.ndarray):
    """Platform pacing over (market, campaign) groups laid out contiguously. Returns served [N] bool.

    Pass 1: potential spend if every eligible opportunity were served → throttle probability min(1, B / potential).
    Pass 2: in arrival order, stop serving once the cumulative cost would exceed the budget B.
    """
    group = draws.market * (n_groups // max(draws.n_markets, 1)) + draws.campaign
    potential = np.bincount(group, weights=np.where(eligible, cost, 0.0), minlength=n_groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(potential > 0, np.minimum(1.0, budget_flat / potential), 1.0)
    participate = eligible & (draws.u_throttle < p[group])
    spend = np.where(participate, cost, 0.0)
    # A running sum restarted per group (not a global cumsum minus offsets) so the budget comparison sees exactly
    # the sequential sum a platform would keep, bit for bit.
    group_cum = np.empty_like(spend)
    bounds = draws.group_start
    for g in np.flatnonzero(np.diff(bounds)):
        np.cumsum(spend[bounds[g] : bounds[g + 1]], out=group_cum[bounds[g] : bounds[g + 1]])
    return participate & (group_cum <= budget_flat[group])


def click_multiplier(cm: CompiledMarket, draws: DayDraws, state: MarketState, device, segment) -> np.ndarray:
    """CTR = slot CTR × this multiplier (creative × segment × device × fatigue from recent exposure), [N]."""
    c = draws.campaign
    fatigue = 1.0 / (1.0 + cm.fatigue[c] * state.exposure[draws.market, c])
    return cm.ctr_mult[c] * cm.seg_ctr[segment] * cm.dev_ctr[device] * fatigue


def click_outcomes(cm: CompiledMarket, draws: DayDraws, device, segment) -> tuple[np.ndarray, np.ndarray]:
    """Whether a click would become a GA4 session, and whether that session would (eventually) convert, [N]."""
    c = draws.campaign
    session = draws.u_session < cm.session_rate[c]
    cvr = np.minimum(cm.seg_cvr[segment] * cm.cvr_mult[c] * cm.dev_cvr[device], 1.0)
    return session, session & (draws.u_conv < cvr)


def resolve_opportunities(cm, draws, state, budgets, bids, hour_bid_mult=None) -> OpportunityOutcome:
    device, segment = devices_and_segments(cm, draws)
    rivals = rival_log_scores(cm, draws, state, device, segment)
    bid = bids[draws.market, draws.campaign]
    if hour_bid_mult is not None:
        bid = bid * hour_bid_mult[draws.market, draws.campaign, draws.hour]
    position, shown, price = auction(cm, draws, rivals, bid)
    c = draws.campaign
    ctr = cm.slot_ctr[c, np.maximum(position - 1, 0)] * click_multiplier(cm, draws, state, device, segment)
    clicked = shown & (draws.u_click < ctr)
    cost = np.where(cm.is_search[c], np.where(clicked, price, 0.0), np.where(shown, price, 0.0))
    served = pace(draws, draws.n_markets * cm.n_campaigns, cost, shown, budgets.reshape(-1))
    return OpportunityOutcome(device, segment, position, shown, clicked, cost, served)


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
    session_if_clicked, convert_if_clicked = click_outcomes(cm, draws, o.device, o.segment)
    session = clicked & session_if_clicked
    convert = clicked & convert_if_clicked
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
    lag = cm.lag_min[seg] + np.minimum((draws.u_lag[idx].astype(np.float64) ** LAG_SKEW * span).astype(np.int64), span - 1)
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
        (1.0 - COMP_MEAN_REVERSION) * state.comp_shift
        + cm.comp_adapt * (share - 0.5)
        + cm.comp_drift * draws.z_drift
    )
    return MarketState(exposure=exposure, comp_shift=shift)
