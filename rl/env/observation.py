"""Observations built only from what the ad platforms and GA4 report, plus our own settings and the calendar.

`Reports` is the whole input: per market and day, spend, impressions, clicks and opportunities (platforms report
impressions / eligible impressions as search impression share), the budget we had set, and conversions by click
date broken down by how many days after the click they happened — of which only those already happened are ever
read. Nothing hidden (segments, true conversion rates, eventual conversions, rival bids) is in it.

Feature units and scaling (all float32, roughly unit range; B = account daily budget, C = campaigns,
T = target CPA). "Nd" windows end yesterday; per-day means for volumes, totals for conversions:
  spend_*              spend per day / (B / C)
  budget_utilisation_1d yesterday's spend / yesterday's budget (0 with a zero budget)
  impressions_*, clicks_*  log1p(per-day count) / 10 and / 6
  impression_share_*   impressions / opportunities (0 without opportunities); 0 for social campaigns, whose
                       platforms (Meta, TikTok) report no impression share (`Reports.share_reported`)
  cpc_7d               spend / clicks / (T / 20)  (0 without clicks)
  conversions_*        log1p(reported conversions by click date in the window) / 3 and / 4
  maturity_7d / _28d   share of the window's clicks older than 3 / 14 days (reported counts are nearly final)
  target_over_cpa_28d  reported conversions × T / spend, capped at 10 (0 without conversions or spend)
  budget, bid          the settings in force: budget / (B / C); log(bid / reference bid) / log(bid range)
  dow_sin, dow_cos     day of week of the day being decided
  budget_at_target_cpa log1p(B / T) / 4 (conversions a full budget buys at target CPA)
  account_*            the same over all campaigns (spend / B)
  episode_progress     days done / episode length
  episode_spend        spend so far / (B × episode length)
  episode_conversions  reported conversions of episode clicks so far / ((B / T) × episode length)
  episode_target_over_cpa  the same conversions × T / spend so far, capped at 10
  mod_<k>              the device / hour-block modifier in force: log(modifier) / log(modifier range), 0 for
                       campaigns without modifiers (k = mobile, desktop, tablet, h00_04, …)
  spend_<k>_28d, clicks_<k>_28d, conversions_<k>_28d
                       the trailing 28 days broken down by device and by hour block (of the click): spend per day
                       / (B / C), log1p(clicks per day) / 6, log1p(reported conversions by click date) / 4 — what
                       the device and hourly reports (`fct_device_daily`, `fct_campaign_hourly`) hold
`decode` inverts the scaling (for rule-based policies working from the observation).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np

from rl.env.schema import BREAKDOWN_METRICS, ObservationSchema, breakdown_keys

OBS_BOUND = 100.0  # observation space bounds (±); features stay far inside
RATIO_CAP = 10.0
MATURITY_AGE = {7: 3, 28: 14}  # window → clicks older than this many days count as mature

# name → (kind, scale): "linear" x / scale, "log" log1p(x) / scale, "raw" as is.
_TRANSFORMS: dict[str, tuple[str, float]] = {
    "impressions_1d": ("log", 10.0),
    "impressions_7d": ("log", 10.0),
    "clicks_1d": ("log", 6.0),
    "clicks_7d": ("log", 6.0),
    "conversions_7d": ("log", 3.0),
    "conversions_28d": ("log", 4.0),
    "account_conversions_28d": ("log", 5.0),
    "budget_at_target_cpa": ("log", 4.0),
}
_BREAKDOWN_TRANSFORMS: dict[str, tuple[str, float]] = {
    "spend": ("raw", 1.0),
    "clicks": ("log", 6.0),
    "conversions": ("log", 4.0),
}


@dataclass
class Reports:
    """Report history of M markets over H days (warm-up + episode), as the platforms would show it.

    spend, impressions, clicks, opportunities, budgets: [M, H, C]; conv_by_lag: [M, H, C, L] conversions by click
    day and by days-after-click (only cells with click day + lag < today are read). `today` is the index of the
    day about to be decided (days < today are reported). budgets_now, bids_now: [M, C] in force."""

    spend: np.ndarray
    impressions: np.ndarray
    clicks: np.ndarray
    opportunities: np.ndarray
    budgets: np.ndarray
    conv_by_lag: np.ndarray
    today: int
    warmup_days: int
    episode_days: int
    first_date: dt.date  # date of history index 0
    budgets_now: np.ndarray
    bids_now: np.ndarray
    ref_bids: np.ndarray
    bid_range: float
    daily_budget: float
    target_cpa: float
    share_reported: np.ndarray | None = None  # [C] bool: the platform reports impression share (search only)
    spend_by: np.ndarray | None = None
    clicks_by: np.ndarray | None = None
    conv_by_lag_by: np.ndarray | None = None
    modifiers_now: np.ndarray | None = None
    modifier_range: float = 4.0

    @classmethod
    def empty(cls, n_markets, n_days, n_campaigns, n_lags, n_breakdown: int = 9, **kw) -> Reports:
        z = lambda *s: np.zeros(s)  # noqa: E731
        m, h, c, k = n_markets, n_days, n_campaigns, n_breakdown
        kw.setdefault("modifiers_now", np.ones((m, c, k)))
        return cls(
            z(m, h, c),
            z(m, h, c),
            z(m, h, c),
            z(m, h, c),
            z(m, h, c),
            z(m, h, c, n_lags),
            today=0,
            spend_by=z(m, h, c, k),
            clicks_by=z(m, h, c, k),
            conv_by_lag_by=z(m, h, c, k, n_lags),
            **kw,
        )

    @property
    def date(self) -> dt.date:
        return self.first_date + dt.timedelta(days=self.today)

    def window(self, days: int) -> slice:
        return slice(max(self.today - days, 0), self.today)

    def reported_by_click_day(self, days: int) -> np.ndarray:
        """[M, W, C] conversions of each click day in the trailing window that have happened by today (W ≤ days)."""
        return self._reported(self.conv_by_lag, days)

    def reported_breakdown(self, days: int) -> np.ndarray:
        """[M, C, K] conversions by device / hour block of the trailing window's clicks that have happened by today."""
        return self._reported(self.conv_by_lag_by, days).sum(axis=1)

    def _reported(self, by_lag: np.ndarray, days: int) -> np.ndarray:
        w = self.window(days)
        click_days = np.arange(w.start, w.stop)
        rest = by_lag.shape[2:-1]
        if len(click_days) == 0:
            return np.zeros(by_lag.shape[:1] + (0,) + rest)
        window = by_lag[:, w]  # [M, W, ..., L]
        # a click on day d has had days d .. today−1 for its conversions: lags 0 .. today−1−d
        max_lag = np.minimum(self.today - 1 - click_days, window.shape[-1] - 1)
        lags = np.arange(window.shape[-1])
        happened = (lags[None, :] <= max_lag[:, None]).astype(float)  # [W, L]
        shape = (1, len(click_days)) + (1,) * len(rest) + (window.shape[-1],)
        return (window * happened.reshape(shape)).sum(axis=-1)

    def happened_on(self, day: int, first_click_day: int = 0) -> np.ndarray:
        """[M, C] conversions that happened on `day` from clicks on days ≥ first_click_day."""
        n_lags = self.conv_by_lag.shape[-1]
        click_days = np.arange(max(first_click_day, day - n_lags + 1), day + 1)
        if len(click_days) == 0:
            return np.zeros((self.spend.shape[0], self.spend.shape[2]))
        return self.conv_by_lag[:, click_days, :, day - click_days].sum(axis=0)

    def episode_reported(self) -> np.ndarray:
        """[M] conversions of episode clicks (click day ≥ warm-up) that have happened by today."""
        days = self.today - self.warmup_days
        if days <= 0:
            return np.zeros(self.spend.shape[0])
        return self.reported_by_click_day(days).sum(axis=(1, 2))

    def episode_spend(self) -> np.ndarray:
        return self.spend[:, self.warmup_days : self.today].sum(axis=(1, 2))


