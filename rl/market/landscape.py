"""Bid landscapes: the expected auction outcome of every campaign as a function of its bid, from the true market.

In the engine (`rl.market.auction`), what an auction does with our bid b depends on one number, our log score in
the rivals' segment-free log space,

    u = log(b × quality_c) − log(competition_mult_s),

compared with the rivals' log scores r_k = log(median_k × quality_k × hour_k × device_k) + sigma_k·z + shift_k.
Position = 1 + #rivals with r_k > u; the price per click (search) or per impression (social, /1000) is
max(reserve, competition_mult_s × e^(next lower r) / quality_c). So for each campaign c, hour h and device d the
whole auction is a function of u alone, which `Landscape` tabulates once per market on a grid of u
(u = grid_lo[c] + g × step), from P(position = j + 1) and E[max(reserve·q/seg_s, e^next) · 1{position = j + 1}]:

    won[c, h, d, g]          P(shown) = Σ_j P(position = j + 1)
    ctr[c, h, d, g]          Σ_j P(position = j + 1) × slot CTR_j          (× the click multiplier → CTR)
    position[c, h, d, g]     Σ_j (j + 1) × P(position = j + 1)
    price[c, h, d, s, g]     search: Σ_j E[price mass · 1{position = j + 1}] × slot CTR_j (× click multiplier ×
                             seg_s / q_c → expected cost per opportunity); social: the position-1 mass (per
                             impression, ÷ 1000)

by Monte Carlo over `n_samples` fixed draws of the rivals' z (sorting each draw's rival scores once and adding
every position's interval of u to difference arrays, so the tables cost one pass over the samples). A lookup
interpolates linearly between grid points.

Rivals' adaptation shifts (`MarketState.comp_shift`) move individual rivals; the landscape approximates them by
one shift per campaign, the mean shift of its rivals (`campaign_shift`), which translates u and scales prices.
Everything else — position CTRs, creative, segment and device click-through, fatigue, session and conversion
rates, opportunity volumes by hour, device and segment — enters in closed form (`Landscape.rates`,
`expected_day`). Pacing is the platform's: served = min(1, budget / potential spend) of what is won.

Pacing in expectation (`served_fraction`): the platform throttles participation to min(1, budget / the day's
realised potential spend) and stops serving at the first cost that would overflow the budget. The realised
potential and the participating cost are random sums of item costs (clicks on search, impressions on social), so
a binding budget is on average under-spent by about 0.4 standard deviations of the participating cost plus half
an overflowing item; `served_fraction` integrates that over the potential's spread (Gauss–Hermite) with item
costs of relative spread `PRICE_CV`.

This is the planner's and the fast simulator's view of the market (`rl.policies.ceiling`, `rl.market.fast`): the
same mechanics in expectation, not an estimate from data. Shapes: M markets, C campaigns, D devices, S segments,
G grid points, J = the most ad slots of any campaign.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr  # the normal CDF, vectorised

from rl.market.compiled import CompiledMarket
from rl.market.params import DEVICES, HOURS

N_DEVICES = len(DEVICES)
GRID_STEP = 0.04  # log-score resolution of the tables (4% bid steps; linear interpolation between)
N_SAMPLES = 512
SAMPLE_SEED = 20261206
PRICE_CV = 0.4  # relative spread of one click's (impression's) price around the mean, for the budget-stop term
_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(9)
_GH_W = _GH_W / _GH_W.sum()


@dataclass(frozen=True)
class Landscape:
    """The tabulated auctions of one market (see the module docstring)."""

    cm: CompiledMarket
    grid_lo: np.ndarray  # [C] u of grid point 0
    step: float
    n_grid: int
    won: np.ndarray  # [C, 24, D, G]
    ctr: np.ndarray  # [C, 24, D, G]
    position: np.ndarray  # [C, 24, D, G]
    price: np.ndarray  # [C, 24, D, S, G] normalised price mass (× seg_s / quality_c → currency)
    # per-campaign constants the rates need
    log_quality: np.ndarray  # [C]
    log_seg: np.ndarray  # [S]
    price_unit: np.ndarray  # [C, S] seg_s / quality_c (÷ 1000 on social: prices per impression)
    cvr: np.ndarray  # [C, D, S] conversion probability of a session
    click_base: np.ndarray  # [C, D, S] creative × segment × device click multiplier (before fatigue)
    seg_share: np.ndarray  # [C, S]

    @classmethod
    def build(cls, cm: CompiledMarket, n_samples: int = N_SAMPLES, step: float = GRID_STEP) -> Landscape:
        n_c, n_s = cm.n_campaigns, len(cm.seg_cvr)
        n_j = int(cm.n_slots.max())
        rng = np.random.default_rng(SAMPLE_SEED)
        kmax = cm.comp_idx.shape[1]
        # antithetic draws: the tables' Monte Carlo error then cancels to first order in the rivals' spread
        half = rng.standard_normal((n_samples // 2, kmax))
        z = np.concatenate([half, -half])
        log_seg = np.log(cm.seg_comp)
        q = cm.quality
        # the grid must reach below every rival score (nobody above us) and above them all, per campaign
        spans = []
        for c in range(n_c):
            k = int((cm.comp_idx[c] >= 0).sum())
            if k == 0:
                spans.append((np.log(max(cm.reserve[c] * q[c], 1e-9)) - 1.0, np.log(max(cm.reserve[c] * q[c], 1e-9))))
                continue
            base = cm.rival_base_table[c][:, :, :k]
            sig = cm.rival_sigma_table[c, :k]
            spans.append((float(base.min() - 4.5 * sig.max() - 0.5), float(base.max() + 4.5 * sig.max() + 0.5)))
        n_grid = int(np.ceil(max(hi - lo for lo, hi in spans) / step)) + 2
        grid_lo = np.array([lo for lo, _ in spans])
        pos_prob = np.zeros((n_c, HOURS, N_DEVICES, n_grid, n_j))
        pos_price = np.zeros((n_c, HOURS, N_DEVICES, n_s, n_grid, n_j))
        n_cells = HOURS * N_DEVICES
        for c in range(n_c):
            slots = int(cm.n_slots[c])
            k = int((cm.comp_idx[c] >= 0).sum())
            floor = cm.reserve[c] * q[c] / cm.seg_comp  # [S] the reserve in normalised price units
            if k == 0:  # alone in the auction: always first, at the reserve
                pos_prob[c, ..., 0] = 1.0
                pos_price[c, ..., 0] = floor[None, None, :, None]
                continue
            base = cm.rival_base_table[c][:, :, :k].reshape(n_cells, 1, k)
            r = base + z[None, :, :k] * cm.rival_sigma_table[c, :k][None, None, :]  # [cells, N, K]
            r = -np.sort(-r, axis=2)  # high to low
            grid = grid_lo[c] + step * np.arange(n_grid)
            # rival i is above us at grid point g iff r_i > u_g, i.e. g < idx_i (side="left": ties are not above)
            idx = np.searchsorted(grid, r.reshape(-1), side="left").reshape(r.shape)
            cell_of = np.repeat(np.arange(n_cells), n_samples)  # [cells · N]
            for j in range(min(slots, k + 1)):  # position j + 1: exactly j rivals above
                lo = idx[:, :, j].reshape(-1) if j < k else np.zeros(n_cells * n_samples, dtype=np.int64)
                hi = idx[:, :, j - 1].reshape(-1) if j >= 1 else np.full(n_cells * n_samples, n_grid)
                span = (cell_of, lo, hi, n_cells, n_grid, n_samples)
                pos_prob[c, ..., j] = _spread(np.ones(len(lo)), *span).reshape(HOURS, N_DEVICES, n_grid)
                nxt = np.exp(r[:, :, j].reshape(-1)) if j < k else np.zeros(len(lo))
                for s in range(n_s):
                    mass = _spread(np.maximum(floor[s], nxt), *span)
                    pos_price[c, :, :, s, :, j] = mass.reshape(HOURS, N_DEVICES, n_grid)
        slot_ctr = np.zeros((n_c, n_j))
        for c in range(n_c):
            slot_ctr[c, : cm.n_slots[c]] = cm.slot_ctr[c, : cm.n_slots[c]]
        sc = slot_ctr[:, None, None, None, :]
        # what a lookup needs, summed over positions once here: search pays per click (price × slot CTR), social
        # per impression (position 1 only)
        price = np.where(
            cm.is_search[:, None, None, None, None],
            (pos_price * slot_ctr[:, None, None, None, None, :]).sum(axis=-1),
            pos_price[..., 0],
        )
        price_unit = cm.seg_comp[None, :] / q[:, None]
        price_unit = np.where(cm.is_search[:, None], price_unit, price_unit / 1000.0)
        cvr = np.minimum(
            cm.seg_cvr[None, None, :] * cm.cvr_mult[:, None, None] * cm.dev_cvr[None, :, None], 1.0
        )  # [C, D, S]
        click_base = cm.ctr_mult[:, None, None] * cm.seg_ctr[None, None, :] * cm.dev_ctr[None, :, None]
        seg_share = np.diff(np.concatenate([np.zeros((n_c, 1)), cm.seg_cdf], axis=1), axis=1)
        return cls(
            cm=cm,
            grid_lo=grid_lo,
            step=step,
            n_grid=n_grid,
            won=pos_prob.sum(axis=-1),
            ctr=(pos_prob * sc).sum(axis=-1),
            position=(pos_prob * np.arange(1, n_j + 1)).sum(axis=-1),
            price=price,
            log_quality=np.log(q),
            log_seg=log_seg,
            price_unit=price_unit,
            cvr=cvr,
            click_base=click_base,
            seg_share=seg_share,
        )

    # -- lookups ------------------------------------------------------------------------------------------------
    def rates(self, log_bid: np.ndarray, shift: np.ndarray, exposure: np.ndarray) -> dict[str, np.ndarray]:
        """Per-opportunity expected outcomes before pacing, each [M, C, 24, D, S].

        log_bid: [M, C, 24, D] log of the effective bid in each cell (−inf: no bid); shift: [M, C] the campaigns'
        rival shift (`campaign_shift`); exposure: [M, C] fatigue stock. Returns won (P(shown)), clicks, cost (per
        click × CTR for search, per impression for social), position (Σ position × P) and conversions (eventual)."""
        cm = self.cm
        n_g = self.n_grid
        # u for every segment: [M, C, 24, D, S]
        u = (log_bid[..., None] - self.log_seg) + (
            self.log_quality[None, :, None, None, None] - shift[:, :, None, None, None]
        )
        f = (u - self.grid_lo[None, :, None, None, None]) / self.step
        f = np.clip(np.nan_to_num(f, nan=0.0, neginf=0.0, posinf=n_g - 1.0), 0.0, n_g - 1.0)
        g0 = np.minimum(f.astype(np.int64), n_g - 2)
        w = f - g0
        # flat positions in the tables: cell tables [C, 24, D, G], price [C, 24, D, S, G]
        cell = self._cell_base[None] + g0  # [M, C, 24, D, S]
        pcell = self._price_base[None] + g0

        def lerp(table, at):
            flat = table.reshape(-1)
            lo = flat.take(at)
            return lo + w * (flat.take(at + 1) - lo)

        # a bid below the reserve (or no bid) is never shown
        ok = ((log_bid >= self._log_reserve[None, :, None, None]) & np.isfinite(log_bid))[..., None]
        won = lerp(self.won, cell) * ok
        position = lerp(self.position, cell) * ok
        fatigue = 1.0 / (1.0 + cm.fatigue[None, :] * exposure)  # [M, C]
        click_mult = self.click_base[None, :, None, :, :] * fatigue[:, :, None, None, None]  # [M, C, 1, D, S]
        clicks = lerp(self.ctr, cell) * ok * click_mult
        price_scale = self.price_unit[None, :, None, None, :] * np.exp(shift)[:, :, None, None, None]
        mass = lerp(self.price, pcell) * ok * price_scale
        cost = np.where(cm.is_search[None, :, None, None, None], mass * click_mult, mass)
        conversions = clicks * (cm.session_rate[None, :, None, None, None] * self.cvr[None, :, None, :, :])
        return {"won": won, "clicks": clicks, "cost": cost, "position": position, "conversions": conversions}

    @property
    def _cell_base(self) -> np.ndarray:
        """[C, 24, D, 1] flat offset of grid point 0 of every cell in the [C, 24, D, G] tables."""
        n_c = self.won.shape[0]
        return (np.arange(n_c * HOURS * N_DEVICES) * self.n_grid).reshape(n_c, HOURS, N_DEVICES, 1)

    @property
    def _price_base(self) -> np.ndarray:
        """[C, 24, D, S] flat offset of grid point 0 in the [C, 24, D, S, G] price table."""
        shape = self.price.shape[:4]
        return (np.arange(int(np.prod(shape))) * self.n_grid).reshape(shape)

    @property
    def _log_reserve(self) -> np.ndarray:
        return np.log(np.maximum(self.cm.reserve, 1e-300))

    def opportunities(self, date: dt.date, volume_scale: np.ndarray | None, n_markets: int) -> np.ndarray:
        """Expected opportunities [M, C, 24, D, S] on `date` (volume × hour × device share × segment mix)."""
        cm = self.cm
        lam = cm.expected_opportunities(date)  # [C, 24]
        scale = np.ones((n_markets, cm.n_campaigns))
        if volume_scale is not None:
            scale = np.broadcast_to(np.asarray(volume_scale, float).reshape(n_markets, -1), scale.shape)
        dev_share = np.diff(np.concatenate([[0.0], cm.device_cdf]))
        return (
            scale[:, :, None, None, None]
            * lam[None, :, :, None, None]
            * dev_share[None, None, None, :, None]
            * self.seg_share[None, :, None, None, :]
        )


def _spread(weights, cell_of, lo, hi, n_cells: int, n_grid: int, n_samples: int) -> np.ndarray:
    """[cells, G] the mean over samples of weight × 1{lo <= g < hi}: each sample's interval of grid points added to
    a difference array, then summed along the grid."""
    width = n_grid + 1
    size = n_cells * width
    diff = np.bincount(cell_of * width + lo, weights=weights, minlength=size)
    diff -= np.bincount(cell_of * width + hi, weights=weights, minlength=size)
    return np.cumsum(diff.reshape(n_cells, width), axis=1)[:, :n_grid] / n_samples


def served_fraction(budgets: np.ndarray, potential: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Expected served spend / expected potential spend, [M, C] (see the module docstring).

    budgets, potential (expected spend if every won auction were served), items (expected paid items: clicks on
    search, impressions on social), all [M, C]."""
    budgets = np.asarray(budgets, dtype=float)
    mu = np.maximum(potential, 1e-12)
    n = np.maximum(items, 1e-12)
    m1 = mu / n
    m2 = m1**2 * (1.0 + PRICE_CV**2)
    sd_p = np.sqrt(n * m2)
    served = np.zeros_like(mu)
    for x, w in zip(_GH_X, _GH_W, strict=True):
        pr = np.maximum(mu + sd_p * x, 1e-12)  # a realised potential spend
        p = np.minimum(1.0, budgets / pr)
        mean_x = p * pr
        sd_x = np.sqrt(p * (1.0 - p) * (pr / mu) * n * m2)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(sd_x > 0, (budgets - mean_x) / np.where(sd_x > 0, sd_x, 1.0), np.inf)
        over = np.where(np.isfinite(z), 1.0 - ndtr(np.where(np.isfinite(z), z, 0.0)), 0.0)
        phi = np.where(np.isfinite(z), np.exp(-0.5 * np.where(np.isfinite(z), z, 0.0) ** 2) / np.sqrt(2 * np.pi), 0.0)
        excess = sd_x * phi - (budgets - mean_x) * over
        served += w * np.maximum(mean_x - excess - over * m2 / (2.0 * m1), 0.0)
    out = np.where(potential > 0, served / mu, 1.0)
    return np.where(budgets > 0, np.clip(out, 0.0, 1.0), 0.0)


