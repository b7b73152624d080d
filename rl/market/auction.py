"""Auctions and pacing for one (market, campaign) block of a day's opportunities.

The engine, the clairvoyant oracle and the LP bound all resolve a campaign's day through these functions, so they
share one definition of who wins, what it costs and when the platform stops serving. Within a block every campaign
parameter is a scalar, which keeps the per-opportunity work to a few contiguous vector passes.

Mechanics (the reference loop in `rl.market.reference` spells out the same steps one opportunity at a time):
  * rival k's log score = log(median bid × quality × hour mult × device mult) + sigma·z + adaptation shift
    + log(segment competition mult);
  * search (GSP): our score = bid × quality; position = 1 + #rivals with a strictly higher score; shown iff
    position ≤ slots, bid ≥ reserve and bid > 0; price per click = max(reserve, next lower score / our quality);
  * social (second-price eCPM, one slot): shown iff no rival scores strictly higher (and the reserve/zero-bid rules);
    price per impression = max(reserve CPM, best rival score / our quality) / 1000;
  * click iff u_click < slot CTR × creative × segment × device × fatigue; cost = price per click (search) or per
    impression (social);
  * pacing: participate iff u_throttle < min(1, budget / potential spend) (never with a zero budget), then serve in
    arrival order while the running cost of participating opportunities stays within the budget.

Besides the per-block functions, `campaign_major` and `pace_blocks` let the engine resolve all markets of a campaign
in one vectorised pass (campaign parameters are shared across markets; only the state, budgets and bids differ):
they reproduce the per-block results bit for bit (same float operations per opportunity, same summation order).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rl.market.compiled import CompiledMarket
from rl.market.draws import DayDraws
from rl.market.params import DEVICES, HOURS

N_DEVICES = len(DEVICES)


@dataclass(frozen=True)
class Block:
    """One (market m, campaign c) block: opportunities draws[lo:hi] and everything about them that does not
    depend on our bid. Arrays are [n] (n = hi − lo) unless noted."""

    m: int
    c: int
    lo: int
    hi: int
    device: np.ndarray
    segment: np.ndarray
    log_seg: np.ndarray  # log competition multiplier of the segment (applies to every rival alike)
    rival_base: np.ndarray  # [n_rivals, n] rivals' log scores without the segment term
    click_mult: np.ndarray  # CTR multiplier: creative × segment × device × fatigue
    hour: np.ndarray

    @property
    def n(self) -> int:
        return self.hi - self.lo

    def rival_scores_sorted(self) -> np.ndarray:
        """[n_rivals, n] rival scores (bid × quality) sorted high to low."""
        return -np.sort(-np.exp(self.rival_base + self.log_seg[None, :]), axis=0)


def thresholds(u: np.ndarray, x) -> np.ndarray:
    """Cut-offs t with (u < t) == (u < x) and (u >= t) == (u >= x) for every value u of `u`'s dtype.

    For float32 draws, t is the smallest float32 >= x, so the comparisons run in float32 instead of casting every
    draw to float64; the outcome is the same as comparing in float64 (float32 values are exact in float64)."""
    x = np.asarray(x, dtype=np.float64)
    if u.dtype != np.float32:
        return x
    with np.errstate(over="ignore"):
        t = np.atleast_1d(x.astype(np.float32))
    low = t.astype(np.float64) < np.atleast_1d(x)
    if low.any():
        t[low] = np.nextafter(t[low], np.float32(np.inf))
    return t.reshape(x.shape)


def buckets(u: np.ndarray, cdf: np.ndarray) -> np.ndarray:
    """Inverse-CDF sampling: min(searchsorted(cdf, u, side="right"), len(cdf) - 1) for a nondecreasing cdf, as
    int8 (when the cdf has < 128 entries), by one comparison per edge instead of a binary search per draw."""
    edges = thresholds(u, cdf[:-1])
    out = np.zeros(len(u), dtype=np.int8 if len(cdf) < 128 else np.int64)
    for e in edges:
        out += u >= e
    return out


def devices(cm: CompiledMarket, u_device: np.ndarray) -> np.ndarray:
    """Device of each opportunity (int64), from its uniform."""
    return buckets(u_device, cm.device_cdf).astype(np.int64)


def segments(cm: CompiledMarket, c: int, u_segment: np.ndarray) -> np.ndarray:
    """Hidden segment of each of campaign c's opportunities (int64), from its uniform."""
    return buckets(u_segment, cm.seg_cdf[c]).astype(np.int64)


