"""The calibrated market put together: the market-wide device effects pooled over campaigns, and every campaign's
fit turned into one validated `MarketParams` (`rl.calibration.fit` computes the fits; its docstring lists the
estimator of every parameter)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from rl.calibration import priors
from rl.calibration.data import CalibrationData, CalibrationError
from rl.market.modifiers import block_labels
from rl.market.params import DEVICES, HOURS, MarketParams, parse_market_params


@dataclass
class DeviceEffects:
    """Market-wide device figures: opportunity shares, click-through and conversion multipliers (mobile, desktop,
    tablet; multipliers with a volume-weighted mean of 1) and the relative standard errors of the multipliers."""

    shares: list[float]
    ctr: list[float]
    cvr: list[float]
    ctr_se: list[float]
    cvr_se: list[float]
    source: dict[str, str]


def device_shares(data: CalibrationData) -> tuple[list[float], str]:
    """Opportunity shares by device: the search platforms' eligible impressions (impressions / impression share)
    per device, each campaign's per-day mean, summed over campaigns; without a search campaign, GA4's paid
    sessions by device (which lean towards the devices that win and click more)."""
    rows = data.ad_devices.filter(
        (pl.col("impression_share") > 0.1) & pl.col("device").is_in(list(DEVICES)) & (pl.col("impressions") > 0)
    )
    if rows.height:
        per = (
            rows.with_columns((pl.col("impressions") / pl.col("impression_share")).alias("eligible"))
            .group_by("campaign_id", "device")
            .agg(pl.col("eligible").mean())
            .group_by("device")
            .agg(pl.col("eligible").sum())
        )
        eligible = dict(per.iter_rows())
        total = sum(eligible.values())
        if total > 0 and all(eligible.get(d, 0.0) > 0 for d in DEVICES):
            shares = np.array([eligible[d] for d in DEVICES]) / total
            return shares.tolist(), "search eligible impressions by device"
    by = data.devices.group_by("device").agg(pl.col("sessions").sum())
    sess = dict(by.iter_rows())
    total = sum(sess.get(d, 0.0) for d in DEVICES)
    if total <= 0:
        raise CalibrationError(f"no paid delivery or sessions by device in {data.first} .. {data.last}")
    shares = np.array([max(sess.get(d, 0.0), 1e-3 * total) for d in DEVICES])
    return (shares / shares.sum()).tolist(), "GA4 paid sessions by device (no search impression share)"


def _pooled(observed: dict[str, float], expected: dict[str, float], weight: dict[str, float]) -> tuple[list, list]:
    """Observed / expected per device, normalised to a `weight`-weighted mean of 1, and relative SEs."""
    ratio = np.array([observed.get(d, 0.0) / expected[d] if expected.get(d, 0.0) > 0 else 1.0 for d in DEVICES])
    ratio = np.where(ratio > 0, ratio, 1.0)
    w = np.array([weight.get(d, 0.0) for d in DEVICES])
    norm = float((w * ratio).sum() / w.sum()) if w.sum() > 0 else 1.0
    se = [1.0 / math.sqrt(observed[d]) if observed.get(d, 0.0) > 0 else math.inf for d in DEVICES]
    return np.maximum(ratio / norm, 0.05).tolist(), se


def device_effects(data: CalibrationData, ctr_rows: list[pl.DataFrame], conv_rows: list[pl.DataFrame], response):
    """`DeviceEffects` from the campaigns' device click-through ratios (`rl.calibration.cells.device_ctr_ratios`,
    one frame per campaign) and mature device conversions (`device_conversions`), pooled as observed over expected
    (each campaign's expectation at its own overall rate, so a campaign's level does not pass for a device effect).
    Conversion multipliers come from the response model's propensity by device when one is given and it beat its
    frequency baseline on held-out days (`ResponseModel.usable`); otherwise from the frequencies, said in `source`."""
    shares, share_source = device_shares(data)
    obs_c, exp_c, impressions = {}, {}, {}
    for frame in ctr_rows:
        rate = frame["clicks"].sum() / max(frame["expected"].sum(), 1e-12)
        for d, clicks, expected in frame.iter_rows():
            obs_c[d] = obs_c.get(d, 0.0) + clicks
            exp_c[d] = exp_c.get(d, 0.0) + expected * rate
    for d, n in data.ad_devices.group_by("device").agg(pl.col("impressions").sum()).iter_rows():
        impressions[d] = float(n)
    ctr, ctr_se = _pooled(obs_c, exp_c, impressions)
    obs_v, exp_v, clicks = {}, {}, {}
    for frame in conv_rows:
        rate = frame["conversions"].sum() / max(frame["clicks"].sum(), 1e-12)
        for d, n_clicks, conv in frame.select("device", "clicks", "conversions").iter_rows():
            obs_v[d] = obs_v.get(d, 0.0) + conv
            exp_v[d] = exp_v.get(d, 0.0) + n_clicks * rate
            clicks[d] = clicks.get(d, 0.0) + n_clicks
    cvr, cvr_se = _pooled(obs_v, exp_v, clicks)
    source = {"shares": share_source, "ctr": "ad platforms' clicks per impression by device, position-adjusted"}
    source["cvr"] = "ad platforms' conversions per click by device (mature click dates)"
    if response is not None and not response.conversion.usable:
        m = response.conversion.metrics
        source["cvr"] += (
            f"; the response model was not used: held-out log loss {m['holdout_logloss']:.5f} did not beat its "
            f"frequency baseline's {m['baseline_logloss']:.5f} over {m.get('folds', 1)} windows"
        )
    elif response is not None:
        prop = (
            response.conversion_propensity()
            .group_by("device")
            .agg(((pl.col("probability") * pl.col("trials")).sum() / pl.col("trials").sum()).alias("rate"))
        )
        rates = dict(prop.iter_rows())
        if all(d in rates for d in DEVICES):
            r = np.array([rates[d] for d in DEVICES])
            w = np.array([clicks.get(d, 0.0) for d in DEVICES])
            cvr = np.maximum(r / float((w * r).sum() / max(w.sum(), 1e-12)), 0.05).tolist()
            source["cvr"] = "response model's conversion propensity by device (GA4 sessions, held-out scored)"
    return DeviceEffects(shares, ctr, cvr, ctr_se, cvr_se, source)


def modifiers_in_force(data: CalibrationData, campaign_id: int, n_blocks: int) -> dict[str, list[float]]:
    """The campaign's device and hour-block modifiers on the last day of the window that has them, as the
    `Campaign.current_*_modifiers` fields (empty when it has none: a social campaign, or all at 1)."""
    rows = data.modifiers.filter((pl.col("campaign_id") == campaign_id) & (pl.col("date") <= data.last))
    if rows.height == 0:
        return {}
    last = rows.filter(pl.col("date") == rows["date"].max())
    values = dict(zip(last["modifier_key"].to_list(), last["bid_modifier"].to_list(), strict=True))
    blocks = ["h" + label.replace("-", "_") for label in block_labels(n_blocks)]
    device = [float(values[d]) if values.get(d) is not None else 1.0 for d in DEVICES]
    hours = [float(values[k]) if values.get(k) is not None else 1.0 for k in blocks]
    if all(v == 1.0 for v in device + hours):
        return {}
    return {"current_device_modifiers": device, "current_hour_modifiers": hours}


def assemble(
    data, fits, vol, hour_w, sess_rate, decay, daily_budget, target_cpa, flags, devices: DeviceEffects, n_blocks=6
) -> MarketParams:
    """One validated `MarketParams` from the campaign fits and the market-wide figures (the campaigns' bids,
    budgets and modifiers in force are those of the window's last day)."""
    dim = {r["campaign_id"]: r for r in data.campaigns.iter_rows(named=True)}
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
                "reference_bid": f.reference_bid,
                **modifiers_in_force(data, cid, n_blocks),
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
                    "device_mult": f.rivals.device_mult.tolist(),
                }
            )
    org = data.organic
    organic_sessions = float(org["sessions"].mean()) if org.height else 0.0
    organic_cvr = float(org["key_events"].sum() / max(org["sessions"].sum(), 1)) if org.height else 0.0
    raw = {
        "name": f"calibrated {data.first}..{data.last}",
        "hour_blocks": n_blocks,
        "history_start": data.first.isoformat(),
        "daily_budget": daily_budget,
        "target_cpa": target_cpa,
        "device_shares": devices.shares,
        "device_ctr_mult": devices.ctr,
        "device_cvr_mult": devices.cvr,
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
