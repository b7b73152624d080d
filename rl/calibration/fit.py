"""Fit a `MarketParams` for the account from the warehouse marts: the simulator the policy learns in.

Estimators (each per campaign unless said otherwise; "mature" click dates are at least 30 days before the data end):
  * competitors: `rl.calibration.auction` — R i.i.d. lognormal rivals, their median and spread by method of
    moments on average price and impression share at every bid level used (a level: a base bid and the modifiers
    in force, so every cell is judged at its effective bid); their hour and device multipliers by
    `rl.calibration.cells` from the hourly and device reports (price and impression share per cell), with
    standard errors, then the median and spread refitted once with them;
  * opportunity volume: search — impressions / impression share per day (days with share > 10%); social — on days
    the budget did not bind, impressions / the fitted win probability at the bid in force. Then one least-squares
    fit of log volume = campaign level + platform weekday effect + trend × years + annual cosine, which gives
    `opportunities_per_day`, the platforms' `dow_profile`, `trend_per_year`, `season_amplitude` and
    `season_peak_doy` (trend needs ≥ 120 days, season ≥ 300; otherwise 0, flagged);
  * hour-of-day volume: per platform, hourly opportunities (search: impressions / hourly share; social:
    impressions) as shares of the day;
  * click-through: clicks / (impressions × the fitted mean relative position CTR at the level) = the position-1
    CTR, with creative fatigue CTR = k / (1 + f × exposure) fitted by least squares over a grid of f and of the
    daily exposure decay (exposure = decayed sum of past impressions / 1000; the decay is shared by all campaigns);
    by device (market-wide): clicks over the clicks expected at each device's modelled position, pooled over
    campaigns (`rl.calibration.assemble.device_effects`), normalised to an impression-weighted mean of 1;
  * session rate: GA4 sessions / ad clicks per platform;
  * conversion rate: ad-platform conversions (by click date, mature days) / GA4 sessions, i.e. the campaign's
    frequency estimate; by device (market-wide): the response model's conversion propensity by campaign × device
    (`rl.calibration.response`, held-out-scored) when it beats its frequency baseline, else the ad platforms'
    mature conversions per click by device pooled over campaigns; normalised to a click-weighted mean of 1. By
    hour block the observed effect is reported with its standard error (`cells.block_effects`) and flagged where
    it is clearly not 1: the simulator has no hour-of-day conversion effect beyond who the bid wins;
  * conversion lag: the campaign's lag-bucket shares (`fct_conversion_lag`) as a non-negative least-squares mix
    of basis segments with lag ranges `priors.LAG_BASIS` (the engine's within-range lag law);
  * value per conversion: conversion value / conversions (mature), lognormal with spread `priors.VALUE_SIGMA`;
  * device shares: the search platforms' eligible impressions by device (GA4 paid sessions without search).
Per campaign, `uncertainty` holds the relative standard errors of what domain randomisation perturbs and of the
device and hour effects: `rival_<key>`, `ctr_<key>`, `cvr_<key>` for key = mobile, desktop, tablet, h00_04, ….
A campaign without clicks in the window cannot be fitted: it gets its platform's pooled estimates as a flagged,
wide prior. Fewer than `data.MIN_DAYS` days is an error.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from rl.account import AccountSettings
from rl.calibration import cells, estimators, priors
from rl.calibration.assemble import DeviceEffects, assemble, device_effects, device_shares
from rl.calibration.auction import AuctionStructure, Levels, RivalFit
from rl.calibration.data import CalibrationData, CalibrationError
from rl.calibration.rivals import fit_rivals
from rl.market.modifiers import block_labels
from rl.market.params import DEVICES, MarketParams

WIDE = 0.5  # relative uncertainty given to a prior


@dataclass
class CampaignFit:
    campaign_id: int
    platform: str
    name: str
    structure: AuctionStructure
    rivals: RivalFit | None
    opportunities_per_day: float
    ctr_top: float
    fatigue: float
    cvr: float
    value_mean: float
    lag_weights: dict[tuple[int, int], float]
    current_bid: float
    current_budget: float
    max_bid: float
    reference_bid: float | None = None
    flags: list[str] = field(default_factory=list)
    uncertainty: dict[str, float] = field(default_factory=dict)
    levels: Levels | None = None
    cells: cells.CellFit | None = None
    blocks: dict[str, dict[str, float]] = field(default_factory=dict)  # observed hour-block CTR / CVR effects
    volume_lower_bound: bool = False  # the budget bound every day: the volume is only known to be at least this


@dataclass
class Calibration:
    """The fitted parameters, the window they came from, what is a prior rather than a fit, and uncertainties
    (relative standard errors per campaign, the spread domain randomisation should use)."""

    params: MarketParams
    first: dt.date
    last: dt.date
    campaigns: dict[int, CampaignFit]
    flags: list[str]
    volume: pl.DataFrame  # date, campaign_id, observed and fitted opportunities
    fit_wall_s: float
    devices: DeviceEffects | None = None

    def summary(self) -> dict:
        return {
            "params_hash": self.params.params_hash(),
            "window": {"first": self.first.isoformat(), "last": self.last.isoformat()},
            "fit_wall_s": round(self.fit_wall_s, 2),
            "flags": self.flags,
            "campaigns": {
                str(cid): {
                    "platform": c.platform,
                    "flags": c.flags,
                    # an effect the data cannot pin down has an infinite error: null in JSON
                    "uncertainty": {k: round(v, 4) if math.isfinite(v) else None for k, v in c.uncertainty.items()},
                    "rivals": None
                    if c.rivals is None
                    else {
                        "n": c.rivals.n_rivals,
                        "median": round(c.rivals.median, 4),
                        "sigma": round(c.rivals.sigma, 4),
                    },
                    "opportunities_per_day": round(c.opportunities_per_day, 1),
                    "volume_is_lower_bound": c.volume_lower_bound,
                    "ctr_top": round(c.ctr_top, 5),
                    "fatigue_per_k_impr": round(c.fatigue, 6),
                    "conversion_rate_per_session": round(c.cvr, 5),
                    "value_per_conversion": round(c.value_mean, 2),
                    "rival_hour_mult": None if c.rivals is None else np.round(c.rivals.hour_mult, 4).tolist(),
                    "rival_device_mult": None if c.rivals is None else np.round(c.rivals.device_mult, 4).tolist(),
                    "hour_block_effects": {
                        k: {m: round(v, 4) if math.isfinite(v) else None for m, v in e.items()}
                        for k, e in c.blocks.items()
                    },
                }
                for cid, c in self.campaigns.items()
            },
            "devices": None
            if self.devices is None
            else {
                "shares": np.round(self.devices.shares, 4).tolist(),
                "ctr_mult": np.round(self.devices.ctr, 4).tolist(),
                "cvr_mult": np.round(self.devices.cvr, 4).tolist(),
                "ctr_se": [round(v, 4) if math.isfinite(v) else None for v in self.devices.ctr_se],
                "cvr_se": [round(v, 4) if math.isfinite(v) else None for v in self.devices.cvr_se],
                "source": self.devices.source,
            },
        }


def calibrate(data: CalibrationData, account: AccountSettings, response=None, reference_bids=None) -> Calibration:
    """Fit the account's market from `data` (module docstring: the estimator of every parameter); the account's
    budget, target CPA and max bid are its settings (`account`), not fitted. `response`: the fitted
    `rl.calibration.response.ResponseModels`, whose conversion propensity gives the device multipliers.
    `reference_bids`: campaign id → the plan's reference bid (`bid_reference`), once GAELP has taken over."""
    started = time.perf_counter()
    flags: list[str] = []
    camps = data.campaigns.filter(pl.col("status") == "enabled")
    if camps.height == 0:
        raise CalibrationError("dim_campaign has no enabled campaign")
    mature_end = data.data_end - dt.timedelta(days=priors.MATURE_DAYS)
    # hour weights per platform, shared by its campaigns (MarketParams keeps hour profiles per platform)
    hour_w = {}
    for p in camps["platform"].unique().to_list():
        ids = camps.filter(pl.col("platform") == p)["campaign_id"].to_list()
        hour_w[p] = estimators.hour_weights(
            data.hourly.filter(pl.col("campaign_id").is_in(ids)), priors.structure(p).kind
        )
    dev_w = np.array(device_shares(data)[0])
    n_blocks = hour_blocks_of(data.modifiers)
    fits: dict[int, CampaignFit] = {}
    lower_bound: dict[int, float] = {}
    volume_rows = []
    series = {}
    for rec in camps.iter_rows(named=True):
        cid, p = rec["campaign_id"], rec["platform"]
        s = priors.structure(p)
        days = estimators.campaign_days(data, cid)
        series[cid] = days
        fit = CampaignFit(cid, p, rec["campaign_name"], s, None, 0.0, 0.0, 0.0, 0.0, 0.0, {}, 0.0, 0.0, 0.0)
        last_row = days.filter(pl.col("bid").is_not_null()).tail(1)
        if last_row.height == 0:
            raise CalibrationError(f"campaign {cid} ({p}) has no bid in force in {data.first} .. {data.last}")
        fit.current_bid = float(last_row["bid"][0])
        fit.current_budget = float(last_row["daily_budget"][0])
        # the plan's reference bid (bid_reference once GAELP took over, else the bid in force) and its max bid
        fit.reference_bid = float((reference_bids or {}).get(cid, fit.current_bid))
        fit.max_bid = round(float(account.max_bid(fit.reference_bid)), 2)
        fits[cid] = fit
        if days["clicks"].sum() == 0:
            fit.flags.append(f"no clicks in {data.first} .. {data.last}: platform prior (pooled), wide uncertainty")
            continue
        _fit_auction(fit, data, days, hour_w[p], dev_w, n_blocks)
        if s.kind == "search":
            # a share below 10% is reported as 0.0999: the day's volume is then only known to exceed
            # impressions / 0.1 (censored, see `_volume_fit`)
            opps = days.with_columns(
                pl.when(pl.col("impressions") > 0)
                .then(pl.col("impressions") / pl.col("impression_share").clip(0.1, 1.0))
                .alias("opps"),
                (pl.col("impression_share") <= 0.1).fill_null(False).alias("censored"),
            )
        else:
            win = pl.Series("win", _per_day(fit, "share_unthrottled"))
            opps = days.with_columns(
                pl.when((pl.col("spend") < 0.9 * pl.col("daily_budget")) & (pl.col("impressions") > 0))
                .then(pl.col("impressions") / win)
                .alias("opps"),
                pl.lit(False).alias("censored"),
            )
            if opps["opps"].drop_nulls().len() < 14:
                # The budget bound (almost) every day: impressions then say what the budget bought, not how many
                # auctions there were. The largest daily ratio is a lower bound on the volume; it is used as the
                # level only (the shared weekday, trend and season terms come from the identified campaigns).
                bound = (days["impressions"] / win).max()
                fit.flags.append(
                    "the budget bound on (almost) every day: social volume is a lower bound "
                    f"({bound:.0f} opportunities/day), not a fit"
                )
                fit.uncertainty["volume"] = WIDE
                fit.opportunities_per_day = float(bound or 0.0)
                fit.volume_lower_bound = True
                lower_bound[cid] = fit.opportunities_per_day
                continue
        volume_rows.append(
            opps.select("date", pl.lit(cid).alias("campaign_id"), pl.lit(p).alias("platform"), "opps", "censored")
        )
    if not volume_rows:
        raise CalibrationError(f"no campaign had clicks in {data.first} .. {data.last}: nothing to calibrate from")
    vol, vflags = estimators.volume_fit(pl.concat(volume_rows).drop_nulls(), data)
    flags += vflags
    # click-through and fatigue (the exposure decay is shared by every campaign)
    ctr_inputs = {}
    for cid, fit in fits.items():
        if fit.rivals is None:
            continue
        d = series[cid]
        norm = np.nan_to_num(_per_day(fit, "clicks_per_shown"), nan=1.0)
        ctr_inputs[cid] = (d["impressions"].to_numpy().astype(float), d["clicks"].to_numpy().astype(float), norm)
    decay = min(
        estimators.DECAY_GRID, key=lambda dc: sum(estimators.fatigue_fit(*v, dc)[2] for v in ctr_inputs.values())
    )
    for cid, (impr, clicks, norm) in ctr_inputs.items():
        k, f, _ = estimators.fatigue_fit(impr, clicks, norm, decay)
        fits[cid].ctr_top, fits[cid].fatigue = k, f
    # sessions, conversions, value, lag
    sess_rate = {}
    for p in camps["platform"].unique().to_list():
        d = data.daily.filter(pl.col("platform") == p)
        sess_rate[p] = float(min(0.999, d["sessions"].sum() / max(d["clicks"].sum(), 1)))
    for cid, fit in fits.items():
        d = series[cid].filter(pl.col("date") <= mature_end)
        sessions, conv = float(d["sessions"].sum()), float(d["conversions"].sum())
        if fit.rivals is not None and sessions > 0 and conv > 0:
            fit.cvr = conv / sessions
            fit.value_mean = float(d["conversion_value"].sum()) / conv
            fit.uncertainty["cvr"] = 1.0 / math.sqrt(conv)
        lag = data.lag.filter(pl.col("campaign_id") == cid)
        if lag["conversions"].sum() > 0:
            fit.lag_weights = estimators.lag_weights(lag)
        if fit.rivals is not None:
            fit.uncertainty["rival_median"] = max(0.03, math.sqrt(fit.rivals.loss))
            if cid not in lower_bound:
                fit.opportunities_per_day = vol["level"].get(cid, 0.0)
                fit.uncertainty["volume"] = vol["resid_sd"] / math.sqrt(max(series[cid].height, 1))
            fit.uncertainty["ctr"] = 1.0 / math.sqrt(max(series[cid]["clicks"].sum(), 1))
    devices = _device_and_hour_effects(data, fits, hour_w, mature_end, n_blocks, response, flags)
    _pool_priors(fits, flags)
    params = assemble(
        data, fits, vol, hour_w, sess_rate, decay, account.daily_budget, account.target_cpa, flags, devices, n_blocks
    )
    return Calibration(params, data.first, data.last, fits, flags, vol["frame"], time.perf_counter() - started, devices)


