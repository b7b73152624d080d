"""The competitor side of one campaign's auctions, fitted from what the platform reports at the bids in force.

Model (the same mechanics as `rl.market.auction`, with every quality set to 1 so scores are bids): R rivals bid
i.i.d. lognormal(log median + log hour_mult[h] + log device_mult[d], sigma) in every auction of the campaign; our bid
in an (hour, device) cell is the base bid × the device and hour-block modifiers in force (the effective bid). Search:
S slots, we are shown when fewer than S rivals bid more than us, our position is 1 + that number, and a click costs
the highest rival bid below ours (or the reserve). Social: one slot, shown when no rival bids more, and an
impression costs the highest rival bid / 1000 (or the reserve CPM).

The expected outcome of an auction is computed exactly (`expected`): the number of rivals above a bid is binomial,
and the price, the largest of the rivals below, has a closed-form distribution whose mean is one integral
(Gauss-Legendre). `predict` is the same by Monte-Carlo draws, kept as an independent check.

Estimator (method of moments, `rl.calibration.rivals.fit_rivals`): the (R, median, sigma) whose impression share and
average price at every bid level the campaign has used best match the reported ones (Nelder-Mead on (log median,
log sigma) for each R on a small grid; the best R wins):
  * log average CPC (search) or log average CPM (social), per bid level, weighted by clicks / impressions;
  * search impression share per day, predicted with the platform's pacing: a binding budget
    throttles participation, which lowers the share by a factor the model computes;
  * social platforms report no share: there, the auctions a level implies (impressions per day on days the budget
    did not bind / the model's share shown at the level) must not depend on the level — the volume of auctions is
    the market's, not the bid's — which pins down how fast winning rises with the bid.
A bid level is a base bid with the modifiers in force (`Levels`). The rivals' hour and device multipliers start
from the hourly average price relative to the day's and are then fitted per hour and per device by
`rl.calibration.cells`, after which (median, sigma) are refitted once. The bid levels exist because bids changed
over the history; with a single bid level only one point of each curve is seen, and the fit says so in its flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy.special import gammaln, log_ndtr

HOURS = 24
N_DEVICES = 3
N_MC = 1200
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(24)
_U, _W = (_NODES + 1.0) / 2.0, _WEIGHTS / 2.0  # on [0, 1]


@dataclass(frozen=True)
class AuctionStructure:
    """What is known about a platform's auction (public documentation, not fitted): slots, relative click-through
    by position (slot 1 = 1), reserve price (CPC for search, CPM for social)."""

    kind: str
    slots: int
    position_ctr_rel: tuple[float, ...]
    reserve: float


@dataclass
class RivalFit:
    """Fitted rivals of one campaign. `levels` holds, per bid level, the observed and fitted price and share.
    hour_mult [24] and device_mult [3] scale the rivals' bids by hour and device (volume-weighted geometric mean 1);
    `cells` (from `rl.calibration.cells`) their standard errors and the effects they imply."""

    n_rivals: int
    log_median: float
    sigma: float
    hour_mult: np.ndarray  # [24]
    loss: float
    levels: pl.DataFrame
    flags: list[str] = field(default_factory=list)
    device_mult: np.ndarray = field(default_factory=lambda: np.ones(N_DEVICES))
    cells: dict = field(default_factory=dict)

    @property
    def median(self) -> float:
        return float(np.exp(self.log_median))


@dataclass(frozen=True)
class Levels:
    """The distinct settings a campaign ran with: base bids [L], the (hour, device) cell multipliers of the
    modifiers in force [L, 24, 3], and each day's level (`day_level` [T], -1 for a day without a bid)."""

    bids: np.ndarray
    own: np.ndarray
    day_level: np.ndarray

    @classmethod
    def from_bids(cls, bids: np.ndarray) -> Levels:
        """Levels of days that ran without modifiers: one level per distinct bid."""
        bids = np.asarray(bids, dtype=float)
        known = np.isfinite(bids) & (bids > 0)
        unique = np.unique(bids[known])
        day_level = np.full(len(bids), -1, dtype=np.int64)
        day_level[known] = np.searchsorted(unique, bids[known])
        return cls(unique, np.ones((len(unique), HOURS, N_DEVICES)), day_level)

    @classmethod
    def from_days(cls, bids: np.ndarray, own: np.ndarray) -> Levels:
        """Levels from each day's base bid [T] and cell multipliers [T, 24, 3] (rounded to 1e-6 to group)."""
        bids = np.asarray(bids, dtype=float)
        known = np.isfinite(bids) & (bids > 0)
        keys: dict[tuple, int] = {}
        day_level = np.full(len(bids), -1, dtype=np.int64)
        rows, mults = [], []
        for t in np.flatnonzero(known):
            key = (round(float(bids[t]), 6), *np.round(own[t], 6).reshape(-1).tolist())
            if key not in keys:
                keys[key] = len(rows)
                rows.append(float(bids[t]))
                mults.append(own[t])
            day_level[t] = keys[key]
        own_l = np.array(mults) if mults else np.ones((0, HOURS, N_DEVICES))
        return cls(np.array(rows), own_l, day_level)

    @property
    def n(self) -> int:
        return len(self.bids)

    @property
    def neutral(self) -> bool:
        return bool(np.all(self.own == 1.0))


