"""Fit a `MarketParams` for the account from the warehouse marts: the simulator the policy learns in.

Estimators (each per campaign unless said otherwise; "mature" click dates are at least 30 days before the data end):
  * competitors: `rl.calibration.auction` — R i.i.d. lognormal rivals, their median, spread and hour multiplier,
    by simulated method of moments on average price and impression share at every bid level used;
  * opportunity volume: search — impressions / impression share per day (days with share > 10%); social — on days
    the budget did not bind, impressions / the fitted win probability at the bid in force. Then one least-squares
    fit of log volume = campaign level + platform weekday effect + trend × years + annual cosine, which gives
    `opportunities_per_day`, the platforms' `dow_profile`, `trend_per_year`, `season_amplitude` and
    `season_peak_doy` (trend needs ≥ 120 days, season ≥ 300; otherwise 0, flagged);
  * hour-of-day volume: per platform, hourly opportunities (search: impressions / hourly share; social:
    impressions) as shares of the day;
  * click-through: clicks / (impressions × the fitted mean relative position CTR at the bid) = the position-1
    CTR, with creative fatigue CTR = k / (1 + f × exposure) fitted by least squares over a grid of f and of the
    daily exposure decay (exposure = decayed sum of past impressions / 1000; the decay is shared by all campaigns);
  * session rate: GA4 sessions / ad clicks per platform;
  * conversion rate: ad-platform conversions (by click date, mature days) / GA4 sessions, i.e. the campaign's
    frequency estimate; by device: the response model's conversion propensity by campaign × device
    (`rl.calibration.response`, held-out-scored), session-weighted and normalised to a mean of 1 (without a
    response model: GA4 key events / sessions by device);
  * conversion lag: the campaign's lag-bucket shares (`fct_conversion_lag`) as a non-negative least-squares mix
    of basis segments with lag ranges `priors.LAG_BASIS` (the engine's within-range lag law);
  * value per conversion: conversion value / conversions (mature), lognormal with spread `priors.VALUE_SIGMA`;
  * device shares: GA4 paid sessions by device (device click-through is not reported: multiplier 1, flagged).
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

from rl.calibration import estimators, priors
from rl.calibration.auction import AuctionStructure, RivalFit, fit_rivals, win_probability
from rl.calibration.data import CalibrationData, CalibrationError
from rl.market.params import DEVICES, HOURS, MarketParams, parse_market_params

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
    flags: list[str] = field(default_factory=list)
    uncertainty: dict[str, float] = field(default_factory=dict)


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
                    "uncertainty": {k: round(v, 4) for k, v in c.uncertainty.items()},
                    "rivals": None
                    if c.rivals is None
                    else {
                        "n": c.rivals.n_rivals,
                        "median": round(c.rivals.median, 4),
                        "sigma": round(c.rivals.sigma, 4),
                    },
                    "opportunities_per_day": round(c.opportunities_per_day, 1),
                    "ctr_top": round(c.ctr_top, 5),
                    "fatigue_per_k_impr": round(c.fatigue, 6),
                    "conversion_rate_per_session": round(c.cvr, 5),
                    "value_per_conversion": round(c.value_mean, 2),
                }
                for cid, c in self.campaigns.items()
            },
        }


def calibrate(
    data: CalibrationData, daily_budget: float = 500.0, target_cpa: float = 100.0, response=None
) -> Calibration:
    """Fit the account's market from `data` (module docstring: the estimator of every parameter). `response`: the
    fitted `rl.calibration.response.ResponseModels`, whose conversion propensity gives the device multipliers."""
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
        fit.max_bid = round(2.5 * float(days["bid"].max()), 2)
        fits[cid] = fit
        if days["clicks"].sum() == 0:
            fit.flags.append(f"no clicks in {data.first} .. {data.last}: platform prior (pooled), wide uncertainty")
            continue
        fit.rivals = fit_rivals(s, days, data.hourly.filter(pl.col("campaign_id") == cid), hour_w[p])
        fit.flags += fit.rivals.flags
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
            levels = fit.rivals.levels["bid"].to_numpy()
            win = dict(
                zip(levels.tolist(), win_probability(s, fit.rivals, levels, hour_w[p])["shown"].tolist(), strict=True)
            )
            opps = days.with_columns(
                pl.when((pl.col("spend") < 0.9 * pl.col("daily_budget")) & (pl.col("impressions") > 0))
                .then(pl.col("impressions") / pl.col("bid").replace_strict(win, default=None))
                .alias("opps"),
                pl.lit(False).alias("censored"),
            )
            if opps["opps"].drop_nulls().len() < 14:
                # The budget bound (almost) every day: impressions then say what the budget bought, not how many
                # auctions there were. The largest daily ratio is a lower bound on the volume; it is used as the
                # level only (the shared weekday, trend and season terms come from the identified campaigns).
                bound = (days["impressions"] / days["bid"].replace_strict(win, default=None)).max()
                fit.flags.append(
                    "the budget bound on (almost) every day: social volume is a lower bound "
                    f"({bound:.0f} opportunities/day), not a fit"
                )
                fit.uncertainty["volume"] = WIDE
                fit.opportunities_per_day = float(bound or 0.0)
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
        cps = dict(
            zip(fit.rivals.levels["bid"].to_list(), fit.rivals.levels["clicks_per_shown"].to_list(), strict=True)
        )
        norm = d["bid"].replace_strict(cps, default=None).fill_null(1.0).to_numpy()
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
    _pool_priors(fits, flags)
    params = _assemble(data, fits, vol, hour_w, sess_rate, decay, daily_budget, target_cpa, flags, response)
    return Calibration(params, data.first, data.last, fits, flags, vol["frame"], time.perf_counter() - started)


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


def _device_fit(data: CalibrationData, response=None) -> tuple[list[float], list[float]]:
    """Device shares of paid sessions, and conversion multipliers by device: from the response model's conversion
    propensity by campaign × device (session-weighted over campaigns) when given, else GA4 frequencies."""
    by = data.devices.group_by("device").agg(pl.col("sessions").sum(), pl.col("key_events").sum())
    sess = {r["device"]: float(r["sessions"]) for r in by.iter_rows(named=True)}
    keys = {r["device"]: float(r["key_events"]) for r in by.iter_rows(named=True)}
    total = sum(sess.get(d, 0.0) for d in DEVICES)
    if total <= 0:
        raise CalibrationError(f"no GA4 paid sessions by device in {data.first} .. {data.last}")
    shares = np.array([max(sess.get(d, 0.0), 1e-3 * total) for d in DEVICES])
    shares = shares / shares.sum()
    overall = sum(keys.values()) / total
    if response is not None:
        prop = (
            response.conversion_propensity()
            .group_by("device")
            .agg(((pl.col("probability") * pl.col("trials")).sum() / pl.col("trials").sum()).alias("rate"))
        )
        keys = {r["device"]: r["rate"] for r in prop.iter_rows(named=True)}
        rates = np.array([keys.get(d, overall) for d in DEVICES])
        return shares.tolist(), np.maximum(rates / max(float((shares * rates).sum()), 1e-12), 0.05).tolist()
    rates = np.array([keys.get(d, 0.0) / sess[d] if sess.get(d, 0.0) >= 200 else overall for d in DEVICES])
    mult = rates / max(float((shares * rates).sum()), 1e-12)
    return shares.tolist(), np.maximum(mult, 0.05).tolist()


def _assemble(data, fits, vol, hour_w, sess_rate, decay, daily_budget, target_cpa, flags, response) -> MarketParams:
    dim = {r["campaign_id"]: r for r in data.campaigns.iter_rows(named=True)}
    shares, dev_cvr = _device_fit(data, response)
    flags.append("device click-through multipliers: not reported by the platforms, 1 (prior)")
    flags.append(f"order value spread: lognormal sigma {priors.VALUE_SIGMA} (prior)")
    flags.append("competitors: no adaptation or drift fitted (0)")
    platforms = []
    for p in sorted({f.platform for f in fits.values()}):
        s = priors.structure(p)
        first = next(r for r in dim.values() if r["platform"] == p)
        ctr = list(priors.SEARCH_POSITION_CTR[: s.slots]) if s.kind == "search" else [priors.SOCIAL_BASE_CTR]
        platforms.append(
            {
                "name": p,
                "kind": s.kind,
                "reserve_price": s.reserve,
                "position_ctr": ctr,
                "session_rate": sess_rate[p],
                "source_medium": first["ga4_source_medium"],
                "channel_group": first["ga4_channel_group"],
                "hour_profile": (hour_w[p] * HOURS).tolist(),
                "dow_profile": vol["dow"].get(p, [1.0] * 7),
            }
        )
    segments, campaigns, competitors = [], [], []
    for cid, f in fits.items():
        mix = {}
        for (lo, hi), w in f.lag_weights.items():
            name = f"c{cid}_lag{lo}-{hi}"
            segments.append(
                {
                    "name": name,
                    "ctr_mult": 1.0,
                    "cvr": float(np.clip(f.cvr, 1e-5, 0.99)),
                    "lag_days_min": lo,
                    "lag_days_max": hi,
                    "value_median": max(f.value_mean, 0.01) / math.exp(priors.VALUE_SIGMA**2 / 2),
                    "value_sigma": priors.VALUE_SIGMA,
                }
            )
            mix[name] = w
        total = sum(mix.values())
        base = priors.SEARCH_POSITION_CTR[0] if f.structure.kind == "search" else priors.SOCIAL_BASE_CTR
        campaigns.append(
            {
                "id": cid,
                "name": f.name,
                "platform": f.platform,
                "product": dim[cid]["product"],
                "intent": dim[cid]["intent"],
                "opportunities_per_day": max(f.opportunities_per_day, 1.0),
                "quality": 1.0,
                "ctr_mult": float(np.clip(f.ctr_top / base, 1e-3, 10.0)),
                "cvr_mult": 1.0,
                "fatigue_per_k_impr": min(f.fatigue, 1.0),
                "segment_mix": {k: v / total for k, v in mix.items()},
                "current_bid": f.current_bid,
                "current_daily_budget": f.current_budget,
                "max_bid": max(f.max_bid, f.current_bid),
            }
        )
        for j in range(f.rivals.n_rivals):
            competitors.append(
                {
                    "name": f"rival {j + 1} of {cid}",
                    "platform": f.platform,
                    "campaigns": [cid],
                    "median_bid": f.rivals.median,
                    "sigma": min(f.rivals.sigma, 2.0),
                    "quality": 1.0,
                    "hour_mult": f.rivals.hour_mult.tolist(),
                    "device_mult": [1.0, 1.0, 1.0],
                }
            )
    org = data.organic
    organic_sessions = float(org["sessions"].mean()) if org.height else 0.0
    organic_cvr = float(org["key_events"].sum() / max(org["sessions"].sum(), 1)) if org.height else 0.0
    raw = {
        "name": f"calibrated {data.first}..{data.last}",
        "history_start": data.first.isoformat(),
        "daily_budget": daily_budget,
        "target_cpa": target_cpa,
        "device_shares": shares,
        "device_ctr_mult": [1.0, 1.0, 1.0],
        "device_cvr_mult": dev_cvr,
        "trend_per_year": max(vol["trend"], -0.9),
        "season_amplitude": vol["amplitude"],
        "season_peak_doy": vol["peak"],
        "fatigue_decay": decay,
        "organic_sessions_per_day": organic_sessions,
        "organic_cvr": min(organic_cvr, 0.99),
        "segments": segments,
        "platforms": platforms,
        "campaigns": campaigns,
        "competitors": competitors,
    }
    return parse_market_params(raw, "calibration")
