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
  * `mean_lag_days`: expected whole days from click to conversion at a bid, conversion-weighted.
"""

from __future__ import annotations

import numpy as np

from rl.market.compiled import CompiledMarket
from rl.market.engine import LAG_SKEW
from rl.market.params import MarketParams

N_SAMPLES = 20_000


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