def expected(
    s: AuctionStructure, n_rivals: int, log_median: float, sigma: float, x: np.ndarray, reserve: np.ndarray
) -> dict[str, np.ndarray]:
    """Exact expected outcome of one auction at own bid `x` against rivals scaled to 1 (`reserve` in the same
    units): share shown, relative clicks (position CTR / slot 1) and cost, per opportunity. Broadcasts x and
    reserve; a cell whose rivals are scaled by r has x = effective bid / r, reserve / r, and cost × r."""
    x = np.asarray(x, dtype=float)
    reserve = np.broadcast_to(np.asarray(reserve, dtype=float), x.shape)
    ok = (x > 0) & (x >= reserve)
    xs = np.where(x > 0, x, 1.0)
    t = (np.log(xs) - log_median) / sigma
    log_below, log_above = log_ndtr(t), log_ndtr(-t)  # one rival below / above our bid
    r = n_rivals
    rel = np.asarray(s.position_ctr_rel, dtype=float)
    # the price when k rivals are above: E[max(reserve, largest of the r - k below)], the largest having
    # P(M <= y) = (F(y) / F(x))^(r - k) on (0, x]
    lo = np.minimum(reserve, xs)
    y = lo[..., None] + _U * (xs - lo)[..., None]
    log_ratio = log_ndtr((np.log(np.maximum(y, 1e-300)) - log_median) / sigma) - log_below[..., None]
    shown = np.zeros(x.shape)
    clicks = np.zeros(x.shape)
    cost = np.zeros(x.shape)
    for k in range(min(s.slots, r + 1)):
        m = r - k
        log_pk = gammaln(r + 1) - gammaln(k + 1) - gammaln(m + 1) + k * log_above + m * log_below
        pk = np.where(ok, np.exp(log_pk), 0.0)
        price = lo + (xs - lo) * ((1.0 - np.exp(m * log_ratio)) * _W).sum(axis=-1)
        shown += pk
        if s.kind == "search":
            ctr = rel[min(k, len(rel) - 1)]
            clicks += pk * ctr
            cost += pk * ctr * price
        else:
            clicks += pk
            cost += pk * price / 1000.0
    return {"shown": shown, "clicks": clicks, "cost": cost}


def cell_outcomes(
    s: AuctionStructure,
    n_rivals: int,
    log_median: float,
    sigma: float,
    bids: np.ndarray,
    own: np.ndarray,
    rival: np.ndarray,
) -> dict[str, np.ndarray]:
    """Expected shown, relative clicks and cost per opportunity in every (hour, device) cell of every level:
    bids [L], own [L, 24, 3] cell multipliers of our bid, rival [24, 3] the rivals' multipliers → [L, 24, 3]."""
    rival = np.asarray(rival, dtype=float)
    x = np.asarray(bids, dtype=float)[:, None, None] * own / rival
    out = expected(s, n_rivals, log_median, sigma, x, s.reserve / rival)
    out["cost"] = out["cost"] * rival
    return out


def aggregate(cells: dict[str, np.ndarray], weights: np.ndarray) -> dict[str, np.ndarray]:
    """Cell outcomes [L, 24, 3] averaged with volume weights [24, 3] (summing to 1) → [L]."""
    return {k: (v * weights).sum(axis=(1, 2)) for k, v in cells.items()}


class _Sample:
    """Fixed standard-normal draws for up to max(R) rivals, each row sorted high to low (common random numbers)."""

    def __init__(self, n_rivals: int, seed: int = 7):
        z = np.random.default_rng(seed).standard_normal((N_MC, n_rivals))
        self.z = -np.sort(-z, axis=1)


def predict(
    s: AuctionStructure, z: np.ndarray, log_median: float, sigma: float, bids: np.ndarray, hour_mult, hour_w
) -> dict[str, np.ndarray]:
    """Monte-Carlo version of `expected` averaged over hours (an independent check of it, and a data generator
    for tests): per bid level (bids [L]), share shown, relative clicks and cost per opportunity, averaged over
    hours with weights hour_w [24]."""
    rel = np.asarray(s.position_ctr_rel, dtype=float)
    hm = np.asarray(hour_mult, dtype=float)
    t = (np.log(bids[:, None] / hm[None, :]) - log_median) / sigma  # [L, 24]
    n_above = (z[None, None, :, :] > t[:, :, None, None]).sum(axis=3)  # [L, 24, N]
    shown = n_above < s.slots
    r = z.shape[1]
    idx = np.minimum(n_above, r - 1)
    below = np.take_along_axis(np.broadcast_to(z, (*n_above.shape, r)), idx[..., None], axis=3)[..., 0]
    below = np.where(n_above < r, below, -np.inf)
    price = np.maximum(s.reserve, hm[None, :, None] * np.exp(log_median + sigma * below))
    if s.kind == "search":
        ctr = np.where(shown, rel[np.minimum(n_above, len(rel) - 1)], 0.0)
        cost = ctr * price
    else:
        ctr = shown.astype(float)
        cost = shown * price / 1000.0
    w = np.asarray(hour_w, dtype=float)[None, :]
    return {
        "shown": (shown.mean(axis=2) * w).sum(axis=1),
        "clicks": (ctr.mean(axis=2) * w).sum(axis=1),
        "cost": (cost.mean(axis=2) * w).sum(axis=1),
    }
