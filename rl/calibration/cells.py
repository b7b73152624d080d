"""Device and hour effects of one campaign's market: the rivals' pressure per hour and per device, and what that
does to click-through, fitted from the hourly and device marts with their standard errors.

Rival pressure. With the campaign's rivals fitted on whole days (`rl.calibration.rivals.fit_rivals`: R, median,
sigma), each hour h and each device d has a multiplier r of the rivals' bids. It is read from two reports of that
cell, on every day, at the effective bid of the day's level (base bid × the modifiers in force):
  * the average price (CPC search, CPM social): the model's price is r × G(effective bid / r) — the highest rival
    below our bid, which rises with r, if less than in proportion (our bid caps it);
  * search impression share: the model's is the day's throttle θ × P(shown | effective bid / r). The throttle (the
    platform's pacing, the same in every cell of a day) is the day's reported share over the model's unthrottled
    one, so the cell's share says how hard it is to win there relative to the whole day.
Each cell is one bounded 1-D least-squares fit of log r (price residuals weighted by the units behind them, share
residuals unweighted, each kind scaled by its own residual variance, estimated over the campaign's cells in a first
pass; a sparse cell's share is not used, see `_cells`); hours are fitted with the device multipliers held, devices
with the hour multipliers held, twice over. The multipliers are then normalised to a volume-weighted geometric mean
of 1 (the level stays in the median). The standard error of log r is the Gauss-Newton one:
1 / sqrt(Σ (d standardised residual / d log r)²). A cell with too little data (fewer than `MIN_UNITS` clicks,
search, or 10 × as many impressions, social) keeps its first guess (1 for devices) and is flagged.

Click-through by device (`device_ctr_ratios`): observed clicks over the clicks the model expects from the
impressions at each day's position (relative CTR per impression in that device at the day's level), so what is
left is the device's own click propensity. Conversion rate by device (`device_conversions`): conversions by click
date on mature days per click. Both are pooled over campaigns by `rl.calibration.fit`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy.optimize import minimize_scalar

from rl.calibration.auction import AuctionStructure, Levels, RivalFit, expected
from rl.market.modifiers import block_labels, block_of_hour, cell_multipliers
from rl.market.params import DEVICES, HOURS

MIN_UNITS = 30.0
MIN_DENSITY = 10.0  # impressions per hour of a cell, on average, before its impression share is used
LOG_R_BOUNDS = (math.log(0.25), math.log(4.0))
SHARE_FLOOR = 0.1  # shares below are reported as 0.0999: censored, not used
EPS = 1e-3


@dataclass
class CellFit:
    """Rivals' hour [24] and device [3] multipliers with standard errors of their logs, and flags."""

    hour_mult: np.ndarray
    device_mult: np.ndarray
    hour_se: np.ndarray
    device_se: np.ndarray
    flags: list[str] = field(default_factory=list)

    def block_se(self, hour_w: np.ndarray, n_blocks: int) -> np.ndarray:
        """[B] standard error of the log rival multiplier of each hour block (volume-weighted mean of its hours)."""
        block = block_of_hour(n_blocks)
        out = np.zeros(n_blocks)
        for b in range(n_blocks):
            w = hour_w[block == b] / hour_w[block == b].sum()
            out[b] = float(np.sqrt((w**2 * self.hour_se[block == b] ** 2).sum()))
        return out


@dataclass
class _Cell:
    """One cell's reports: the average price per level (spend and units summed over the level's days first — the
    log of a day's average over a handful of clicks would be biased low) and, per day with a usable reported
    share, the share and the day's throttle."""

    price_level: np.ndarray
    units: np.ndarray
    price: np.ndarray
    share_level: np.ndarray
    share: np.ndarray
    theta: np.ndarray

    @property
    def levels(self) -> np.ndarray:
        return np.union1d(self.price_level, self.share_level)


def _index(frame: pl.DataFrame, first: dt.date) -> np.ndarray:
    return np.array([(d - first).days for d in frame["date"].to_list()], dtype=np.int64)


