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

Estimator (method of moments): the (R, median, sigma) whose impression share and average price at every bid level
the campaign has used best match the reported ones (Nelder-Mead on (log median, log sigma) for each R on a small
grid; the best R wins):
  * log average CPC (search) or log average CPM (social), per bid level, weighted by clicks / impressions;
  * search impression share per day, predicted with the platform's pacing (see `fit_rivals`): a binding budget
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
from scipy.optimize import minimize
from scipy.special import gammaln, log_ndtr

HOURS = 24
N_DEVICES = 3
N_MC = 1200
RIVAL_GRID_SEARCH = (2, 3, 4, 5, 6, 8)
RIVAL_GRID_SOCIAL = (1, 2)
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


def hour_multipliers(hourly: pl.DataFrame, kind: str) -> np.ndarray:
    """A first guess of the rivals' relative bid by hour: the hourly average price (CPC search, CPM social) vs the
    overall one (prices rise with the rivals' bids, if less than in proportion; `rl.calibration.cells` fits them)."""
    unit = "clicks" if kind == "search" else "impressions"
    by_hour = hourly.group_by("hour").agg(pl.col("spend").sum(), pl.col(unit).sum()).sort("hour")
    spend = np.zeros(HOURS)
    units = np.zeros(HOURS)
    spend[by_hour["hour"].to_numpy()] = by_hour["spend"].to_numpy()
    units[by_hour["hour"].to_numpy()] = by_hour[unit].to_numpy()
    overall = spend.sum() / max(units.sum(), 1e-9)
    ratio = np.where(units >= 30, spend / np.maximum(units, 1e-9) / max(overall, 1e-12), np.nan)
    ratio = np.where(np.isnan(ratio), 1.0, ratio)
    smooth = (np.roll(ratio, 1) + ratio + np.roll(ratio, -1)) / 3.0
    return np.clip(smooth, 0.6, 1.6)


@dataclass
class _Observed:
    """A campaign's reports arranged for the fit: per level, and per day with a reported share."""

    price: np.ndarray  # [L] observed average price per level (CPC or CPM)
    w_price: np.ndarray  # [L] weight of each level's price (its share of clicks / impressions)
    units: np.ndarray  # [L] clicks (search) or impressions (social) per level
    impressions: np.ndarray  # [L]
    d_level: np.ndarray  # [N] level of each day with a reported share above 10%
    d_opps: np.ndarray  # [N] its opportunities (impressions / share)
    d_share: np.ndarray  # [N]
    d_budget: np.ndarray  # [N]
    clicks_total: float
    free_impressions: np.ndarray  # [L] impressions per day on the level's days the budget did not bind (0: none)
    free_days: np.ndarray  # [L] how many such days


def _observed(s: AuctionStructure, daily: pl.DataFrame, lv: Levels) -> tuple[_Observed, np.ndarray]:
    unit = "clicks" if s.kind == "search" else "impressions"
    level = lv.day_level

    def per_level(col: str) -> np.ndarray:
        values = daily[col].fill_null(0).to_numpy().astype(float)
        return np.bincount(level[level >= 0], weights=values[level >= 0], minlength=lv.n)

    spend, units, impressions = per_level("spend"), per_level(unit), per_level("impressions")
    used = np.flatnonzero(units > 0)
    share = daily["impression_share"].to_numpy().astype(float) if "impression_share" in daily.columns else None
    if share is None:
        share = np.full(daily.height, np.nan)
    share = np.where(np.isfinite(share), share, np.nan)
    keep = (level >= 0) & (share > 0.1) & np.isin(level, used)
    impr_d = daily["impressions"].to_numpy().astype(float)
    per_unit = 1.0 if s.kind == "search" else 1000.0
    spend_d = daily["spend"].fill_null(0).to_numpy().astype(float)
    budget_d = daily["daily_budget"].to_numpy().astype(float)
    free = (level >= 0) & (impr_d > 0) & (spend_d < 0.9 * budget_d)
    free_days = np.bincount(level[free], minlength=lv.n).astype(float)
    free_impr = np.bincount(level[free], weights=impr_d[free], minlength=lv.n)
    obs = _Observed(
        price=spend[used] / units[used] * per_unit,
        w_price=units[used] / units[used].sum() if len(used) else np.zeros(0),
        units=units[used],
        impressions=impressions[used],
        d_level=np.searchsorted(used, level[keep]),
        d_opps=impr_d[keep] / share[keep],
        d_share=share[keep],
        d_budget=daily["daily_budget"].to_numpy().astype(float)[keep],
        clicks_total=float(per_level("clicks")[used].sum()),
        free_impressions=np.where(free_days > 0, free_impr / np.maximum(free_days, 1), 0.0)[used],
        free_days=free_days[used],
    )
    return obs, used


