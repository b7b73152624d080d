"""The batched market engine: resolve a day's draws under budgets and bids for C campaigns × M markets at once.

The auction, clicks and pacing are those of `rl.market.auction` (whose docstring lists the mechanics), resolved for
all markets of a campaign in one vectorised pass: the same float operations per opportunity as block by block, so
outcomes are identical, and a market's outcome does not depend on the other markets of the batch. This module adds
what follows a click — a GA4 session, a conversion after a segment-specific lag on the simulated clock, its order
value — aggregates everything to [market, campaign, hour, device] cells, and carries state (creative fatigue,
rivals' adaptation) to the next day. `rl.market.reference` is the same day as a plain per-opportunity loop, and
tests hold the two to identical outcomes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from rl.market.auction import buckets, campaign_major, pace_blocks, thresholds
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


@dataclass
class _CampaignMajorOutcome:
    """Per-opportunity outcomes in campaign-major order (see `campaign_major`); arrays are [N] unless noted.
    session/converts are either for every opportunity or, when `paid` is set, only for the served clicks paid[i]
    (positions in campaign-major order)."""

    perm: np.ndarray
    lens: np.ndarray  # [M, C]
    cell: np.ndarray  # ((market × C + campaign) × 24 + hour) × D + device
    segment: np.ndarray  # int8
    position: np.ndarray  # int8 (int64 with 127 or more rivals per campaign)
    shown: np.ndarray
    clicked: np.ndarray
    cost: np.ndarray
    served: np.ndarray
    session: np.ndarray
    converts: np.ndarray
    paid: np.ndarray | None


def _resolve_campaign_major(cm, draws, state, budgets, bids, bid_mult, all_click_outcomes: bool):
    """Auction, click and pacing outcome of every opportunity, one vectorised pass per campaign over all markets.

    Per opportunity it performs the same float operations, in the same order, as the per-block functions of
    `rl.market.auction` (`make_block`, `run_auction`, `clicks_and_cost`, `pace`, `click_outcomes`), so outcomes are
    identical to resolving block by block; what differs per market (fatigue, rivals' shifts, bids, budgets) is
    repeated over that market's opportunities, and products that take few distinct values (the CTR) are looked up
    in a table of those values, each computed by the same operations."""
    n_m, n_c = draws.n_markets, cm.n_campaigns
    n = draws.n_opportunities
    n_seg = cm.seg_cdf.shape[1]
    perm, offsets, lens = campaign_major(draws.group_start, n_m, n_c)
    offsets = offsets.tolist()
    cell = np.empty(n, dtype=np.int64)
    segment = np.empty(n, dtype=np.int8 if n_seg < 128 else np.int64)
    small = np.int8 if cm.comp_idx.shape[1] < 127 else np.int64
    position = np.zeros(n, dtype=small)
    block_cell = (np.arange(n_m)[None, :] * n_c + np.arange(n_c)[:, None]) * (HOURS * N_DEVICES)  # [C, M]
    shown = np.zeros(n, dtype=bool)
    clicked = np.zeros(n, dtype=bool)
    cost = np.zeros(n)
    served = np.zeros(n, dtype=bool)
    if all_click_outcomes:
        session, converts = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    else:
        paid_parts, session_parts, converts_parts = [], [], []
    z = draws.comp_z.T  # [Kmax, N]
    log_seg_comp = np.log(cm.seg_comp)
    cells = HOURS * N_DEVICES
    bm = None if bid_mult is None else np.asarray(bid_mult, dtype=float).reshape(n_m, n_c, cells)
    market_of = np.arange(n_m)
    for c in range(n_c):
        a, b = offsets[c], offsets[c + 1]
        if a == b:
            continue
        sl = slice(a, b)
        idx = perm[sl]
        lens_c = lens[:, c]
        # Who the user is (make_block).
        dev = buckets(draws.u_device.take(idx, mode="clip"), cm.device_cdf).astype(np.intp)
        seg = buckets(draws.u_segment.take(idx, mode="clip"), cm.seg_cdf[c]).astype(np.intp)
        segment[sl] = seg
        hour = draws.hour.take(idx, mode="clip")
        hd = hour * N_DEVICES
        hd += dev
        cell_c = cell[sl]
        cell_c[:] = np.repeat(block_cell[c], lens_c)
        cell_c += hd
        log_seg = log_seg_comp.take(seg, mode="clip")
        # Our score in the rivals' segment-free log space (run_auction).
        q = cm.quality[c]
        with np.errstate(divide="ignore"):
            if bm is None:
                bid_m = bids[:, c]
                log_bq = bid_m * q
                np.log(log_bq, out=log_bq)
                ours = np.repeat(log_bq, lens_c)
                ours -= log_seg
                bid_ok = np.repeat((bid_m >= cm.reserve[c]) & (bid_m > 0), lens_c)
            else:
                # the (hour, device) cell's modifier: base bid × device modifier × hour-block modifier
                mult = bm[:, c, :].reshape(-1)[np.repeat(market_of * cells, lens_c) + hd]
                bid = np.repeat(bids[:, c], lens_c) * mult
                ours = bid * q
                np.log(ours, out=ours)
                ours -= log_seg
                bid_ok = (bid >= cm.reserve[c]) & (bid > 0)
        # Each rival's log score (make_block), compared as it is built (run_auction).
        n_above = np.zeros(b - a, dtype=small)
        next_base = np.full(b - a, -np.inf)
        rivals = cm.comp_idx[c][cm.comp_idx[c] >= 0].tolist()
        if rivals:
            table = cm.rival_base_table[c].reshape(HOURS * N_DEVICES, -1)
            row = np.empty(b - a)
            for j, k in enumerate(rivals):
                np.multiply(z[j].take(idx, mode="clip"), cm.rival_sigma_table[c, j], out=row)
                row += table[:, j].take(hd, mode="clip")
                row += np.repeat(state.comp_shift[:, k], lens_c)
                above = row > ours
                n_above += above
                np.putmask(row, above, -np.inf)
                np.maximum(next_base, row, out=next_base)
        shw = shown[sl]
        np.less_equal(n_above, cm.n_slots[c] - 1, out=shw)  # position = rivals above + 1 <= slots
        shw &= bid_ok
        pos = n_above
        pos += 1
        pos *= shw  # 0 when not shown
        position[sl] = pos
        next_base += log_seg
        np.exp(next_base, out=next_base)  # in place: numpy then always takes its vectorised path
        next_base /= q
        price = np.maximum(cm.reserve[c], next_base, out=next_base)
        if not cm.is_search[c]:
            price /= 1000.0
        # Clicks and cost (make_block's click multiplier, clicks_and_cost): the CTR slot_ctr[max(position - 1, 0)]
        # × ((ctr_mult × fatigue) × seg_ctr × dev_ctr) takes one value per (market, position, segment, device).
        fatigue = 1.0 / (1.0 + cm.fatigue[c] * state.exposure[:, c])
        click_mult = ((cm.ctr_mult[c] * fatigue)[:, None] * cm.seg_ctr[None, :])[:, :, None] * cm.dev_ctr
        slot = np.concatenate([cm.slot_ctr[c][:1], cm.slot_ctr[c]])  # by position, 0 (not shown) as 1
        ctr_table = slot[None, :, None, None] * click_mult[:, None, :, :]
        key = np.repeat(market_of * len(slot), lens_c)
        key += pos
        key *= n_seg
        key += seg
        key *= N_DEVICES
        key += dev
        u_click = draws.u_click.take(idx, mode="clip")
        ctr = thresholds(u_click, ctr_table.reshape(-1)).take(key, mode="clip")
        clk = clicked[sl]
        np.less(u_click, ctr, out=clk)
        clk &= shw
        cst = cost[sl]
        cst[:] = np.where(clk if cm.is_search[c] else shw, price, 0.0)
        # Pacing per (market, campaign) block.
        srv = served[sl]
        srv[:] = pace_blocks(cst, shw, draws.u_throttle.take(idx, mode="clip"), lens_c, budgets[:, c])
        # After the click (click_outcomes): for every opportunity, or only the served clicks.
        if all_click_outcomes:
            at = np.arange(b - a)
        else:
            at = np.flatnonzero(srv & clk)
        f_at = idx[at]
        u_session = draws.u_session[f_at]
        sess = u_session < thresholds(u_session, cm.session_rate[c])
        cvr = np.minimum(cm.seg_cvr[seg[at]] * cm.cvr_mult[c] * cm.dev_cvr[dev[at]], 1.0)
        conv = sess & (draws.u_conv[f_at] < cvr)
        if all_click_outcomes:
            session[sl], converts[sl] = sess, conv
        else:
            paid_parts.append(at + a)
            session_parts.append(sess)
            converts_parts.append(conv)
    paid = None
    if not all_click_outcomes:
        cat = np.concatenate
        paid = cat(paid_parts) if paid_parts else np.zeros(0, dtype=np.int64)
        session = cat(session_parts) if session_parts else np.zeros(0, dtype=bool)
        converts = cat(converts_parts) if converts_parts else np.zeros(0, dtype=bool)
    return _CampaignMajorOutcome(
        perm, lens, cell, segment, position, shown, clicked, cost, served, session, converts, paid
    )


def resolve_opportunities(cm, draws, state, budgets, bids, bid_mult=None) -> OpportunityOutcome:
    """Auction, click and pacing outcome of every opportunity, in the draws' order (identical to resolving the
    blocks of `rl.market.auction.blocks` one by one)."""
    n_m, n_c = draws.n_markets, cm.n_campaigns
    budgets = np.asarray(budgets, dtype=float).reshape(n_m, n_c)
    bids = np.asarray(bids, dtype=float).reshape(n_m, n_c)
    bid_mult = _check_bid_mult(bid_mult, n_m, n_c)
    o = _resolve_campaign_major(cm, draws, state, budgets, bids, bid_mult, all_click_outcomes=True)
    n = draws.n_opportunities

    def flat(values, dtype=None) -> np.ndarray:
        out = np.empty(n, dtype=values.dtype if dtype is None else dtype)
        out[o.perm] = values
        return out

    return OpportunityOutcome(
        device=flat(o.cell % N_DEVICES, np.int64),
        segment=flat(o.segment, np.int64),
        position=flat(o.position, np.int64),
        shown=flat(o.shown),
        clicked_if_served=flat(o.clicked),
        cost_if_served=flat(o.cost),
        served=flat(o.served),
        session_if_clicked=flat(o.session),
        converts_if_clicked=flat(o.converts),
    )


def resolve_day(
    cm: CompiledMarket,
    draws: DayDraws,
    state: MarketState,
    budgets: np.ndarray,
    bids: np.ndarray,
    bid_mult: np.ndarray | None = None,
) -> tuple[DayResult, MarketState]:
    """Resolve one day. budgets, bids: [M, C]; bid_mult: optional [M, C, 24, D] multiplier of the bid in each
    (hour, device) cell (`rl.market.modifiers.cell_multipliers` of the device and hour-block modifiers; None: 1).
    Returns the result and the next day's state (the input state is not modified)."""
    n_m, n_c = draws.n_markets, cm.n_campaigns
    budgets = np.asarray(budgets, dtype=float).reshape(n_m, n_c)
    bids = np.asarray(bids, dtype=float).reshape(n_m, n_c)
    if np.any(~np.isfinite(budgets)) or np.any(budgets < 0):
        raise ValueError(f"budgets must be finite and >= 0, got {budgets}")
    if np.any(~np.isfinite(bids)) or np.any(bids < 0):
        raise ValueError(f"bids must be finite and >= 0, got {bids}")
    bid_mult = _check_bid_mult(bid_mult, n_m, n_c)
    # Outcomes in campaign-major order: each cell (market, campaign, hour, device) lies in one (market, campaign)
    # block, whose opportunities keep their order, so every per-cell sum below adds the same terms in the same order
    # as over the draws' order. Sums skip the opportunities that would add exactly 0.
    o = _resolve_campaign_major(cm, draws, state, budgets, bids, bid_mult, all_click_outcomes=False)
    cell = o.cell
    size = n_m * n_c * HOURS * N_DEVICES
    shape = (n_m, n_c, HOURS, N_DEVICES)

    def total(cells, weights=None) -> np.ndarray:
        # astype: bincount of an empty day returns int64 even with weights
        return np.bincount(cells, weights=weights, minlength=size).reshape(shape).astype(float)

    by_shown = np.bincount(cell * 2 + o.shown, minlength=2 * size).reshape(size, 2)  # opportunities not won, won
    served_at = np.flatnonzero(o.served)
    served_cell = cell[served_at]
    paid_cell = cell[o.paid]  # served clicks
    # Conversions, in the draws' order (the events' order).
    conv_at = o.paid[o.converts]
    flat_at = o.perm[conv_at]
    order = np.argsort(flat_at, kind="stable")
    idx, conv_at = flat_at[order], conv_at[order]
    seg = o.segment[conv_at].astype(np.int64)
    span = cm.lag_max[seg] - cm.lag_min[seg] + 1
    u_lag = draws.u_lag[idx].astype(np.float64)
    lag = cm.lag_min[seg] + np.minimum((u_lag**LAG_SKEW * span).astype(np.int64), span - 1)
    click_hour = draws.hour[idx]
    same_day_hour = click_hour + (draws.u_conv_hour[idx] * (HOURS - click_hour)).astype(np.int64)
    conv_hour = np.where(lag == 0, same_day_hour, (draws.u_conv_hour[idx] * HOURS).astype(np.int64))
    value = cm.value_sigma[seg] * draws.z_value[idx].astype(np.float64)
    value = cm.value_median[seg] * np.exp(value, out=value)
    events = ConversionEvents(
        market=draws.market[idx],
        campaign=draws.campaign[idx],
        device=cell[conv_at] % N_DEVICES,
        segment=seg,
        click_hour=click_hour,
        lag_days=lag,
        conv_hour=np.minimum(conv_hour, HOURS - 1),
        value=value,
    )
    result = DayResult(
        date=draws.date,
        opportunities=(by_shown[:, 0] + by_shown[:, 1]).reshape(shape).astype(float),
        auctions_won=by_shown[:, 1].reshape(shape).astype(float),
        impressions=total(served_cell),
        clicks=total(paid_cell),
        cost=total(served_cell, o.cost[served_at]),
        sessions=total(paid_cell[o.session]),
        conversions=total(cell[conv_at]),
        revenue=total(cell[conv_at], value),
        position_sum=total(served_cell, o.position[served_at].astype(float)),
        events=events,
        budgets=budgets,
        bids=bids,
    )
    return result, next_state(cm, state, result, draws)


def _check_bid_mult(bid_mult, n_m: int, n_c: int) -> np.ndarray | None:
    """The cell multipliers as [M, C, 24, D] floats (broadcast from any shape that broadcasts), or None."""
    if bid_mult is None:
        return None
    out = np.broadcast_to(np.asarray(bid_mult, dtype=float), (n_m, n_c, HOURS, N_DEVICES))
    if np.any(~np.isfinite(out)) or np.any(out < 0):
        raise ValueError("bid multipliers (device × hour-block modifiers) must be finite and >= 0")
    return out


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
