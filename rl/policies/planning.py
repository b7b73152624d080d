"""Planning settings in the expected market (`rl.market.landscape`): the best bid shape per campaign for a value of
spend, and the expected score of a plan over the days left.

`bid_shapes` answers, for every value λ of a dollar (conversions a dollar must buy at the margin; 1/λ is the
marginal CPA) and every campaign, which base bid, device modifiers and hour-block modifiers maximise

    Σ over (hour, device) cells of  E[conversions] − λ · E[spend]        (no budget: every won auction served)

with effective bid = base × device modifier × hour-block modifier, each on a log grid of step `GRID_STEP`, inside
the action space (base ×1/4 … ×4 of the reference bid, modifiers ×1/4 … ×4) and under the max bid in every cell.
Cells partition by device and by hour block, so block-coordinate ascent (all device modifiers at once given the
base and hour-block modifiers, and so on) improves the objective at every step; it starts from no modifiers and
ends when a sweep changes nothing. A campaign whose platform has no modifiers only picks its base bid.

`expected_score` is E[N × min(1, (target CPA × N / S)²)] for N Poisson around the expected conversions (the
conversions are a sum of many rare events) and S the expected spend: the expected *score*, not the score of the
expected conversions, so the CPA penalty's curvature counts.

Shapes: L values of λ, C campaigns, D devices, B hour blocks, G grid points of the log bid.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from scipy.stats import poisson

from rl.market.landscape import Landscape, campaign_shift
from rl.market.modifiers import N_DEVICES, block_of_hour
from rl.market.params import HOURS

GRID_STEP = 0.05  # log-bid step of the planner's grid (5%)


@dataclass(frozen=True)
class BidShapes:
    """Per λ and campaign the chosen base bid [L, C], device [L, C, D] and hour-block modifiers [L, C, B], and what
    they buy per day without a budget: potential spend and conversions [L, C]."""

    lams: np.ndarray
    bids: np.ndarray
    device: np.ndarray
    hours: np.ndarray
    spend: np.ndarray
    conversions: np.ndarray


def expected_score(conversions, spend, target_cpa: float) -> np.ndarray:
    """E[score] for N ~ Poisson(conversions) and spend S (arrays broadcast); see the module docstring."""
    mu = np.atleast_1d(np.asarray(conversions, dtype=float))
    s = np.broadcast_to(np.asarray(spend, dtype=float), mu.shape)
    top = int(np.ceil(mu.max(initial=0.0) + 8.0 * np.sqrt(mu.max(initial=0.0)) + 10.0))
    k = np.arange(top + 1, dtype=float)
    pmf = poisson.pmf(k[:, None], mu.reshape(-1)[None, :])  # [K, n]
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(s.reshape(-1) > 0, np.minimum(1.0, (target_cpa * k[:, None] / s.reshape(-1)) ** 2), 1.0)
    return (pmf * k[:, None] * factor).sum(axis=0).reshape(mu.shape)


def bid_shapes(
    land: Landscape,
    date: dt.date,
    exposure: np.ndarray,
    comp_shift: np.ndarray,
    lams: np.ndarray,
    ref_bids: np.ndarray,
    max_bids: np.ndarray,
    modifiers: np.ndarray,
    n_blocks: int,
    bid_range: float = 4.0,
    modifier_range: float = 4.0,
    volume_scale: np.ndarray | None = None,
    sweeps: int = 4,
) -> BidShapes:
    """The best (base bid, device and hour-block modifiers) per λ and campaign for one market on `date` with state
    exposure [C], comp_shift [K] (see the module docstring). modifiers: [C] bool, campaigns with modifiers."""
    lams = np.asarray(lams, dtype=float)
    n_c = land.cm.n_campaigns
    k_bid = int(np.floor(np.log(bid_range) / GRID_STEP))
    k_mod = int(np.floor(np.log(modifier_range) / GRID_STEP))
    offsets = np.arange(-(k_bid + 2 * k_mod), k_bid + 2 * k_mod + 1)  # every effective index a cell can take
    n_g = len(offsets)
    log_ref = np.log(ref_bids)
    log_bid = log_ref[None, :, None, None] + GRID_STEP * offsets[:, None, None, None]  # [G, C, 1, 1]
    log_bid = np.broadcast_to(log_bid, (n_g, n_c, HOURS, N_DEVICES))
    shift = np.broadcast_to(campaign_shift(land.cm, np.asarray(comp_shift)[None]), (n_g, n_c))
    r = land.rates(log_bid, shift, np.broadcast_to(np.asarray(exposure)[None], (n_g, n_c)))
    opps = land.opportunities(date, None if volume_scale is None else np.asarray(volume_scale)[None], 1)[0]
    value = (opps[None] * r["conversions"]).sum(axis=-1)  # [G, C, 24, D]
    cost = (opps[None] * r["cost"]).sum(axis=-1)
    block = block_of_hour(n_blocks)
    # the highest effective index each campaign may use: no cell above the max bid
    cap = np.floor((np.log(max_bids) - log_ref) / GRID_STEP + 1e-9).astype(int)  # [C]
    origin = k_bid + 2 * k_mod  # position of offset 0 in the grid
    n_l = len(lams)
    beta = np.zeros((n_l, n_c), dtype=int)
    delta = np.zeros((n_l, n_c, N_DEVICES), dtype=int)
    eta = np.zeros((n_l, n_c, n_blocks), dtype=int)
    # the objective of every (λ, campaign, cell) along the grid, contiguous in the grid: [L, C, 24, D, G]
    lam = lams[:, None, None, None, None]
    gain = np.ascontiguousarray((value[None] - lam * cost[None]).transpose(0, 2, 3, 4, 1)).reshape(-1)
    # flat offset of grid point 0 of every (λ, campaign, hour, device): gathers are one `take` each
    base = (np.arange(n_l * n_c * HOURS * N_DEVICES) * n_g).reshape(n_l, n_c, HOURS, N_DEVICES)

    def cells(b, dl, et):
        """Effective grid index of every cell [L, C, (cand,) 24, D] (clipped to the grid): b [L, C(, cand)],
        dl [L, C(, cand), D], et [L, C(, cand), B]."""
        idx = b[..., None, None] + dl[..., None, :] + et[..., block][..., None]
        return np.clip(idx, -origin, origin)

    def objective(idx):
        """gain at the grid indices [L, C, (K,) 24, D] (K candidates) → the same shape."""
        offsets = base if idx.ndim == 4 else base[:, :, None]
        return gain.take(offsets + (idx + origin))

    mod = np.asarray(modifiers, dtype=bool)
    bid_cands = np.arange(-k_bid, k_bid + 1)
    mod_cands = np.arange(-k_mod, k_mod + 1)
    for _ in range(sweeps):
        before = (beta.copy(), delta.copy(), eta.copy())
        # base bid: every candidate at once, under the cap given the modifiers' largest cell
        top = delta.max(axis=2) + eta.max(axis=2)  # [L, C]
        cand = np.broadcast_to(bid_cands, (n_l, n_c, len(bid_cands)))
        idx = cells(cand, delta[:, :, None, :], eta[:, :, None, :])  # [L, C, K, 24, D]
        scores = objective(idx).sum(axis=(3, 4))  # [L, C, K]
        allowed = bid_cands[None, None, :] + top[:, :, None] <= cap[None, :, None]
        scores = np.where(allowed, scores, -np.inf)
        best = bid_cands[np.argmax(scores, axis=-1)]
        beta = np.where(np.isfinite(scores.max(axis=-1)), best, -k_bid)
        if mod.any():
            n_m = len(mod_cands)
            # device modifiers, all devices at once (each cell has one device)
            room = cap[None, :] - beta - eta.max(axis=2)  # [L, C] the largest device index allowed
            dl = np.broadcast_to(mod_cands[:, None], (n_l, n_c, n_m, N_DEVICES))
            idx = cells(np.broadcast_to(beta[:, :, None], (n_l, n_c, n_m)), dl, eta[:, :, None, :])
            per = objective(idx).sum(axis=3)  # [L, C, K, D]
            per = np.where(mod_cands[None, None, :, None] <= room[:, :, None, None], per, -np.inf)
            delta = np.where(mod[None, :, None], mod_cands[np.argmax(per, axis=2)], 0)
            # hour-block modifiers, all blocks at once (each cell has one block)
            room = cap[None, :] - beta - delta.max(axis=2)
            et = np.broadcast_to(mod_cands[:, None], (n_l, n_c, n_m, n_blocks))
            idx = cells(np.broadcast_to(beta[:, :, None], (n_l, n_c, n_m)), delta[:, :, None, :], et)
            per = objective(idx).sum(axis=4)  # [L, C, K, 24]
            by_block = np.zeros((n_l, n_c, n_m, n_blocks))
            np.add.at(by_block, (slice(None), slice(None), slice(None), block), per)
            by_block = np.where(mod_cands[None, None, :, None] <= room[:, :, None, None], by_block, -np.inf)
            eta = np.where(mod[None, :, None], mod_cands[np.argmax(by_block, axis=2)], 0)
        if all(np.array_equal(a, b) for a, b in zip(before, (beta, delta, eta), strict=True)):
            break
    idx = cells(beta, delta, eta) + origin  # [L, C, 24, D]
    c2, h2, d2 = np.arange(n_c)[None, :, None, None], np.arange(HOURS)[None, None, :, None], np.arange(N_DEVICES)
    spend = cost[idx, c2, h2, d2].sum(axis=(2, 3))
    conv = value[idx, c2, h2, d2].sum(axis=(2, 3))
    return BidShapes(
        lams=lams,
        bids=np.exp(log_ref[None, :] + GRID_STEP * beta),
        device=np.exp(GRID_STEP * delta),
        hours=np.exp(GRID_STEP * eta),
        spend=spend,
        conversions=conv,
    )