def _cells(
    s: AuctionStructure, rows: pl.DataFrame, key: str, n_keys: int, lv: Levels, theta: np.ndarray, first: dt.date
) -> list[_Cell]:
    unit = "clicks" if s.kind == "search" else "impressions"
    per_unit = 1.0 if s.kind == "search" else 1000.0
    # A cell's share is used only where it is dense: the platforms report no row for an hour without impressions,
    # so a sparse cell's eligible impressions (impressions / share, summed over its reported hours) miss the hours
    # it was eligible for but never shown, and its share reads too high. Price is unaffected.
    hours_per_row = 1 if key == "hour" else HOURS
    impressions = rows.group_by(key).agg(pl.col("impressions").sum())
    density = {k: n / (len(lv.day_level) * hours_per_row) for k, n in impressions.iter_rows()}
    rows = rows.filter(pl.col(unit) > 0)
    t = _index(rows, first)
    level = lv.day_level[t]
    units = rows[unit].to_numpy().astype(float)
    price = rows["spend"].to_numpy().astype(float) / units * per_unit
    share = rows["impression_share"].cast(pl.Float64).fill_null(np.nan).to_numpy() if s.kind == "search" else None
    if share is None:
        share = np.full(len(t), np.nan)
    share = np.where(share > SHARE_FLOOR, share, np.nan)
    spend = rows["spend"].to_numpy().astype(float)
    keys = rows[key].to_numpy()
    out = []
    for k in range(n_keys):
        on = (keys == k) & (level >= 0) & (price > 0)
        lv_on = level[on]
        used = np.unique(lv_on)
        pos = np.searchsorted(used, lv_on)
        u = np.bincount(pos, weights=units[on], minlength=len(used))
        cost = np.bincount(pos, weights=spend[on], minlength=len(used))
        usable = on & np.isfinite(share) & np.isfinite(theta[t]) & (density.get(k, 0.0) >= MIN_DENSITY)
        out.append(
            _Cell(used, u, cost / np.maximum(u, 1e-12) * per_unit, level[usable], share[usable], theta[t[usable]])
        )
    return out


class _Model:
    """The campaign's fitted rivals, evaluated per level for one cell at a trial multiplier."""

    def __init__(self, s: AuctionStructure, rivals: RivalFit, lv: Levels):
        self.s, self.rivals, self.lv = s, rivals, lv
        self.per_unit = 1.0 if s.kind == "search" else 1000.0

    def outcomes(self, levels: np.ndarray, own: np.ndarray, rival: np.ndarray, weights: np.ndarray) -> tuple:
        """(shown, price) per level for own multipliers [L, n] against rival multipliers [n] mixed with weights."""
        x = self.lv.bids[levels][:, None] * own / rival[None, :]
        e = expected(self.s, self.rivals.n_rivals, self.rivals.log_median, self.rivals.sigma, x, self.s.reserve / rival)
        shown = (e["shown"] * weights).sum(axis=1)
        cost = (e["cost"] * rival[None, :] * weights).sum(axis=1)
        denom = (e["clicks"] if self.s.kind == "search" else e["shown"]) * weights
        price = cost / np.maximum(denom.sum(axis=1), 1e-12) * self.per_unit
        return shown, price


@dataclass(frozen=True)
class _Spec:
    """Which cell is fitted: an hour (mixing devices) or a device (mixing hours), with the other dimension's rival
    multipliers held and its volume weights."""

    kind: str  # "hour" or "device"
    key: int
    held: np.ndarray
    weights: np.ndarray

    def own(self, lv: Levels, levels: np.ndarray) -> np.ndarray:
        return lv.own[levels][:, self.key, :] if self.kind == "hour" else lv.own[levels][:, :, self.key]


def _residuals(cell: _Cell, model: _Model, spec: _Spec, log_r: float, scale: tuple) -> np.ndarray:
    levels = cell.levels
    shown, price = model.outcomes(levels, spec.own(model.lv, levels), math.exp(log_r) * spec.held, spec.weights)
    at_p, at_s = np.searchsorted(levels, cell.price_level), np.searchsorted(levels, cell.share_level)
    res_p = np.sqrt(cell.units) * (np.log(cell.price) - np.log(np.maximum(price[at_p], 1e-9))) / scale[0]
    res_s = (cell.share - cell.theta * shown[at_s]) / scale[1]
    return np.concatenate([res_p, res_s])


