"""When traffic and conversions happen: hour-of-day and day-of-week profiles with intervals."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from rl.discovery.marts import LEVEL, Z90, Calendar, _campaign_index, _campaign_list, _scopes, _with_key
from rl.discovery.schema import (
    DAY_NAMES,
    HOURS,
    DayOfWeek,
    DayOfWeekProfile,
    HourOfDay,
    HourProfile,
)

# -------------------------------------------------------------------------------------------------- hour of day

HOUR_METHOD = (
    "Shares per hour of day over the window (fct_campaign_hourly). clicks and conversions are the ad platforms' "
    "(conversions by click hour) and sessions GA4's (by start hour): totals per hour / window total. auctions "
    "(search campaigns only) is demand before competition and budget stops shape clicks: the auctions a campaign "
    "was eligible for, impressions / search impression share, averaged per hour over the days on which that hour "
    "reported a share (an hour after the budget ran out is unobserved, not zero), then summed over the scope's "
    "campaigns; a share floored at 10% makes its hour a lower bound. Uncertainty: {B} bootstrap resamples of whole "
    "days (the same resamples for every profile): 5%–95% quantiles of each hour's share and the distribution of the "
    "peak hour."
)
HOUR_METRICS = ("clicks", "conversions", "sessions", "auctions")


@dataclass(frozen=True)
class HourCubes:
    """[campaign, day, hour] arrays of the hourly mart; `observed` marks cells with a reported impression share."""

    values: dict[str, np.ndarray]
    observed: np.ndarray
    has_auctions: np.ndarray  # [campaign] bool: the campaign reports an impression share (search)


def hour_cubes(hourly: pl.DataFrame, keys: list[str], cal: Calendar) -> HourCubes:
    h = _with_key(hourly).filter(pl.col("campaign").is_in(keys))
    seen = (pl.col("impression_share") > 0).fill_null(False)
    h = h.with_columns(
        pl.when(seen).then(pl.col("impressions") / pl.col("impression_share")).otherwise(0.0).alias("auctions"),
        seen.cast(pl.Float64).alias("_observed"),
    )
    ci = _campaign_index(h, keys)
    flat = (ci * cal.days + cal.index(h)) * HOURS + h["hour"].to_numpy().astype(np.int64)
    shape = (len(keys), cal.days, HOURS)

    def cube(col: str) -> np.ndarray:
        w = h[col].fill_null(0.0).to_numpy().astype(float)
        return np.bincount(flat, weights=w, minlength=int(np.prod(shape))).reshape(shape)

    observed = cube("_observed") > 0
    return HourCubes(
        values={m: cube(m) for m in HOUR_METRICS},
        observed=observed,
        has_auctions=observed.any(axis=(1, 2)),
    )


def _per_hour(values: np.ndarray, observed: np.ndarray | None, weights: np.ndarray | None) -> np.ndarray:
    """Per-hour volume of [campaign, day, hour] arrays: sums over days, or (with `observed`) per-campaign means over
    the observed days summed over campaigns. `weights` [B, day] resamples the days; the result is [B, 24] then."""
    if weights is None:
        weights = np.ones((1, values.shape[1]))
        squeeze = True
    else:
        squeeze = False
    if observed is None:
        out = weights @ values.sum(axis=0)
    else:
        out = np.zeros((weights.shape[0], HOURS))
        for c in range(values.shape[0]):
            sums, counts = weights @ values[c], weights @ observed[c].astype(float)
            out += np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    return out[0] if squeeze else out


def hour_profile(
    scope: str,
    key: str,
    metric: str,
    values: np.ndarray,
    resample: np.ndarray | None = None,
    observed: np.ndarray | None = None,
) -> HourProfile | None:
    """The hour profile of [campaign, day, hour] `values` (a [day, hour] matrix is one campaign). `resample` is a
    [B, day] matrix of bootstrap day counts; `observed` (same shape as values) switches to means over observed
    days (see HOUR_METHOD)."""
    if values.ndim == 2:
        values = values[None]
        observed = None if observed is None else observed[None]
    by_hour = _per_hour(values, observed, None)
    total = float(by_hour.sum())
    if total <= 0:
        return None
    shares = by_hour / total
    peak = int(np.argmax(shares))
    if resample is not None and resample.shape[0] > 0:
        boot = _per_hour(values, observed, resample)  # [B, 24]
        sums = boot.sum(axis=1, keepdims=True)
        boot_shares = np.divide(boot, sums, out=np.zeros_like(boot), where=sums > 0)
        lo, hi = np.quantile(boot_shares, [(1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=0)
        counts = np.bincount(boot.argmax(axis=1), minlength=HOURS)
        order = sorted(range(HOURS), key=lambda h: (-counts[h], h))
        chosen, covered = [], 0
        for h in order:
            chosen.append(h)
            covered += counts[h]
            if covered >= LEVEL * boot.shape[0]:
                break
        prob = float(counts[peak] / boot.shape[0])
    else:
        lo = hi = shares
        chosen, prob = [peak], 1.0
    return HourProfile(
        scope=scope,
        key=key,
        metric=metric,
        total=float(values.sum()),
        shares=[float(v) for v in shares],
        shares_lo=[float(min(v, s)) for v, s in zip(lo, shares, strict=True)],
        shares_hi=[float(max(v, s)) for v, s in zip(hi, shares, strict=True)],
        peak_hour=peak,
        peak_probability=prob,
        peak_hours_90=[int(h) for h in chosen],
        top_hours=[int(h) for h in np.argsort(-shares, kind="stable")[:3]],
    )


def hour_of_day_section(
    hourly: pl.DataFrame, campaigns: pl.DataFrame, cal: Calendar, *, n_bootstrap: int = 400, seed: int = 0
) -> HourOfDay:
    keys = _campaign_list(campaigns)
    cubes = hour_cubes(hourly, keys, cal)
    rng = np.random.default_rng(seed)
    resample = (
        rng.multinomial(cal.days, np.full(cal.days, 1.0 / cal.days), size=n_bootstrap).astype(float)
        if n_bootstrap > 0
        else None
    )
    profiles = []
    for scope, key, idx in _scopes(campaigns):
        for metric in HOUR_METRICS:
            observed = None
            if metric == "auctions":
                if not cubes.has_auctions[idx].all():
                    continue
                observed = cubes.observed[idx]
            p = hour_profile(scope, key, metric, cubes.values[metric][idx], resample, observed)
            if p is not None:
                profiles.append(p)
    return HourOfDay(method=HOUR_METHOD.format(B=n_bootstrap), n_bootstrap=n_bootstrap, profiles=profiles)


def daily_auctions(cubes: HourCubes) -> np.ndarray:
    """[campaign, day] eligible auctions with the hours a day did not observe filled in from the campaign's hour
    profile: a day's total = its observed auctions / the profile share of the hours it observed."""
    values, observed = cubes.values["auctions"], cubes.observed
    out = np.zeros(values.shape[:2])
    for c in range(values.shape[0]):
        counts = observed[c].sum(axis=0)
        per_hour = np.divide(values[c].sum(axis=0), counts, out=np.zeros(HOURS), where=counts > 0)
        if per_hour.sum() <= 0:
            continue
        profile = per_hour / per_hour.sum()
        covered = observed[c].astype(float) @ profile  # [day] part of a typical day's auctions that was observed
        out[c] = np.divide(values[c].sum(axis=1), covered, out=np.zeros(values.shape[1]), where=covered > 0.05)
    return out