def campaign_shift(cm: CompiledMarket, comp_shift: np.ndarray) -> np.ndarray:
    """[M, C] the mean adaptation shift of each campaign's rivals (0 without rivals)."""
    mask = cm.comp_campaigns.T.astype(float)  # [C, K]
    n = mask.sum(axis=1)
    return np.where(n > 0, comp_shift @ mask.T / np.maximum(n, 1.0), 0.0)


@dataclass(frozen=True)
class ExpectedDay:
    """Expected outcomes of one day, cell arrays [M, C, 24, D, S]; `throttle` [M, C] the pacing probability."""

    opportunities: np.ndarray
    won: np.ndarray
    impressions: np.ndarray
    clicks: np.ndarray
    cost: np.ndarray
    conversions: np.ndarray
    position_sum: np.ndarray
    throttle: np.ndarray  # [M, C] expected served share of what is won (pacing and the budget stop)
    potential_spend: np.ndarray  # [M, C] spend if every won auction were served

    def per_campaign(self, name: str) -> np.ndarray:
        return getattr(self, name).sum(axis=(2, 3, 4))


def expected_day(
    land: Landscape,
    date: dt.date,
    exposure: np.ndarray,
    comp_shift: np.ndarray,
    budgets: np.ndarray,
    bids: np.ndarray,
    bid_mult: np.ndarray | None = None,
    volume_scale: np.ndarray | None = None,
) -> ExpectedDay:
    """The day's expected outcomes under budgets, bids [M, C] and cell multipliers [M, C, 24, D] (or None)."""
    budgets = np.asarray(budgets, dtype=float)
    bids = np.asarray(bids, dtype=float)
    n_m = budgets.shape[0]
    eff = bids[:, :, None, None] * (1.0 if bid_mult is None else np.asarray(bid_mult, dtype=float))
    eff = np.broadcast_to(eff, (n_m, land.cm.n_campaigns, HOURS, N_DEVICES))
    with np.errstate(divide="ignore"):
        log_bid = np.where(eff > 0, np.log(np.maximum(eff, 1e-300)), -np.inf)
    r = land.rates(log_bid, campaign_shift(land.cm, comp_shift), exposure)
    opps = land.opportunities(date, volume_scale, n_m)
    potential = (opps * r["cost"]).sum(axis=(2, 3, 4))
    items = (opps * np.where(land.cm.is_search[None, :, None, None, None], r["clicks"], r["won"])).sum(axis=(2, 3, 4))
    p = served_fraction(budgets, potential, items)
    t = p[:, :, None, None, None]
    won = opps * r["won"]
    return ExpectedDay(
        opportunities=opps,
        won=won,
        impressions=won * t,
        clicks=opps * r["clicks"] * t,
        cost=opps * r["cost"] * t,
        conversions=opps * r["conversions"] * t,
        position_sum=opps * r["position"] * t,
        throttle=p,
        potential_spend=potential,
    )