def _ratio(num: np.ndarray, den: np.ndarray, cap: float = np.inf) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.minimum(np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0), cap)


def _share_mask(rep: Reports, n_c: int) -> np.ndarray:
    """[C] 1.0 where the platform reports impression share, 0.0 elsewhere (social platforms report none)."""
    if rep.share_reported is None:
        raise ValueError("Reports.share_reported is required: which campaigns' platforms report impression share")
    mask = np.asarray(rep.share_reported, dtype=bool)
    if mask.shape != (n_c,):
        raise ValueError(f"Reports.share_reported must have one flag per campaign ({n_c}), got shape {mask.shape}")
    return mask.astype(float)


def reports_share(params) -> np.ndarray:
    """[C] which of the market's campaigns (in its order) report impression share: search platforms only."""
    return np.array([params.platform(c.platform).kind == "search" for c in params.campaigns], dtype=bool)


def campaign_values(rep: Reports) -> dict[str, np.ndarray]:
    """Per-campaign features before scaling, each [M, C]."""
    n_c = rep.spend.shape[2]
    out: dict[str, np.ndarray] = {}
    w1, w7, w28 = rep.window(1), rep.window(7), rep.window(28)
    share = rep.daily_budget / n_c
    for name, w, days in (("1d", w1, 1), ("7d", w7, 7), ("28d", w28, 28)):
        out[f"spend_{name}"] = rep.spend[:, w].sum(axis=1) / days / share
    out["budget_utilisation_1d"] = _ratio(rep.spend[:, w1].sum(axis=1), rep.budgets[:, w1].sum(axis=1))
    for name, w, days in (("1d", w1, 1), ("7d", w7, 7)):
        out[f"impressions_{name}"] = rep.impressions[:, w].sum(axis=1) / days
        out[f"clicks_{name}"] = rep.clicks[:, w].sum(axis=1) / days
        shown = _ratio(rep.impressions[:, w].sum(axis=1), rep.opportunities[:, w].sum(axis=1))
        out[f"impression_share_{name}"] = shown * _share_mask(rep, n_c)
    out["cpc_7d"] = _ratio(rep.spend[:, w7].sum(axis=1), rep.clicks[:, w7].sum(axis=1)) / (rep.target_cpa / 20.0)
    for days in (7, 28):
        reported = rep.reported_by_click_day(days)  # [M, W, C]
        out[f"conversions_{days}d"] = reported.sum(axis=1)
        w = rep.window(days)
        ages = rep.today - np.arange(w.start, w.stop)  # yesterday has age 1
        clicks = rep.clicks[:, w]
        out[f"maturity_{days}d"] = _ratio(clicks[:, ages > MATURITY_AGE[days]].sum(axis=1), clicks.sum(axis=1))
    out["target_over_cpa_28d"] = _ratio(
        out["conversions_28d"] * rep.target_cpa, rep.spend[:, w28].sum(axis=1), RATIO_CAP
    )
    out["budget"] = rep.budgets_now / share
    out["bid"] = np.log(rep.bids_now / rep.ref_bids) / math.log(rep.bid_range)
    if rep.spend_by is not None:
        keys = breakdown_keys(rep.spend_by.shape[-1] - 3)
        mods = np.log(np.maximum(rep.modifiers_now, 1e-3)) / math.log(rep.modifier_range)
        spend_by = rep.spend_by[:, w28].sum(axis=1) / 28 / share  # [M, C, K]
        clicks_by = rep.clicks_by[:, w28].sum(axis=1) / 28
        conv_by = rep.reported_breakdown(28)
        for i, k in enumerate(keys):
            out[f"mod_{k}"] = mods[:, :, i]
            out[f"spend_{k}_28d"] = spend_by[:, :, i]
            out[f"clicks_{k}_28d"] = clicks_by[:, :, i]
            out[f"conversions_{k}_28d"] = conv_by[:, :, i]
    return out