# -------------------------------------------------------------------------------------------------- day of week

DOW_METHOD = (
    "Ratio to a centred 7-day moving average of the daily totals (fct_campaign_daily; days without a row are 0), "
    "which removes trend and seasonality; each weekday's index is the mean ratio on that weekday, rescaled so the "
    "seven average 1.0. Interval: index ± 1.645 standard errors of that mean (normal approximation). key_events are "
    "GA4's, by conversion date. auctions (search campaigns only) are eligible auctions per day from "
    "fct_campaign_hourly: the day's observed impressions / impression share, divided by the part of the campaign's "
    "hour profile its observed hours cover (hours after a budget stop are filled in, not zero); days covering less "
    "than 5% of the profile are left out."
)
DOW_METRICS = ("clicks", "conversions", "sessions", "key_events", "auctions")


def weekday_index(series: np.ndarray, weekday: np.ndarray, valid: np.ndarray | None = None):
    """(index, standard error) per weekday from a daily series, or None when it is too short or empty. `valid`
    marks the days that were measured; a ratio needs its day and its whole 7-day window measured."""
    n = len(series)
    if n < 14 or series.sum() <= 0:
        return None
    valid = np.ones(n, dtype=bool) if valid is None else valid
    ma = np.convolve(series, np.ones(7) / 7.0, mode="valid")  # centred at t = 3 … n − 4
    full = np.convolve(valid.astype(float), np.ones(7), mode="valid") == 7
    centre, wd = series[3 : n - 3], weekday[3 : n - 3]
    ok = (ma > 0) & full
    ratio, wd = centre[ok] / ma[ok], wd[ok]
    means, ses = np.zeros(7), np.zeros(7)
    for d in range(7):
        r = ratio[wd == d]
        if len(r) == 0:
            return None
        means[d] = r.mean()
        ses[d] = r.std(ddof=1) / np.sqrt(len(r)) if len(r) > 1 else 0.0
    scale = means.mean()
    if scale <= 0:
        return None
    return means / scale, ses / scale


