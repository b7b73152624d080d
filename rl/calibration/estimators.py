"""The estimators calibration is made of, each on plain frames and arrays (`rl.calibration.fit` composes them;
its docstring says which parameter each one gives)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from scipy.optimize import nnls
from scipy.stats import norm

from rl.calibration import priors
from rl.calibration.data import CalibrationData
from rl.market.engine import LAG_SKEW
from rl.market.params import HOURS

DECAY_GRID = (0.5, 0.6, 0.7, 0.8, 0.9)
FATIGUE_GRID = np.concatenate([[0.0], np.geomspace(1e-4, 0.2, 40)])


def hour_weights(hourly: pl.DataFrame, kind: str) -> np.ndarray:
    """Share of a day's opportunities by hour (search: impressions / hourly share; social: impressions)."""
    h = hourly.filter(pl.col("impressions") > 0)
    if kind == "search":
        h = h.filter(pl.col("impression_share") > 0.1).with_columns(
            (pl.col("impressions") / pl.col("impression_share")).alias("opps")
        )
    else:
        h = h.with_columns(pl.col("impressions").cast(pl.Float64).alias("opps"))
    by = h.group_by("hour").agg(pl.col("opps").sum())
    w = np.full(HOURS, 1e-6)
    w[by["hour"].to_numpy()] += by["opps"].to_numpy()
    return w / w.sum()


def lag_weights(lag: pl.DataFrame) -> dict[tuple[int, int], float]:
    """Non-negative least-squares mix of the basis lag segments matching the campaign's lag-bucket shares."""
    lag = lag.filter(pl.col("lag_days_min") < 30).sort("lag_days_min")
    total = lag["conversions"].sum()
    if total <= 0:
        raise ValueError("no mature conversions")
    shares = lag["conversions"].to_numpy() / total
    lo, hi = lag["lag_days_min"].to_numpy(), lag["lag_days_max"].to_numpy()
    cols = []
    for a, b in priors.LAG_BASIS:
        span = b - a + 1
        k = np.arange(span)
        p = ((k + 1) / span) ** (1 / LAG_SKEW) - (k / span) ** (1 / LAG_SKEW)  # P(lag = a + k) under the engine's law
        days = a + k
        cols.append([p[(days >= x) & (days < y)].sum() for x, y in zip(lo, hi, strict=True)])
    w, _ = nnls(np.array(cols).T, shares)
    w = w / w.sum()
    return {basis: float(v) for basis, v in zip(priors.LAG_BASIS, w, strict=True) if v > 0.005}


def exposure(impressions: np.ndarray, decay: float) -> np.ndarray:
    """Exposure stock (thousands of impressions) at the start of each day, from the days before it."""
    out = np.zeros(len(impressions))
    for i in range(1, len(impressions)):
        out[i] = decay * out[i - 1] + impressions[i - 1] / 1000.0
    return out


def fatigue_fit(impr: np.ndarray, clicks: np.ndarray, norm: np.ndarray, decay: float) -> tuple[float, float, float]:
    """(k, f, loss) of clicks ≈ impressions × norm × k / (1 + f × exposure), from day 14 on (exposure warm-up)."""
    e = exposure(impr, decay)[14:]
    x, y = (impr * norm)[14:], clicks[14:]
    best = (0.0, 0.0, math.inf)
    for f in FATIGUE_GRID:
        g = x / (1.0 + f * e)
        k = y.sum() / max(g.sum(), 1e-12)
        loss = float((((y - k * g) ** 2) / np.maximum(k * g, 1.0)).sum())  # Poisson-scaled squared error
        if loss < best[2]:
            best = (k, float(f), loss)
    return best


def campaign_days(data: CalibrationData, cid: int) -> pl.DataFrame:
    """Every day of the window for the campaign (days without a row: zero delivery, settings carried forward)."""
    days = pl.DataFrame({"date": pl.date_range(data.first, data.last, eager=True)})
    d = days.join(data.daily.filter(pl.col("campaign_id") == cid), on="date", how="left")
    d = d.with_columns(pl.col("daily_budget", "bid").forward_fill().backward_fill())
    return d.with_columns(
        pl.col("spend", "impressions", "clicks", "conversions", "conversion_value", "sessions").fill_null(0)
    )


