"""Quantities that mean the same in any `MarketParams`, however its competitors and segments are parameterised.

A calibrated market describes competition with a few anonymous rivals per campaign and the buyers with lag-based
segments, while the demo world has named rivals and psychological segments. Comparing them parameter by
parameter is meaningless; comparing what they imply is not. Each function here computes, from any
`MarketParams`, what a campaign's auctions and buyers look like from the campaign's side (tests compare a fit with
the world's truth through them; the pipeline never reads the truth):
  * `threshold_bid_quantile`: the bid at which the campaign is shown in a given share of its auctions
    (search: beat all but slots − 1 rivals; social: beat every rival), in the campaign's own bid units;
  * `click_conversion_rate`: expected conversions per click at a bid (session rate × the conversion rate of the
    clicks the bid wins: intent-heavy segments draw more competition, so the mix depends on the bid);
  * `mean_lag_days`: expected whole days from click to conversion at a bid, conversion-weighted;
  * `cell_effects`: per device and per hour block, how click-through (clicks per impression), conversions per
    click and rival pressure (the median threshold bid) there compare with the campaign's whole day — the device
    and hour effects, however a market parameterises them (device multipliers, rivals' hour and device
    multipliers, segments that differ in intent).
"""

from __future__ import annotations

import numpy as np

from rl.market.compiled import CompiledMarket
from rl.market.engine import LAG_SKEW
from rl.market.modifiers import block_of_hour, cell_multipliers
from rl.market.params import DEVICES, MarketParams

N_SAMPLES = 20_000
N_PER_DEVICE = 20_000  # cell effects sample every device alike (tablets are a few % of the volume)


def threshold_bids(params: MarketParams, campaign_id: int, seed: int = 0) -> np.ndarray:
    """Sampled threshold bids of the campaign's auctions (hours, devices and segments in their proportions; no
    reserve, no adaptation)."""
    cm = CompiledMarket.from_params(params)
    c = cm.index_of(campaign_id)
    rng = np.random.default_rng(seed)
    hour = rng.choice(24, size=N_SAMPLES, p=cm.hour_share[c])
    device = np.minimum(np.searchsorted(cm.device_cdf, rng.random(N_SAMPLES), side="right"), 2)
    seg = np.minimum(np.searchsorted(cm.seg_cdf[c], rng.random(N_SAMPLES), side="right"), cm.seg_cdf.shape[1] - 1)
    rivals = cm.comp_idx[c][cm.comp_idx[c] >= 0]
    if len(rivals) == 0:
        return np.zeros(N_SAMPLES)
    scores = np.exp(
        cm.rival_base_table[c][hour, device][:, : len(rivals)]
        + cm.rival_sigma_table[c, : len(rivals)] * rng.standard_normal((N_SAMPLES, len(rivals)))
        + np.log(cm.seg_comp[seg])[:, None]
    )
    ranked = -np.sort(-scores, axis=1)
    slots = int(cm.n_slots[c])
    beat = ranked[:, slots - 1] if len(rivals) >= slots else np.zeros(N_SAMPLES)
    return beat / cm.quality[c]


def threshold_bid_quantile(params: MarketParams, campaign_id: int, q: float = 0.5) -> float:
    return float(np.quantile(threshold_bids(params, campaign_id), q))


def _auctions(params: MarketParams, campaign_id: int, bid: float | None, seed: int = 0):
    """Sampled auctions of the campaign at `bid` (default: the bid in force): per auction the segment, and the
    click probability (0 when not shown), so rates are weighted by who the campaign actually reaches."""
    cm = CompiledMarket.from_params(params)
    c = cm.index_of(campaign_id)
    bid = params.campaign(campaign_id).current_bid if bid is None else bid
    rng = np.random.default_rng(seed)
    hour = rng.choice(24, size=N_SAMPLES, p=cm.hour_share[c])
    device = np.minimum(np.searchsorted(cm.device_cdf, rng.random(N_SAMPLES), side="right"), 2)
    seg = np.minimum(np.searchsorted(cm.seg_cdf[c], rng.random(N_SAMPLES), side="right"), cm.seg_cdf.shape[1] - 1)
    rivals = cm.comp_idx[c][cm.comp_idx[c] >= 0]
    scores = np.exp(
        cm.rival_base_table[c][hour, device][:, : len(rivals)]
        + cm.rival_sigma_table[c, : len(rivals)] * rng.standard_normal((N_SAMPLES, len(rivals)))
        + np.log(cm.seg_comp[seg])[:, None]
    )
    n_above = (scores > bid * cm.quality[c]).sum(axis=1)
    shown = (n_above < cm.n_slots[c]) & (bid >= cm.reserve[c])
    slot_ctr = cm.slot_ctr[c][np.minimum(n_above, cm.n_slots[c] - 1)]
    click = np.where(shown, slot_ctr, 0.0) * cm.ctr_mult[c] * cm.seg_ctr[seg] * cm.dev_ctr[device]
    cvr = np.minimum(cm.seg_cvr[seg] * cm.cvr_mult[c] * cm.dev_cvr[device], 1.0)
    return cm, c, seg, click, cvr


def click_conversion_rate(params: MarketParams, campaign_id: int, bid: float | None = None) -> float:
    cm, c, _, click, cvr = _auctions(params, campaign_id, bid)
    return float(cm.session_rate[c] * (click * cvr).sum() / click.sum())