def day_of_week_section(
    daily: pl.DataFrame, campaigns: pl.DataFrame, cal: Calendar, hourly: pl.DataFrame | None = None
) -> DayOfWeek:
    """Weekday profiles per scope; auctions need `hourly` (fct_campaign_hourly) and are skipped without it."""
    keys = _campaign_list(campaigns)
    d = _with_key(daily).filter(pl.col("campaign").is_in(keys))
    ci = _campaign_index(d, keys)
    flat = ci * cal.days + cal.index(d)
    series = {
        m: np.bincount(
            flat, weights=d[m].fill_null(0.0).to_numpy().astype(float), minlength=len(keys) * cal.days
        ).reshape(len(keys), cal.days)
        for m in DOW_METRICS
        if m != "auctions"
    }
    valid = {m: np.ones((len(keys), cal.days), dtype=bool) for m in series}
    has_auctions = np.zeros(len(keys), dtype=bool)
    if hourly is not None:
        cubes = hour_cubes(hourly, keys, cal)
        series["auctions"] = daily_auctions(cubes)
        valid["auctions"] = series["auctions"] > 0
        has_auctions = cubes.has_auctions
    weekday = cal.weekday()
    profiles = []
    for scope, key, idx in _scopes(campaigns):
        for m in DOW_METRICS:
            if m not in series or (m == "auctions" and not has_auctions[idx].all()):
                continue
            y = series[m][idx].sum(axis=0)
            res = weekday_index(y, weekday, valid[m][idx].all(axis=0))
            if res is None:
                continue
            index, se = res
            profiles.append(
                DayOfWeekProfile(
                    scope=scope,
                    key=key,
                    metric=m,
                    total=float(y.sum()),
                    index=[float(v) for v in index],
                    index_lo=[float(v) for v in np.maximum(index - Z90 * se, 0.0)],
                    index_hi=[float(v) for v in index + Z90 * se],
                    peak_day=DAY_NAMES[int(np.argmax(index))],
                    trough_day=DAY_NAMES[int(np.argmin(index))],
                )
            )
    return DayOfWeek(method=DOW_METHOD, profiles=profiles)