def _fit_cell(cell: _Cell, model: _Model, spec: _Spec, scale: tuple) -> tuple[float, float]:
    """(log r, its standard error) for one cell."""

    def loss(log_r: float) -> float:
        return float((_residuals(cell, model, spec, log_r, scale) ** 2).sum())

    res = minimize_scalar(loss, bounds=LOG_R_BOUNDS, method="bounded", options={"xatol": 1e-4})
    up = _residuals(cell, model, spec, res.x + EPS, scale)
    down = _residuals(cell, model, spec, res.x - EPS, scale)
    info = float((((up - down) / (2 * EPS)) ** 2).sum())
    return float(res.x), 1.0 / math.sqrt(info) if info > 0 else math.inf


def daily_throttle(
    s: AuctionStructure, rivals: RivalFit, lv: Levels, days: pl.DataFrame, hour_w: np.ndarray, dev_w: np.ndarray
) -> np.ndarray:
    """[T] each day's pacing throttle: the reported day share over the model's unthrottled share at the day's level
    (NaN where the share is not reported above 10%)."""
    share = days["impression_share"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    theta = np.full(days.height, np.nan)
    if s.kind != "search":
        return theta
    rival = rivals.hour_mult[:, None] * rivals.device_mult[None, :]
    known = lv.day_level >= 0
    levels = np.unique(lv.day_level[known])
    if len(levels) == 0:
        return theta
    x = lv.bids[levels][:, None, None] * lv.own[levels] / rival
    e = expected(s, rivals.n_rivals, rivals.log_median, rivals.sigma, x, s.reserve / rival)
    w = hour_w[:, None] * dev_w[None, :]
    unthrottled = (e["shown"] * w / w.sum()).sum(axis=(1, 2))
    pos = np.searchsorted(levels, lv.day_level[known])
    value = share[known] / np.maximum(unthrottled[pos], 1e-9)
    theta[known] = np.where(share[known] > SHARE_FLOOR, np.clip(value, 0.02, 1.0), np.nan)
    return theta


def fit_cells(
    s: AuctionStructure,
    rivals: RivalFit,
    lv: Levels,
    days: pl.DataFrame,
    hourly: pl.DataFrame,
    devices: pl.DataFrame,
    hour_w: np.ndarray,
    dev_w: np.ndarray,
) -> CellFit:
    """The rivals' hour and device multipliers of one campaign (module docstring). `days`: the campaign's window,
    one row per day in date order (impression_share); `hourly` (date, hour, …) and `devices` (date, device, …) its
    rows with impressions, clicks, spend and impression_share; `hour_w` [24], `dev_w` [3] the volume shares."""
    first = days["date"][0]
    hour_w = np.asarray(hour_w, dtype=float) / np.sum(hour_w)
    dev_w = np.asarray(dev_w, dtype=float) / np.sum(dev_w)
    devices = devices.with_columns(
        pl.col("device").replace_strict(dict(zip(DEVICES, range(3), strict=True)), default=-1)
    )
    model = _Model(s, rivals, lv)
    hm, dm = rivals.hour_mult.copy(), rivals.device_mult.copy()
    hour_se, dev_se = np.full(HOURS, math.inf), np.full(len(DEVICES), math.inf)
    flags: list[str] = []
    scale = (1.0, 0.05)
    for round_ in range(2):
        current = dataclasses.replace(rivals, hour_mult=hm, device_mult=dm)
        theta = daily_throttle(s, current, lv, days, hour_w, dev_w)
        by_hour = _cells(s, hourly, "hour", HOURS, lv, theta, first)
        by_device = _cells(s, devices, "device", len(DEVICES), lv, theta, first)
        fitted = []
        for h, cell in enumerate(by_hour):
            if cell.units.sum() >= _min_units(s):
                spec = _Spec("hour", h, dm.copy(), dev_w[None, :])
                log_r, hour_se[h] = _fit_cell(cell, model, spec, scale)
                hm[h] = math.exp(log_r)
                fitted.append((cell, spec, log_r))
        for d, cell in enumerate(by_device):
            if cell.units.sum() >= _min_units(s):
                spec = _Spec("device", d, hm.copy(), hour_w[None, :])
                log_r, dev_se[d] = _fit_cell(cell, model, spec, scale)
                dm[d] = math.exp(log_r)
                fitted.append((cell, spec, log_r))
        hm, dm = _normalised(hm, hour_w), _normalised(dm, dev_w)
        if round_ == 0:
            scale = _scales(fitted, model, scale)
    thin_h = [h for h in range(HOURS) if not math.isfinite(hour_se[h])]
    thin_d = [DEVICES[d] for d in range(len(DEVICES)) if not math.isfinite(dev_se[d])]
    if thin_h:
        flags.append(f"rivals' hour multiplier: too little data in hours {thin_h}, kept at the first guess")
    if thin_d:
        flags.append(f"rivals' device multiplier: too little data on {thin_d}, kept at 1")
    return CellFit(hm, dm, hour_se, dev_se, flags)


def _min_units(s: AuctionStructure) -> float:
    return MIN_UNITS if s.kind == "search" else MIN_UNITS * 10


def _normalised(mult: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return mult / math.exp(float((weights * np.log(mult)).sum()))


def _scales(fitted: list, model: _Model, scale: tuple) -> tuple[float, float]:
    """The standard deviation of each kind of residual (price, share) over the campaign's fitted cells."""
    price, share = [], []
    for cell, spec, log_r in fitted:
        res = _residuals(cell, model, spec, log_r, (1.0, 1.0))
        n_p = len(cell.price_level)
        price.append(res[:n_p])
        share.append(res[n_p:])
    p, q = np.concatenate(price) if price else np.zeros(0), np.concatenate(share) if share else np.zeros(0)
    return (
        float(np.sqrt(np.mean(p**2))) if len(p) > 10 else scale[0],
        float(np.sqrt(np.mean(q**2))) if len(q) > 10 else scale[1],
    )


def ctr_elasticity(
    s: AuctionStructure, rivals: RivalFit, lv: Levels, kind: str, index: int, hour_w: np.ndarray, dev_w: np.ndarray
) -> float:
    """How much a cell's click-through per impression moves with its rivals' log multiplier (d log CTR / d log r,
    through position), at the levels the campaign ran, weighted by their days: what turns the standard error of a
    rival multiplier into that of the click-through effect it implies."""
    known = lv.day_level[lv.day_level >= 0]
    if len(known) == 0:
        return 0.0
    levels, days = np.unique(known, return_counts=True)
    held = rivals.device_mult if kind == "hour" else rivals.hour_mult
    weights = (dev_w if kind == "hour" else hour_w)[None, :]
    spec = _Spec(kind, index, held, weights / weights.sum())
    base = rivals.hour_mult[index] if kind == "hour" else rivals.device_mult[index]

    def log_cps(factor: float) -> np.ndarray:
        x = lv.bids[levels][:, None] * spec.own(lv, levels) / (base * factor * held[None, :])
        rival = base * factor * held
        e = expected(s, rivals.n_rivals, rivals.log_median, rivals.sigma, x, s.reserve / rival[None, :])
        return np.log(
            np.maximum((e["clicks"] * spec.weights).sum(1), 1e-12)
            / np.maximum((e["shown"] * spec.weights).sum(1), 1e-12)
        )

    slope = (log_cps(math.exp(EPS)) - log_cps(math.exp(-EPS))) / (2 * EPS)
    return float(abs((slope * days).sum() / days.sum()))


def device_ctr_ratios(
    s: AuctionStructure, rivals: RivalFit, lv: Levels, devices: pl.DataFrame, first: dt.date, hour_w: np.ndarray
) -> pl.DataFrame:
    """Per device: clicks, and the clicks expected from its impressions at the model's relative click-through per
    impression (position) of each day's level in that device — their ratio is the device's click propensity up to
    the campaign's level. Columns: device, clicks, expected."""
    hour_w = np.asarray(hour_w, dtype=float) / np.sum(hour_w)
    rows = devices.filter((pl.col("impressions") > 0) & pl.col("device").is_in(list(DEVICES)))
    t = _index(rows, first)
    level = lv.day_level[t]
    keep = level >= 0
    rows, level = rows.filter(pl.Series(keep)), level[keep]
    out = []
    for d, name in enumerate(DEVICES):
        on = (rows["device"] == name).to_numpy()
        if not on.any():
            out.append((name, 0.0, 0.0))
            continue
        levels = np.unique(level[on])
        rival = rivals.hour_mult * rivals.device_mult[d]
        x = lv.bids[levels][:, None] * lv.own[levels][:, :, d] / rival[None, :]
        e = expected(s, rivals.n_rivals, rivals.log_median, rivals.sigma, x, s.reserve / rival)
        cps = (e["clicks"] * hour_w).sum(axis=1) / np.maximum((e["shown"] * hour_w).sum(axis=1), 1e-12)
        pos = np.searchsorted(levels, level[on])
        impressions = rows["impressions"].to_numpy().astype(float)[on]
        out.append((name, float(rows["clicks"].to_numpy()[on].sum()), float((impressions * cps[pos]).sum())))
    return pl.DataFrame(out, schema={"device": pl.Utf8, "clicks": pl.Float64, "expected": pl.Float64}, orient="row")


def device_conversions(devices: pl.DataFrame, mature_end: dt.date) -> pl.DataFrame:
    """Per device: clicks and conversions (by click date) of the mature click dates. Columns: device, clicks,
    conversions."""
    rows = devices.filter((pl.col("date") <= mature_end) & pl.col("device").is_in(list(DEVICES)))
    return rows.group_by("device").agg(pl.col("clicks").sum().cast(pl.Float64), pl.col("conversions").sum())


def block_effects(hourly: pl.DataFrame, mature_end: dt.date, n_blocks: int) -> dict[str, dict[str, float]]:
    """Observed click-through and conversions per click of each hour block relative to the whole day, with their
    relative standard errors: {label: {"ctr", "ctr_se", "cvr", "cvr_se"}}."""
    block_of_hour(n_blocks)  # refuses a number of blocks that does not divide the day
    rows = hourly.with_columns((pl.col("hour").cast(pl.Int64) // (HOURS // n_blocks)).alias("b"))
    ctr = rows.group_by("b").agg(pl.col("impressions").sum(), pl.col("clicks").sum())
    mature = (
        rows.filter(pl.col("date") <= mature_end).group_by("b").agg(pl.col("clicks").sum(), pl.col("conversions").sum())
    )
    total_ctr = ctr["clicks"].sum() / max(ctr["impressions"].sum(), 1)
    total_cvr = mature["conversions"].sum() / max(mature["clicks"].sum(), 1)
    out = {}
    labels = ["h" + label.replace("-", "_") for label in block_labels(n_blocks)]
    c_map = {r["b"]: r for r in ctr.iter_rows(named=True)}
    m_map = {r["b"]: r for r in mature.iter_rows(named=True)}
    for b, label in enumerate(labels):
        c, m = c_map.get(b), m_map.get(b)
        clicks = float(c["clicks"]) if c else 0.0
        conv = float(m["conversions"]) if m else 0.0
        out[label] = {
            "ctr": clicks / max(float(c["impressions"]), 1.0) / total_ctr if c and total_ctr > 0 else math.nan,
            "ctr_se": 1.0 / math.sqrt(clicks) if clicks > 0 else math.inf,
            "cvr": conv / max(float(m["clicks"]), 1.0) / total_cvr if m and total_cvr > 0 else math.nan,
            "cvr_se": 1.0 / math.sqrt(conv) if conv > 0 else math.inf,
        }
    return out


def own_multipliers(modifiers: pl.DataFrame, dates: list[dt.date], n_blocks: int) -> np.ndarray:
    """[T, 24, 3] the cell multipliers of a campaign's modifiers in force on each of `dates`, from its
    fct_campaign_modifiers_daily rows (modifier_key, bid_modifier), carried forward over days without rows and
    back to the first day; 1 without any row (a platform without modifiers)."""
    keys = list(DEVICES) + ["h" + label.replace("-", "_") for label in block_labels(n_blocks)]
    values = np.full((len(dates), len(keys)), np.nan)
    index = {d: i for i, d in enumerate(dates)}
    for date, key, value in modifiers.select("date", "modifier_key", "bid_modifier").iter_rows():
        if date in index and key in keys and value is not None:
            values[index[date], keys.index(key)] = value
    for k in range(len(keys)):
        col = values[:, k]
        known = np.flatnonzero(np.isfinite(col))
        if len(known) == 0:
            col[:] = 1.0
            continue
        last = np.maximum.accumulate(np.where(np.isfinite(col), np.arange(len(col)), -1))
        col[:] = np.where(last >= 0, col[np.maximum(last, 0)], col[known[0]])
    return cell_multipliers(values[:, : len(DEVICES)], values[:, len(DEVICES) :])
