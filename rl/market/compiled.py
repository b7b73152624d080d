"""`CompiledMarket`: `MarketParams` flattened into numpy arrays indexed by campaign (C), competitor (K),
segment (S), device (D = 3) and hour (24). Built once; the engine and the reference loop both read it."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np

from rl.market.params import DEVICES, HOURS, MarketParams


@dataclass(frozen=True)
class CompiledMarket:
    params: MarketParams
    campaign_ids: np.ndarray  # [C] int64
    is_search: np.ndarray  # [C] bool
    n_slots: np.ndarray  # [C] int64, 1 for social
    slot_ctr: np.ndarray  # [C, max_slots] float64, 0-padded
    reserve: np.ndarray  # [C] reserve CPC (search) or CPM (social)
    session_rate: np.ndarray  # [C]
    quality: np.ndarray  # [C]
    ctr_mult: np.ndarray  # [C]
    cvr_mult: np.ndarray  # [C]
    fatigue: np.ndarray  # [C] CTR loss per 1,000 impressions of exposure stock
    base_opps: np.ndarray  # [C] mean opportunities per day
    hour_share: np.ndarray  # [C, 24] share of a day's volume by hour (rows sum to 1)
    dow_factor: np.ndarray  # [C, 7] day-of-week factor (rows average 1)
    seg_cdf: np.ndarray  # [C, S] cumulative segment mix
    seg_ctr: np.ndarray  # [S]
    seg_cvr: np.ndarray  # [S]
    seg_comp: np.ndarray  # [S] competitor bid multiplier (intent)
    lag_min: np.ndarray  # [S] int64
    lag_max: np.ndarray  # [S] int64
    value_median: np.ndarray  # [S]
    value_sigma: np.ndarray  # [S]
    device_cdf: np.ndarray  # [D]
    dev_ctr: np.ndarray  # [D]
    dev_cvr: np.ndarray  # [D]
    comp_idx: np.ndarray  # [C, Kmax] int64 competitor index per campaign, -1 padded
    comp_log_median: np.ndarray  # [K]
    comp_sigma: np.ndarray  # [K]
    comp_quality: np.ndarray  # [K]
    comp_log_hour: np.ndarray  # [K, 24]
    comp_log_device: np.ndarray  # [K, D]
    comp_adapt: np.ndarray  # [K]
    comp_drift: np.ndarray  # [K]
    comp_campaigns: np.ndarray  # [K, C] bool: competitor k enters campaign c's auctions
    rival_base_table: np.ndarray  # [C, 24, D, Kmax] log(median bid × hour × device mult × quality), -inf padded
    rival_sigma_table: np.ndarray  # [C, Kmax] lognormal sigma of each rival slot, 0 padded

    @property
    def n_campaigns(self) -> int:
        return len(self.campaign_ids)

    @property
    def n_competitors(self) -> int:
        return len(self.comp_log_median)

    @property
    def max_slots(self) -> int:
        return self.slot_ctr.shape[1]

    def volume_level(self, date: dt.date) -> float:
        """Trend × annual season multiplier on every campaign's base volume for `date`."""
        p = self.params
        years = (date - p.history_start).days / 365.25
        season = 1.0 + p.season_amplitude * math.cos(
            2 * math.pi * (date.timetuple().tm_yday - p.season_peak_doy) / 365.25
        )
        return (1.0 + p.trend_per_year) ** years * season

    def expected_opportunities(self, date: dt.date) -> np.ndarray:
        """Poisson means per campaign and hour for `date`, shape [C, 24]."""
        level = self.volume_level(date)
        return self.base_opps[:, None] * level * self.dow_factor[:, date.weekday()][:, None] * self.hour_share

    def index_of(self, campaign_id: int) -> int:
        hits = np.flatnonzero(self.campaign_ids == campaign_id)
        if len(hits) != 1:
            raise KeyError(f"unknown campaign id {campaign_id} (known: {self.campaign_ids.tolist()})")
        return int(hits[0])

    @classmethod
    def from_params(cls, params: MarketParams) -> CompiledMarket:
        plat = {p.name: p for p in params.platforms}
        camps = params.campaigns
        seg_names = [s.name for s in params.segments]
        max_slots = max(len(plat[c.platform].position_ctr) for c in camps)
        slot_ctr = np.zeros((len(camps), max_slots))
        for i, c in enumerate(camps):
            ctr = plat[c.platform].position_ctr
            slot_ctr[i, : len(ctr)] = ctr
        hour = np.array([plat[c.platform].hour_profile for c in camps], dtype=float)
        dow = np.array([plat[c.platform].dow_profile for c in camps], dtype=float)
        mix = np.array([[c.segment_mix.get(s, 0.0) for s in seg_names] for c in camps])
        seg_cdf = np.cumsum(mix, axis=1)
        seg_cdf[:, -1] = 1.0  # guard float round-off so every uniform maps to a segment
        comps = params.competitors
        id_pos = {c.id: i for i, c in enumerate(camps)}
        comp_campaigns = np.zeros((len(comps), len(camps)), dtype=bool)
        for k, comp in enumerate(comps):
            for cid in comp.campaigns:
                comp_campaigns[k, id_pos[cid]] = True
        kmax = max(1, int(comp_campaigns.sum(axis=0).max(initial=0)))
        comp_idx = -np.ones((len(camps), kmax), dtype=np.int64)
        for i in range(len(camps)):
            ks = np.flatnonzero(comp_campaigns[:, i])
            comp_idx[i, : len(ks)] = ks
        log_median = np.log(np.array([k.median_bid for k in comps], dtype=float))
        log_quality = np.log(np.array([k.quality for k in comps], dtype=float))
        with np.errstate(divide="ignore"):
            log_hour = np.log(np.array([k.hour_mult for k in comps], dtype=float).reshape(len(comps), HOURS))
            log_dev = np.log(np.array([k.device_mult for k in comps], dtype=float).reshape(len(comps), len(DEVICES)))
        sigma = np.array([k.sigma for k in comps], dtype=float)
        k_safe = np.maximum(comp_idx, 0)
        table = np.empty((len(camps), HOURS, len(DEVICES), kmax))
        for i in range(len(camps)):
            for j in range(kmax):
                k = comp_idx[i, j]
                if k < 0:
                    table[i, :, :, j] = -np.inf
                else:
                    table[i, :, :, j] = log_median[k] + log_quality[k] + log_hour[k][:, None] + log_dev[k][None, :]
        dev_cdf = np.cumsum(params.device_shares)
        dev_cdf[-1] = 1.0

        def arr(values, dtype=float) -> np.ndarray:
            return np.asarray(list(values), dtype=dtype)

        return cls(
            params=params,
            campaign_ids=arr((c.id for c in camps), np.int64),
            is_search=arr((plat[c.platform].kind == "search" for c in camps), bool),
            n_slots=arr((len(plat[c.platform].position_ctr) for c in camps), np.int64),
            slot_ctr=slot_ctr,
            reserve=arr(plat[c.platform].reserve_price for c in camps),
            session_rate=arr(plat[c.platform].session_rate for c in camps),
            quality=arr(c.quality for c in camps),
            ctr_mult=arr(c.ctr_mult for c in camps),
            cvr_mult=arr(c.cvr_mult for c in camps),
            fatigue=arr(c.fatigue_per_k_impr for c in camps),
            base_opps=arr(c.opportunities_per_day for c in camps),
            hour_share=hour / hour.sum(axis=1, keepdims=True),
            dow_factor=dow / dow.mean(axis=1, keepdims=True),
            seg_cdf=seg_cdf,
            seg_ctr=arr(s.ctr_mult for s in params.segments),
            seg_cvr=arr(s.cvr for s in params.segments),
            seg_comp=arr(s.competition_mult for s in params.segments),
            lag_min=arr((s.lag_days_min for s in params.segments), np.int64),
            lag_max=arr((s.lag_days_max for s in params.segments), np.int64),
            value_median=arr(s.value_median for s in params.segments),
            value_sigma=arr(s.value_sigma for s in params.segments),
            device_cdf=dev_cdf,
            dev_ctr=arr(params.device_ctr_mult),
            dev_cvr=arr(params.device_cvr_mult),
            comp_idx=comp_idx,
            comp_log_median=np.log(arr(k.median_bid for k in comps)),
            comp_sigma=arr(k.sigma for k in comps),
            comp_quality=arr(k.quality for k in comps),
            comp_log_hour=np.log(np.array([k.hour_mult for k in comps], dtype=float).reshape(len(comps), HOURS)),
            comp_log_device=np.log(
                np.array([k.device_mult for k in comps], dtype=float).reshape(len(comps), len(DEVICES))
            ),
            comp_adapt=arr(k.adapt_rate for k in comps),
            comp_drift=arr(k.drift_sigma for k in comps),
            comp_campaigns=comp_campaigns,
            rival_base_table=table,
            rival_sigma_table=np.where(comp_idx >= 0, sigma[k_safe] if len(sigma) else 0.0, 0.0),
        )