def segment_mean_lag(lag_min: int, lag_max: int) -> float:
    """Mean whole-day lag of a segment under the engine's law lag = min + floor(u^LAG_SKEW × span)."""
    span = lag_max - lag_min + 1
    k = np.arange(span)
    p = ((k + 1) / span) ** (1 / LAG_SKEW) - (k / span) ** (1 / LAG_SKEW)
    return float(lag_min + (p * k).sum())


def mean_lag_days(params: MarketParams, campaign_id: int, bid: float | None = None) -> float:
    cm, _, seg, click, cvr = _auctions(params, campaign_id, bid)
    lags = np.array([segment_mean_lag(int(a), int(b)) for a, b in zip(cm.lag_min, cm.lag_max, strict=True)])
    conv = click * cvr
    return float((conv * lags[seg]).sum() / conv.sum())


def _cell_sample(cm: CompiledMarket, c: int, seed: int):
    """Auctions of campaign index `c`, N_PER_DEVICE per device (hours and segments in their proportions): device,
    hour, segment and the rivals' scores in our bid units (sorted high to low; [n, 0] without rivals)."""
    rng = np.random.default_rng(seed)
    device = np.repeat(np.arange(len(DEVICES)), N_PER_DEVICE)
    n = len(device)
    hour = rng.choice(24, size=n, p=cm.hour_share[c])
    seg = np.minimum(np.searchsorted(cm.seg_cdf[c], rng.random(n), side="right"), cm.seg_cdf.shape[1] - 1)
    rivals = cm.comp_idx[c][cm.comp_idx[c] >= 0]
    scores = np.exp(
        cm.rival_base_table[c][hour, device][:, : len(rivals)]
        + cm.rival_sigma_table[c, : len(rivals)] * rng.standard_normal((n, len(rivals)))
        + np.log(cm.seg_comp[seg])[:, None]
    )
    return device, hour, seg, -np.sort(-scores, axis=1) / cm.quality[c]


def cell_effects(
    params: MarketParams,
    campaign_id: int,
    bids=None,
    weights=None,
    device_modifiers=None,
    hour_modifiers=None,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """{key: {"ctr": …, "cvr": …, "rival": …}} for key = each device (mobile, desktop, tablet) and each hour block
    (h00_04, …): clicks per impression, conversions per click and the median threshold bid (the bid that beats
    all but slots − 1 rivals) in that cell, each divided by the same figure over the campaign's whole traffic
    (devices in their market shares). At `bids` (one or several, averaged with `weights`; default: the bid in
    force) times the modifiers given (default 1): the effective bid of each cell. One sample of auctions serves
    every bid. A campaign with fewer rivals than slots has no threshold: its rival effects are NaN."""
    cm = CompiledMarket.from_params(params)
    c = cm.index_of(campaign_id)
    n_b = params.hour_blocks
    slots = int(cm.n_slots[c])
    bids = np.atleast_1d(params.campaign(campaign_id).current_bid if bids is None else np.asarray(bids, float))
    weights = np.ones(len(bids)) if weights is None else np.asarray(weights, float)
    dev_mod = np.ones(len(DEVICES)) if device_modifiers is None else np.asarray(device_modifiers, float)
    hour_mod = np.ones(n_b) if hour_modifiers is None else np.asarray(hour_modifiers, float)
    device, hour, seg, ranked = _cell_sample(cm, c, seed)
    mult = cell_multipliers(dev_mod, hour_mod)[hour, device]
    threshold = ranked[:, slots - 1] if ranked.shape[1] >= slots else np.full(len(device), np.nan)
    # every device was sampled alike: weight each back to its share of the traffic
    share = np.diff(np.concatenate([[0.0], np.asarray(cm.device_cdf, float)]))
    w = share[device] / N_PER_DEVICE
    block = block_of_hour(n_b)[hour]
    labels = list(DEVICES) + [f"h{b * 24 // n_b:02d}_{(b + 1) * 24 // n_b:02d}" for b in range(n_b)]
    groups = [(device, len(DEVICES)), (block, n_b)]  # the key index of every auction, per kind of key
    cvr = np.minimum(cm.seg_cvr[seg] * cm.cvr_mult[c] * cm.dev_cvr[device], 1.0)
    propensity = cm.ctr_mult[c] * cm.seg_ctr[seg] * cm.dev_ctr[device]
    rival_all = _weighted_median(threshold, w)
    rival = [_weighted_median(threshold[idx == k], w[idx == k]) / rival_all for idx, n in groups for k in range(n)]
    ctr, conv = np.zeros(len(labels)), np.zeros(len(labels))
    for bid, weight in zip(bids, weights / weights.sum(), strict=True):
        effective = bid * mult
        above = (ranked > effective[:, None]).sum(axis=1)
        shown = (above < slots) & (effective >= cm.reserve[c]) & (effective > 0)
        click = np.where(shown, cm.slot_ctr[c][np.minimum(above, slots - 1)], 0.0) * propensity
        sums = [
            np.concatenate([np.bincount(idx, weights=w * v, minlength=n) for idx, n in groups])
            for v in (shown, click, click * cvr)
        ]
        totals = [(w * v).sum() for v in (shown, click, click * cvr)]
        with np.errstate(divide="ignore", invalid="ignore"):
            ctr += weight * (sums[1] / sums[0]) / (totals[1] / totals[0])
            conv += weight * (sums[2] / sums[1]) / (totals[2] / totals[1])
    return {
        key: {"ctr": float(ctr[i]), "cvr": float(conv[i]), "rival": float(rival[i])} for i, key in enumerate(labels)
    }


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    if np.isnan(values).all():
        return float("nan")
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, 0.5 * cum[-1])])