def hour_blocks_of(modifiers: pl.DataFrame, default: int = 6) -> int:
    """The number of hour blocks the modifier mart folds the day into (its hour-block keys), or `default`."""
    keys = {k for k in modifiers["modifier_key"].unique().to_list() if k.startswith("h")} if modifiers.height else set()
    return len(keys) or default


def _fit_auction(
    fit: CampaignFit, data: CalibrationData, days: pl.DataFrame, hour_w: np.ndarray, dev_w: np.ndarray, n_blocks: int
) -> None:
    """The campaign's rivals: whole days first, then their hour and device multipliers per cell, then the median
    and spread again with those multipliers, the cells once more, and the median and spread a last time so the
    per-level table (clicks per impression, share shown) is that of the final multipliers (`rl.calibration.cells`)."""
    cid, s = fit.campaign_id, fit.structure
    dates = days["date"].to_list()
    own = cells.own_multipliers(data.modifiers.filter(pl.col("campaign_id") == cid), dates, n_blocks)
    lv = Levels.from_days(days["bid"].to_numpy().astype(float), own)
    hourly = data.hourly.filter(pl.col("campaign_id") == cid)
    devices = data.ad_devices.filter(pl.col("campaign_id") == cid)
    rivals = fit_rivals(s, days, hourly, hour_w, levels=lv, device_w=dev_w)
    cell = cells.fit_cells(s, rivals, lv, days, hourly, devices, hour_w, dev_w)
    for round_ in range(2):
        rivals = fit_rivals(
            s,
            days,
            hourly,
            hour_w,
            levels=lv,
            device_w=dev_w,
            hour_mult=cell.hour_mult,
            device_mult=cell.device_mult,
            start=rivals,
        )
        if round_ == 0:
            cell = cells.fit_cells(s, rivals, lv, days, hourly, devices, hour_w, dev_w)
    fit.rivals, fit.levels, fit.cells = rivals, lv, cell
    fit.flags += rivals.flags + cell.flags


