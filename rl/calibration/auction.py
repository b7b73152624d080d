"""The competitor side of one campaign's auctions, fitted from what the platform reports at the bids in force.

Model (the same mechanics as `rl.market.auction`, with every quality set to 1 so scores are bids): R rivals bid
i.i.d. lognormal(log median + log hour_mult[h], sigma) in every auction of the campaign. Search: S slots, we are
shown when fewer than S rivals bid more than us, our position is 1 + that number, and a click costs the highest
rival bid below ours (or the reserve). Social: one slot, shown when no rival bids more, and an impression costs
the highest rival bid / 1000 (or the reserve CPM).

Estimator (simulated method of moments with common random numbers): for each candidate (R, median, sigma) the
model's impression share and average price at every bid level the campaign has used are computed on a fixed
Monte-Carlo sample of rival draws, and the squared errors against the reported figures are minimised (Nelder-
Mead on (log median, log sigma), for each R on a small grid; the best R wins):
  * log average CPC (search) or log average CPM (social), per bid level, weighted by clicks / impressions;
  * search impression share per day, predicted with the platform's pacing (see `fit_rivals`): a binding budget
    throttles participation, which lowers the share by a factor the model computes.
The hour multiplier is read first from the hourly average price relative to the day's (prices scale with the
rivals' bids), circularly smoothed over three hours. The bid levels exist because bids changed over the history;
with a single bid level only one point of each curve is seen, and the fit says so in its flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy.optimize import minimize

HOURS = 24
N_MC = 1200
RIVAL_GRID_SEARCH = (2, 4, 8)
RIVAL_GRID_SOCIAL = (1, 2)


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
    """Fitted rivals of one campaign. `levels` holds, per bid level, the observed and fitted price and share."""

    n_rivals: int
    log_median: float
    sigma: float
    hour_mult: np.ndarray  # [24]
    loss: float
    levels: pl.DataFrame
    flags: list[str] = field(default_factory=list)

    @property
    def median(self) -> float:
        return float(np.exp(self.log_median))


class _Sample:
    """Fixed standard-normal draws for up to max(R) rivals, each row sorted high to low (common random numbers)."""

    def __init__(self, n_rivals: int, seed: int = 7):
        z = np.random.default_rng(seed).standard_normal((N_MC, n_rivals))
        self.z = -np.sort(-z, axis=1)


def predict(
    s: AuctionStructure, z: np.ndarray, log_median: float, sigma: float, bids: np.ndarray, hour_mult, hour_w
) -> dict[str, np.ndarray]:
    """Per bid level (bids [L]): share shown, relative clicks per opportunity, cost per opportunity (search: per
    click price × clicks; social: impression price / 1000), averaged over hours with weights hour_w [24]."""
    rel = np.asarray(s.position_ctr_rel, dtype=float)
    # hours whose multipliers agree to 2% are one evaluation (prices scale with the multiplier, so this is exact
    # up to that rounding): 24 hours become a handful of columns
    hm, inverse = np.unique(np.round(np.asarray(hour_mult, dtype=float) / 0.02) * 0.02, return_inverse=True)
    hour_w = np.bincount(inverse, weights=np.asarray(hour_w, dtype=float), minlength=len(hm))
    # effective (bid level, hour) pairs, compared in the rivals' standard-normal space
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
    """Rivals' relative bid by hour from the hourly average price (CPC search, CPM social) vs the overall one."""
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


def bid_levels(daily: pl.DataFrame) -> pl.DataFrame:
    """Days grouped by the bid in force: delivery sums, and impressions / opportunities where the share is known."""
    d = daily.filter(pl.col("bid").is_not_null() & (pl.col("bid") > 0)).with_columns(
        pl.when(pl.col("impression_share") > 0.1)
        .then(pl.col("impressions") / pl.col("impression_share"))
        .alias("opportunities"),
    )
    return (
        d.group_by("bid")
        .agg(
            pl.len().alias("days"),
            pl.col("spend").sum(),
            pl.col("impressions").sum(),
            pl.col("clicks").sum(),
            pl.col("impressions").filter(pl.col("opportunities").is_not_null()).sum().alias("s_impr"),
            pl.col("opportunities").sum().alias("s_opps"),
        )
        .sort("bid")
    )