def fit_rivals(
    s: AuctionStructure,
    daily: pl.DataFrame,
    hourly: pl.DataFrame,
    hour_w: np.ndarray,
    seed: int = 7,
    *,
    levels: Levels | None = None,
    device_w: np.ndarray | None = None,
    device_mult: np.ndarray | None = None,
    hour_mult: np.ndarray | None = None,
    start: RivalFit | None = None,
) -> RivalFit:
    """Fit R, median and sigma of the campaign's rivals (module docstring). `daily`: one row per day (bid,
    daily_budget, impressions, clicks, spend, impression_share); `levels` the settings each day ran with (default:
    its bid without modifiers); `hour_w` [24] and `device_w` [3] the volume shares; the rivals' hour and device
    multipliers are held at `hour_mult` (default: from the hourly prices) and `device_mult` (default 1). With
    `start`, only its R is refitted, from its (median, sigma).

    Search impression share is predicted per day as P(shown | level) × the platform's pacing participation
    min(1, budget / potential spend), potential spend = opportunities (impressions / share, reported) × position-1
    CTR × the model's cost per opportunity at the level: a budget that binds lowers the share, and the model knows
    by how much, so every day with a reported share counts. (`seed` is not used: the model is exact.)"""
    lv = levels if levels is not None else Levels.from_bids(daily["bid"].to_numpy().astype(float))
    obs, used = _observed(s, daily, lv)
    unit = "clicks" if s.kind == "search" else "impressions"
    flags: list[str] = []
    if len(used) == 0:
        raise ValueError(f"no day with {unit} at a positive bid: the rivals cannot be fitted")
    if len(used) == 1:
        flags.append("one bid level only: the rival spread is a prior, not a fit")
    hm = hour_multipliers(hourly, s.kind) if hour_mult is None else np.asarray(hour_mult, dtype=float)
    dm = np.ones(N_DEVICES) if device_mult is None else np.asarray(device_mult, dtype=float)
    dw = np.full(N_DEVICES, 1.0 / N_DEVICES) if device_w is None else np.asarray(device_w, dtype=float)
    weights = np.asarray(hour_w, dtype=float)[:, None] * (dw / dw.sum())[None, :]
    weights = weights / weights.sum()
    rival = hm[:, None] * dm[None, :]
    bids, own = lv.bids[used], lv.own[used]
    use_share = s.kind == "search" and len(obs.d_share) > 0
    if s.kind == "search" and not use_share:
        flags.append("no day with a reported impression share above 10%: the fit uses prices only")
    per_unit = 1.0 if s.kind == "search" else 1000.0
    vol_at = np.flatnonzero(obs.free_days > 0)
    use_volume = s.kind != "search" and len(vol_at) >= 2

    def model(r: int, x) -> tuple[dict, np.ndarray | None]:
        p = aggregate(cell_outcomes(s, r, x[0], float(np.exp(x[1])), bids, own, rival), weights)
        if not use_share:
            return p, None
        cps = p["clicks"] / np.maximum(p["shown"], 1e-12)  # relative clicks per impression at each level
        k = obs.clicks_total / max(float((obs.impressions * cps).sum()), 1e-12)  # position-1 CTR
        potential = obs.d_opps * k * p["cost"][obs.d_level]
        throttle = np.minimum(1.0, obs.d_budget / np.maximum(potential, 1e-12))
        return p, p["shown"][obs.d_level] * throttle

    def loss(x, r) -> float:
        p, share = model(r, x)
        denom = p["clicks"] if s.kind == "search" else p["shown"]
        with np.errstate(divide="ignore", invalid="ignore"):
            price = p["cost"] / denom * per_unit
        price_err = np.where(denom > 1e-12, np.log(np.maximum(price, 1e-9)) - np.log(obs.price), 3.0)
        out = float((obs.w_price * price_err**2).sum())
        if share is not None:
            out += float(((share - obs.d_share) ** 2).mean())
        elif use_volume:
            volume = np.log(obs.free_impressions[vol_at] / np.maximum(p["shown"][vol_at], 1e-12))
            w = obs.free_days[vol_at] / obs.free_days[vol_at].sum()
            out += float((w * (volume - (w * volume).sum()) ** 2).sum())
        return out + 1e-4 * (x[1] - np.log(0.4)) ** 2  # a weak pull towards a typical spread

    best = None
    options = {"xatol": 1e-3, "fatol": 1e-7, "maxiter": 400}
    if start is not None:
        x0 = np.array([start.log_median, np.log(start.sigma)])
        res = minimize(loss, x0, args=(start.n_rivals,), method="Nelder-Mead", options=options)
        best = (res.fun, start.n_rivals, res.x)
    else:
        for r in RIVAL_GRID_SEARCH if s.kind == "search" else RIVAL_GRID_SOCIAL:
            x0 = np.array(
                [np.log(np.average(obs.price, weights=obs.w_price)) + (0.3 if s.kind == "search" else 0.0), np.log(0.4)]
            )
            res = minimize(loss, x0, args=(r,), method="Nelder-Mead", options=options)
            if best is None or res.fun < best[0]:
                best = (res.fun, r, res.x)
    _, r, x = best
    p, share = model(r, x)
    denom = p["clicks"] if s.kind == "search" else p["shown"]
    share_fit = np.full(len(used), np.nan)
    share_obs = np.full(len(used), np.nan)
    if share is not None:
        for i in range(len(used)):
            on = obs.d_level == i
            if on.any():
                share_fit[i] = share[on].mean()
                share_obs[i] = obs.d_share[on].mean()
    table = pl.DataFrame(
        {
            "level": used,
            "bid": bids,
            "days": np.bincount(lv.day_level[lv.day_level >= 0], minlength=lv.n)[used],
            unit: obs.units,
            "price_observed": obs.price,
            "price_fitted": p["cost"] / np.maximum(denom, 1e-12) * per_unit,
            "share_observed": share_obs,
            "share_fitted": share_fit,
            "share_unthrottled": p["shown"],
            "clicks_per_shown": p["clicks"] / np.maximum(p["shown"], 1e-12),
        }
    ).with_columns(pl.col("share_observed", "share_fitted").fill_nan(None))
    if unit != "clicks":
        clicks = np.bincount(
            lv.day_level[lv.day_level >= 0],
            weights=daily["clicks"].fill_null(0).to_numpy().astype(float)[lv.day_level >= 0],
            minlength=lv.n,
        )[used]
        table = table.with_columns(pl.Series("clicks", clicks))
    table = table.sort("bid", "level")  # in bid order for readers and plots; `level` keeps the mapping to days
    return RivalFit(r, float(x[0]), float(np.exp(x[1])), hm, float(best[0]), table, flags, dm)


def win_probability(
    s: AuctionStructure, fit: RivalFit, bids: np.ndarray, hour_w: np.ndarray, device_w: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """The fitted model's shown share, relative clicks and cost per opportunity at base `bids` [L] without
    modifiers, averaged over hours (and devices)."""
    bids = np.asarray(bids, dtype=float)
    dw = np.full(N_DEVICES, 1.0 / N_DEVICES) if device_w is None else np.asarray(device_w, dtype=float)
    weights = np.asarray(hour_w, dtype=float)[:, None] * (dw / dw.sum())[None, :]
    own = np.ones((len(bids), HOURS, N_DEVICES))
    rival = fit.hour_mult[:, None] * fit.device_mult[None, :]
    cells = cell_outcomes(s, fit.n_rivals, fit.log_median, fit.sigma, bids, own, rival)
    return aggregate(cells, weights / weights.sum())