def blocks(cm: CompiledMarket, draws: DayDraws, state, markets: range | None = None):
    """Yield the non-empty blocks of a day in layout order (market-major, then campaign)."""
    device_all = devices(cm, draws.u_device)
    n_c = cm.n_campaigns
    for m in markets if markets is not None else range(draws.n_markets):
        for c in range(n_c):
            lo, hi = int(draws.group_start[m * n_c + c]), int(draws.group_start[m * n_c + c + 1])
            if hi > lo:
                yield make_block(cm, draws, state, m, c, lo, hi, device_all[lo:hi])


def make_block(cm: CompiledMarket, draws: DayDraws, state, m: int, c: int, lo: int, hi: int, device) -> Block:
    segment = segments(cm, c, draws.u_segment[lo:hi])
    hour = draws.hour[lo:hi]
    rivals = cm.comp_idx[c][cm.comp_idx[c] >= 0]
    hd = hour * N_DEVICES + device
    z = draws.comp_z.T  # [Kmax, N]; contiguous rows when drawn by `draw_day`
    base = np.empty((len(rivals), hi - lo))
    table = cm.rival_base_table[c].reshape(HOURS * N_DEVICES, -1)
    for j, k in enumerate(rivals):
        np.multiply(z[j, lo:hi], cm.rival_sigma_table[c, j], out=base[j])
        base[j] += table[:, j][hd]
        base[j] += state.comp_shift[m, k]
    fatigue = 1.0 / (1.0 + cm.fatigue[c] * state.exposure[m, c])
    click_mult = (cm.ctr_mult[c] * fatigue) * cm.seg_ctr[segment] * cm.dev_ctr[device]
    return Block(m, c, lo, hi, device, segment, np.log(cm.seg_comp)[segment], base, click_mult, hour)