def fit_rivals(
    s: AuctionStructure, daily: pl.DataFrame, hourly: pl.DataFrame, hour_w: np.ndarray, seed: int = 7
) -> RivalFit:
    """Fit R, median and sigma of the campaign's rivals (module docstring). `hour_w` [24]: volume share by hour.

    Search impression share is predicted per day as P(shown | bid) × the platform's pacing participation
    min(1, budget / potential spend), potential spend = opportunities (impressions / share, reported) × position-1
    CTR × the model's cost per opportunity at the bid: a budget that binds lowers the share, and the model knows by
    how much, so every day with a reported share counts."""
    levels = bid_levels(daily)
    unit = "clicks" if s.kind == "search" else "impressions"
    levels = levels.filter(pl.col(unit) > 0)
    flags: list[str] = []
    if levels.height == 0:
        raise ValueError(f"no day with {unit} at a positive bid: the rivals cannot be fitted")
    if levels.height == 1:
        flags.append("one bid level only: the rival spread is a prior, not a fit")
    hm = hour_multipliers(hourly, s.kind)
    bids = levels["bid"].to_numpy()
    per_unit = 1.0 if s.kind == "search" else 1000.0
    price_obs = levels["spend"].to_numpy() / levels[unit].to_numpy() * per_unit
    w_price = levels[unit].to_numpy() / levels[unit].sum()
    days = daily.filter(pl.col("bid").is_in(levels["bid"].implode()) & (pl.col("impression_share") > 0.1))
    level_of = {b: i for i, b in enumerate(bids.tolist())}
    d_level = np.array([level_of[b] for b in days["bid"].to_list()], dtype=np.int64)
    d_opps = (days["impressions"] / days["impression_share"]).to_numpy() if days.height else np.zeros(0)
    d_share = days["impression_share"].to_numpy() if days.height else np.zeros(0)
    d_budget = days["daily_budget"].to_numpy() if days.height else np.zeros(0)
    use_share = s.kind == "search" and days.height > 0
    if s.kind == "search" and not use_share:
        flags.append("no day with a reported impression share above 10%: the fit uses prices only")
    clicks_total = float(levels["clicks"].sum())
    grid = RIVAL_GRID_SEARCH if s.kind == "search" else RIVAL_GRID_SOCIAL

    def model(z, x) -> tuple[dict, np.ndarray | None]:
        p = predict(s, z, x[0], float(np.exp(x[1])), bids, hm, hour_w)
        if not use_share:
            return p, None
        cps = p["clicks"] / np.maximum(p["shown"], 1e-12)  # relative clicks per impression at each level
        k = clicks_total / max(float((levels["impressions"].to_numpy() * cps).sum()), 1e-12)  # position-1 CTR
        potential = d_opps * k * p["cost"][d_level]
        throttle = np.minimum(1.0, d_budget / np.maximum(potential, 1e-12))
        return p, p["shown"][d_level] * throttle

    def loss(x, z) -> float:
        p, share = model(z, x)
        denom = p["clicks"] if s.kind == "search" else p["shown"]
        with np.errstate(divide="ignore", invalid="ignore"):
            price = p["cost"] / denom * per_unit
        price_err = np.where(denom > 0, np.log(np.maximum(price, 1e-9)) - np.log(price_obs), 3.0)
        out = float((w_price * price_err**2).sum())
        if share is not None:
            out += float(((share - d_share) ** 2).mean())
        return out + 1e-4 * (x[1] - np.log(0.4)) ** 2  # a weak pull towards a typical spread

    best = None
    for r in grid:
        z = _Sample(r, seed).z
        x0 = np.array(
            [np.log(np.average(price_obs, weights=w_price)) + (0.3 if s.kind == "search" else 0.0), np.log(0.4)]
        )
        res = minimize(
            loss, x0, args=(z,), method="Nelder-Mead", options={"xatol": 1e-3, "fatol": 1e-7, "maxiter": 400}
        )
        if best is None or res.fun < best[0]:
            best = (res.fun, r, res.x)
    _, r, x = best
    p, share = model(_Sample(r, seed).z, x)
    denom = p["clicks"] if s.kind == "search" else p["shown"]
    share_fit = np.full(len(bids), np.nan)
    share_obs = np.full(len(bids), np.nan)
    if share is not None:
        for i in range(len(bids)):
            on = d_level == i
            if on.any():
                share_fit[i] = share[on].mean()
                share_obs[i] = d_share[on].mean()
    out = levels.with_columns(
        pl.Series("price_observed", price_obs),
        pl.Series("price_fitted", p["cost"] / np.maximum(denom, 1e-12) * per_unit),
        pl.Series("share_observed", share_obs).fill_nan(None),
        pl.Series("share_fitted", share_fit).fill_nan(None),
        pl.Series("share_unthrottled", p["shown"]),
        pl.Series("clicks_per_shown", p["clicks"] / np.maximum(p["shown"], 1e-12)),
    )
    return RivalFit(r, float(x[0]), float(np.exp(x[1])), hm, float(best[0]), out, flags)


def win_probability(s: AuctionStructure, fit: RivalFit, bids: np.ndarray, hour_w: np.ndarray) -> dict[str, np.ndarray]:
    """The fitted model's shown share, relative clicks and cost per opportunity at `bids` [L]."""
    return predict(
        s, _Sample(fit.n_rivals).z, fit.log_median, fit.sigma, np.asarray(bids, float), fit.hour_mult, hour_w
    )
