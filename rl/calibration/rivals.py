"""Fitting a campaign's rivals (`fit_rivals`): the (R, median, sigma) of the auction model in `rl.calibration.auction`
whose impression share and average price at every bid level the campaign used match what the platform reported, with
a first guess of the rivals' relative bid by hour from the hourly prices (`hour_multipliers`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.optimize import minimize

from rl.calibration.auction import (
    HOURS,
    N_DEVICES,
    AuctionStructure,
    Levels,
    RivalFit,
    aggregate,
    cell_outcomes,
)

RIVAL_GRID_SEARCH = (2, 3, 4, 5, 6, 8)  # the numbers of rivals tried on search (R is fitted on this grid)
RIVAL_GRID_SOCIAL = (1, 2)


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