def global_values(rep: Reports, campaign: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    n_m = rep.spend.shape[0]
    big_b, t = rep.daily_budget, rep.target_cpa
    angle = 2 * math.pi * rep.date.weekday() / 7
    ones = np.ones(n_m)
    spend7 = rep.spend[:, rep.window(7)].sum(axis=(1, 2))
    spend28 = rep.spend[:, rep.window(28)].sum(axis=(1, 2))
    conv7 = campaign["conversions_7d"].sum(axis=1)
    conv28 = campaign["conversions_28d"].sum(axis=1)
    done = max(rep.today - rep.warmup_days, 0)
    ep_spend, ep_conv = rep.episode_spend(), rep.episode_reported()
    return {
        "dow_sin": math.sin(angle) * ones,
        "dow_cos": math.cos(angle) * ones,
        "budget_at_target_cpa": big_b / t * ones,
        "account_spend_7d": spend7 / 7 / big_b,
        "account_conversions_28d": conv28,
        "account_target_over_cpa_7d": _ratio(conv7 * t, spend7, RATIO_CAP),
        "account_target_over_cpa_28d": _ratio(conv28 * t, spend28, RATIO_CAP),
        "episode_progress": done / rep.episode_days * ones,
        "episode_spend": ep_spend / (big_b * rep.episode_days),
        "episode_conversions": ep_conv / (big_b / t * rep.episode_days),
        "episode_target_over_cpa": _ratio(ep_conv * t, ep_spend, RATIO_CAP),
    }


def _transform(name: str) -> tuple[str, float]:
    if name in _TRANSFORMS:
        return _TRANSFORMS[name]
    metric = name.split("_", 1)[0]
    if name.endswith("_28d") and metric in BREAKDOWN_METRICS:
        return _BREAKDOWN_TRANSFORMS[metric]
    return ("raw", 1.0)


def _scale(name: str, x: np.ndarray) -> np.ndarray:
    kind, s = _transform(name)
    return np.log1p(np.maximum(x, 0.0)) / s if kind == "log" else x


def _unscale(name: str, x: np.ndarray) -> np.ndarray:
    kind, s = _transform(name)
    return np.expm1(x * s) if kind == "log" else x


def build_observation(schema: ObservationSchema, rep: Reports) -> np.ndarray:
    """[M, schema.obs_size] float32 observation for the morning of day `rep.today`."""
    camp = campaign_values(rep)
    glob = global_values(rep, camp)
    n_m, n_c = rep.spend.shape[0], schema.n_campaigns
    per_campaign = np.stack([_scale(f, camp[f]) for f in schema.campaign_features], axis=-1)  # [M, C, F]
    glob_vec = np.stack([_scale(f, glob[f]) for f in schema.global_features], axis=-1)  # [M, G]
    obs = np.concatenate([per_campaign.reshape(n_m, n_c * len(schema.campaign_features)), glob_vec], axis=1)
    return np.clip(obs, -OBS_BOUND, OBS_BOUND).astype(np.float32)


def decode(schema: ObservationSchema, obs: np.ndarray) -> dict[str, np.ndarray]:
    """Unscaled features from observations [N, D]: per-campaign ones as [N, C], global ones as [N]."""
    obs = np.atleast_2d(np.asarray(obs, dtype=float))
    if obs.shape[-1] != schema.obs_size:
        raise ValueError(f"observation has {obs.shape[-1]} values, the schema expects {schema.obs_size}")
    n_f = len(schema.campaign_features)
    camp = obs[:, : schema.n_campaigns * n_f].reshape(len(obs), schema.n_campaigns, n_f)
    out = {f: _unscale(f, camp[:, :, j]) for j, f in enumerate(schema.campaign_features)}
    for f in schema.global_features:
        out[f] = _unscale(f, obs[:, schema.global_index(f)])
    return out