def volume_fit(rows: pl.DataFrame, data: CalibrationData) -> tuple[dict, list[str]]:
    """Least squares of log opportunities on campaign level, platform weekday, trend and annual cosine."""
    flags = []
    rows = rows.filter(pl.col("opps") > 0)
    cids = sorted(rows["campaign_id"].unique().to_list())
    plats = sorted(rows["platform"].unique().to_list())
    t = np.array([(d - data.first).days / 365.25 for d in rows["date"]])
    doy = np.array([d.timetuple().tm_yday for d in rows["date"]], dtype=float)
    dow = np.array([d.weekday() for d in rows["date"]])
    cols, names = [], []
    for c in cids:
        cols.append((rows["campaign_id"] == c).to_numpy().astype(float))
        names.append(("c", c))
    for p in plats:
        on_p = (rows["platform"] == p).to_numpy()
        for k in range(1, 7):
            cols.append((on_p & (dow == k)).astype(float))
            names.append(("dow", p, k))
    use_trend = data.n_days >= 120
    use_season = data.n_days >= 300
    if use_trend:
        cols.append(t)
        names.append(("trend",))
    else:
        flags.append(f"trend: {data.n_days} days < 120, set to 0 (prior)")
    if use_season:
        cols.append(np.cos(2 * np.pi * doy / 365.25))
        cols.append(np.sin(2 * np.pi * doy / 365.25))
        names += [("cos",), ("sin",)]
    else:
        flags.append(f"season: {data.n_days} days < 300, set to 0 (prior)")
    x = np.column_stack(cols)
    y = np.log(rows["opps"].to_numpy())
    # Censored days (volume only known to exceed the value) enter as their expectation beyond the bound under the
    # normal residual model, re-estimated until it settles (a Tobit fit by expectation-maximisation). Dropping
    # them instead would keep the low-volume days only: busy days are the ones where the budget binds.
    cens = rows["censored"].to_numpy()
    y_work = y.copy()
    for _ in range(30 if cens.any() else 1):
        coef, *_ = np.linalg.lstsq(x, y_work, rcond=None)
        mu = x @ coef
        sd = max(float((y - mu)[~cens].std()), 1e-3) if (~cens).any() else 0.2
        alpha = (y[cens] - mu[cens]) / sd
        y_work[cens] = mu[cens] + sd * norm.pdf(alpha) / np.maximum(norm.sf(alpha), 1e-12)
    resid = (y - x @ coef)[~cens]
    est = dict(zip(names, coef, strict=True))
    out = {"trend": 0.0, "amplitude": 0.0, "peak": 1, "dow": {}, "level": {}, "resid_sd": float(resid.std())}
    if use_trend:
        out["trend"] = float(np.expm1(est[("trend",)]))
    if use_season:
        a, b = est[("cos",)], est[("sin",)]
        out["amplitude"] = float(min(np.hypot(a, b), 0.9))
        out["peak"] = int(round((np.arctan2(b, a) % (2 * np.pi)) * 365.25 / (2 * np.pi))) % 366 or 1
    for p in plats:
        e = np.array([0.0] + [est[("dow", p, k)] for k in range(1, 7)])
        f = np.exp(e)
        out["dow"][p] = (f / f.mean()).tolist()
        out.setdefault("dow_mean", {})[p] = float(f.mean())
    for c in cids:
        p = rows.filter(pl.col("campaign_id") == c)["platform"][0]
        out["level"][c] = float(np.exp(est[("c", c)]) * out["dow_mean"][p])
    fitted = np.exp(x @ coef)
    out["frame"] = rows.select("date", "campaign_id", "opps", "censored").with_columns(pl.Series("opps_fitted", fitted))
    return out, flags