def _per_day(fit: CampaignFit, column: str) -> np.ndarray:
    """A per-level column of the rival fit's table, for every day of the window (NaN on days without a level)."""
    table = fit.rivals.levels
    by_level = np.full(fit.levels.n, np.nan)
    by_level[table["level"].to_numpy()] = table[column].to_numpy()
    day_level = fit.levels.day_level
    return np.where(day_level >= 0, by_level[np.maximum(day_level, 0)], np.nan)


def _device_and_hour_effects(data, fits, hour_w, mature_end, n_blocks, response, flags) -> DeviceEffects:
    """Market-wide device effects pooled over the fitted campaigns, and every campaign's device and hour-block
    uncertainties (a cell's click-through effect moves with its rivals' multiplier through position, by the
    elasticity `cells.ctr_elasticity`, and with the device's own click propensity; conversion effects are
    market-wide)."""
    ctr_rows, conv_rows = [], []
    for fit in fits.values():
        if fit.rivals is None:
            continue
        rows = data.ad_devices.filter(pl.col("campaign_id") == fit.campaign_id)
        ctr_rows.append(
            cells.device_ctr_ratios(fit.structure, fit.rivals, fit.levels, rows, data.first, hour_w[fit.platform])
        )
        conv_rows.append(cells.device_conversions(rows, mature_end))
    devices = device_effects(data, ctr_rows, conv_rows, response)
    devices_w = np.asarray(devices.shares)
    flags.append(f"device conversion multipliers: {devices.source['cvr']}")
    labels = ["h" + label.replace("-", "_") for label in block_labels(n_blocks)]
    for fit in fits.values():
        if fit.rivals is None:
            continue
        hourly = data.hourly.filter(pl.col("campaign_id") == fit.campaign_id)
        fit.blocks = cells.block_effects(hourly, mature_end, n_blocks)
        hw = hour_w[fit.platform]
        block_se = fit.cells.block_se(hw, n_blocks)
        block = np.arange(24) // (24 // n_blocks)

        def elasticity(kind: str, index: int, fit=fit, hw=hw) -> float:
            return cells.ctr_elasticity(fit.structure, fit.rivals, fit.levels, kind, index, hw, devices_w)

        for d, key in enumerate(DEVICES):
            fit.uncertainty[f"rival_{key}"] = float(fit.cells.device_se[d])
            position = elasticity("device", d) * fit.cells.device_se[d]
            fit.uncertainty[f"ctr_{key}"] = float(math.hypot(devices.ctr_se[d], position))
            fit.uncertainty[f"cvr_{key}"] = float(devices.cvr_se[d])
        for b, key in enumerate(labels):
            fit.uncertainty[f"rival_{key}"] = float(block_se[b])
            hours = np.flatnonzero(block == b)
            slope = float(np.average([elasticity("hour", h) for h in hours], weights=hw[hours]))
            fit.uncertainty[f"ctr_{key}"] = float(slope * block_se[b])
            fit.uncertainty[f"cvr_{key}"] = float(fit.blocks[key]["cvr_se"])
            effect = fit.blocks[key]
            if abs(effect["cvr"] - 1) > max(0.1, 4 * effect["cvr_se"]):  # 4 SE: many blocks are looked at
                fit.flags.append(
                    f"conversions per click in {key} are {effect['cvr']:.2f}× the day's (± {effect['cvr_se']:.2f}): "
                    "an hour-of-day conversion effect the simulator does not model"
                )
    return devices