def run_auction(cm: CompiledMarket, b: Block, bid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Position (1-based, 0 when not shown), shown flag and price for our bid (scalar or [n]) in every auction of
    the block. Price is per click for search, per impression for social."""
    c = b.c
    bid = np.broadcast_to(np.asarray(bid, dtype=float), (b.n,))
    q = cm.quality[c]
    with np.errstate(divide="ignore"):
        ours = np.log(bid * q) - b.log_seg  # compare with rivals in their segment-free log space
    n_above = np.zeros(b.n, dtype=np.int64)
    next_base = np.full(b.n, -np.inf)
    for row in b.rival_base:
        above = row > ours
        n_above += above
        np.maximum(next_base, np.where(above, -np.inf, row), out=next_base)
    position = n_above + 1
    shown = (position <= cm.n_slots[c]) & (bid >= cm.reserve[c]) & (bid > 0)
    price = np.maximum(cm.reserve[c], np.exp(next_base + b.log_seg) / q)
    if not cm.is_search[c]:
        price = price / 1000.0
    return np.where(shown, position, 0), shown, price


def clicks_and_cost(cm: CompiledMarket, b: Block, u_click, position, shown, price) -> tuple[np.ndarray, np.ndarray]:
    """Whether each shown ad is clicked, and what serving it costs (per click for search, per impression social)."""
    ctr = cm.slot_ctr[b.c][np.maximum(position - 1, 0)] * b.click_mult
    clicked = shown & (u_click < ctr)
    cost = np.where(clicked if cm.is_search[b.c] else shown, price, 0.0)
    return clicked, cost


def pace(cost: np.ndarray, eligible: np.ndarray, u_throttle: np.ndarray, budgets) -> np.ndarray:
    """Platform pacing of one block for one or several budgets. Returns served, [L, n] for L budgets.

    The platform throttles participation with probability min(1, budget / potential spend), then stops serving
    once the running cost would exceed the budget, so spend never exceeds it."""
    budgets = np.atleast_1d(np.asarray(budgets, dtype=float))[:, None]  # [L, 1]
    potential = cost[eligible].sum()
    p = np.minimum(1.0, budgets / potential) if potential > 0 else np.ones_like(budgets)
    p = np.where(budgets > 0, p, 0.0)  # a zero budget serves nothing, not even impressions that would cost nothing
    participate = eligible[None, :] & (u_throttle[None, :] < p)
    running = np.cumsum(np.where(participate, cost[None, :], 0.0), axis=1)
    return participate & (running <= budgets)


def click_outcomes(cm: CompiledMarket, draws: DayDraws, b: Block) -> tuple[np.ndarray, np.ndarray]:
    """Whether a click would become a GA4 session, and whether that session would (eventually) convert, [n]."""
    sl = slice(b.lo, b.hi)
    session = draws.u_session[sl] < cm.session_rate[b.c]
    cvr = np.minimum(cm.seg_cvr[b.segment] * cm.cvr_mult[b.c] * cm.dev_cvr[b.device], 1.0)
    return session, session & (draws.u_conv[sl] < cvr)


def campaign_major(group_start: np.ndarray, n_markets: int, n_campaigns: int):
    """The day's opportunities in campaign-major order (campaign, market, hour, arrival), which makes every
    (market, campaign) block of one campaign adjacent. Returns perm [N] (perm[i] = position in the draws' flat
    arrays of the i-th opportunity in campaign-major order), offsets [C + 1] (campaign c is perm[offsets[c] :
    offsets[c + 1]]) and lens [M, C] (opportunities per block)."""
    gs = np.asarray(group_start, dtype=np.int64)
    lens = np.diff(gs).reshape(n_markets, n_campaigns)
    lens_cm = lens.T.ravel()
    starts_cm = gs[:-1].reshape(n_markets, n_campaigns).T.ravel()
    new_starts = np.zeros_like(lens_cm)
    np.cumsum(lens_cm[:-1], out=new_starts[1:])
    perm = np.repeat(starts_cm - new_starts, lens_cm)
    perm += np.arange(len(perm))
    offsets = np.zeros(n_campaigns + 1, dtype=np.int64)
    np.cumsum(lens.sum(axis=0), out=offsets[1:])
    return perm, offsets, lens


def pace_blocks(cost: np.ndarray, eligible: np.ndarray, u_throttle: np.ndarray, lens, budgets) -> np.ndarray:
    """`pace` for consecutive blocks (lens[i] opportunities each, one budget each) in one pass. Returns served [n],
    identical to `pace(cost[blk], eligible[blk], u_throttle[blk], budgets[i])[0]` block by block: the potential
    spend of each block is summed over the same contiguous eligible costs (numpy's pairwise summation depends on
    the array it is given), and the running cost restarts at each block."""
    lens = np.asarray(lens, dtype=np.int64)
    budgets = np.asarray(budgets, dtype=float)
    bounds = np.zeros(len(lens) + 1, dtype=np.int64)
    np.cumsum(lens, out=bounds[1:])
    e_idx = np.flatnonzero(eligible)
    e_cost = cost[e_idx]
    e_bounds = np.searchsorted(e_idx, bounds).tolist()
    potential = np.zeros(len(lens))
    for i, (a, b) in enumerate(zip(e_bounds[:-1], e_bounds[1:], strict=True)):
        if b > a:
            potential[i] = e_cost[a:b].sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(potential > 0, np.minimum(1.0, budgets / potential), 1.0)
    p = np.where(budgets > 0, p, 0.0)  # a zero budget serves nothing, not even impressions that would cost nothing
    participate = eligible & (u_throttle < np.repeat(thresholds(u_throttle, p), lens))
    p_idx = np.flatnonzero(participate)
    p_bounds = np.searchsorted(p_idx, bounds)
    running = cost[p_idx]  # the running cost restarts at every block, summed in arrival order as by np.cumsum
    p_list = p_bounds.tolist()
    for a, b in zip(p_list[:-1], p_list[1:], strict=True):
        if b > a:
            np.cumsum(running[a:b], out=running[a:b])
    served = np.zeros(len(cost), dtype=bool)
    served[p_idx] = running <= np.repeat(budgets, np.diff(p_bounds))
    return served