def _pool_priors(fits: dict[int, CampaignFit], flags: list[str]) -> None:
    """Campaigns without clicks (or without conversions) take their platform's pooled estimates (or the same
    auction kind's), flagged and with wide uncertainty: never a silent default."""
    for fit in fits.values():
        need_auction, need_conv = fit.rivals is None, fit.cvr <= 0
        if not (need_auction or need_conv):
            continue
        donors = [f for f in fits.values() if f.platform == fit.platform and f.rivals is not None and f.cvr > 0]
        donors = donors or [
            f for f in fits.values() if f.structure.kind == fit.structure.kind and f.rivals is not None and f.cvr > 0
        ]
        if not donors:
            raise CalibrationError(
                f"campaign {fit.campaign_id} ({fit.platform}) has no data to fit and no campaign of its kind to "
                "borrow a prior from"
            )
        if need_auction:
            ref = min(donors, key=lambda f: abs(math.log(f.current_bid / fit.current_bid)))
            fit.rivals = ref.rivals
            fit.opportunities_per_day = float(np.median([f.opportunities_per_day for f in donors]))
            fit.ctr_top = float(np.median([f.ctr_top for f in donors]))
            fit.fatigue = float(np.median([f.fatigue for f in donors]))
            fit.uncertainty.update({"rival_median": WIDE, "volume": WIDE, "ctr": WIDE})
        if need_conv:
            fit.cvr = float(np.median([f.cvr for f in donors]))
            fit.value_mean = float(np.median([f.value_mean for f in donors]))
            fit.uncertainty["cvr"] = WIDE
            fit.flags.append(
                f"no mature conversions: conversion rate and value pooled from {[f.campaign_id for f in donors]}"
            )
        if not fit.lag_weights:
            fit.lag_weights = donors[0].lag_weights
            fit.flags.append(f"no lag report: lag mix of campaign {donors[0].campaign_id}")
        flags.append(f"campaign {fit.campaign_id}: " + "; ".join(fit.flags))
