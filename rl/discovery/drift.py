"""How far the patterns moved between two discoveries, in a few interpretable numbers, and which moved too far.

Every measure is 0 for identical patterns and grows with the change; a measure is left out when either side lacks
what it needs (e.g. a campaign without conversions has no CPA):

  hour_of_day.<scope>.<key>.<metric>.tv   total variation distance between the two hour-of-day share vectors
                                          (0…1: the part of the volume that moved to other hours)
  hour_of_day.<...>.peak_shift_hours      circular distance between the two peak hours (0…12)
  hour_of_day.max_campaign_tv             the largest campaign clicks TV
  day_of_week.<scope>.<key>.<metric>.tv   TV distance between the weekday profiles (index / 7)
  devices.ranking_distance                normalised Kendall distance of the device rankings (share of device
                                          pairs whose order flipped, 0…1)
  devices.max_rel_cvr_change              largest |current / previous − 1| of a device conversion rate
  channels.account.cpa_rel_change         |current / previous − 1| of the account CPA
  channels.cpa_rel_change.<campaign>      the same per campaign; channels.max_cpa_rel_change is the largest
  conversion_lag.max_mean_lag_change_days largest |Δ mean lag| of a campaign, in days
  conversion_lag.order_distance           normalised Kendall distance of the campaigns' lag order
  segments.k_change                       |Δ number of segments|
  segments.membership_change              share of unit pairs whose together/apart status changed (1 − Rand index)
"""

from __future__ import annotations

import fnmatch
import itertools
from collections.abc import Mapping

import numpy as np

from rl.discovery.schema import DiscoveredPatterns

DEFAULT_BOUNDS: dict[str, float] = {
    "hour_of_day.account.all.clicks.tv": 0.10,
    "hour_of_day.max_campaign_tv": 0.20,
    "day_of_week.account.all.clicks.tv": 0.05,
    "devices.ranking_distance": 0.0,
    "devices.max_rel_cvr_change": 0.30,
    "channels.account.cpa_rel_change": 0.25,
    "channels.max_cpa_rel_change": 0.50,
    "conversion_lag.max_mean_lag_change_days": 2.0,
    "conversion_lag.order_distance": 0.25,
    "segments.k_change": 1.0,
    "segments.membership_change": 0.25,
}


def total_variation(p: list[float] | np.ndarray, q: list[float] | np.ndarray) -> float:
    """½ Σ |p − q| of two distributions (each normalised to sum 1)."""
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    if p.shape != q.shape:
        raise ValueError(f"distributions of different lengths: {p.shape} vs {q.shape}")
    return float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


def kendall_distance(a: list[str], b: list[str]) -> float:
    """Share of the pairs of items common to both orderings that appear in opposite order (0 = same order)."""
    common = [x for x in a if x in set(b)]
    pos = {x: i for i, x in enumerate(b)}
    pairs = list(itertools.combinations(common, 2))
    if not pairs:
        return 0.0
    return sum(pos[x] > pos[y] for x, y in pairs) / len(pairs)


def _rel(prev: float | None, cur: float | None) -> float | None:
    if prev is None or cur is None or prev <= 0:
        return None
    return abs(cur / prev - 1.0)


def _hour_drift(previous: DiscoveredPatterns, current: DiscoveredPatterns, out: dict[str, float]) -> None:
    prev = {(p.scope, p.key, p.metric): p for p in previous.hour_of_day.profiles}
    campaign_tvs = []
    for p in current.hour_of_day.profiles:
        q = prev.get((p.scope, p.key, p.metric))
        if q is None:
            continue
        name = f"hour_of_day.{p.scope}.{p.key}.{p.metric}"
        tv = total_variation(q.shares, p.shares)
        out[f"{name}.tv"] = tv
        d = abs(p.peak_hour - q.peak_hour)
        out[f"{name}.peak_shift_hours"] = float(min(d, 24 - d))
        if p.scope == "campaign" and p.metric == "clicks":
            campaign_tvs.append(tv)
    if campaign_tvs:
        out["hour_of_day.max_campaign_tv"] = max(campaign_tvs)


def _dow_drift(previous: DiscoveredPatterns, current: DiscoveredPatterns, out: dict[str, float]) -> None:
    prev = {(p.scope, p.key, p.metric): p for p in previous.day_of_week.profiles}
    for p in current.day_of_week.profiles:
        q = prev.get((p.scope, p.key, p.metric))
        if q is not None:
            out[f"day_of_week.{p.scope}.{p.key}.{p.metric}.tv"] = total_variation(q.index, p.index)


def _device_drift(previous: DiscoveredPatterns, current: DiscoveredPatterns, out: dict[str, float]) -> None:
    try:
        prev, cur = previous.devices.get(), current.devices.get()
    except KeyError:
        return
    out["devices.ranking_distance"] = kendall_distance(prev.ranking, cur.ranking)
    before = {d.device: d.conversion_rate for d in prev.devices}
    changes = [_rel(before.get(d.device), d.conversion_rate) for d in cur.devices]
    changes = [c for c in changes if c is not None]
    if changes:
        out["devices.max_rel_cvr_change"] = max(changes)


def _channel_drift(previous: DiscoveredPatterns, current: DiscoveredPatterns, out: dict[str, float]) -> None:
    account = _rel(previous.channels.account.cpa, current.channels.account.cpa)
    if account is not None:
        out["channels.account.cpa_rel_change"] = account
    before = {c.key: c.cpa for c in previous.channels.campaigns}
    changes = []
    for c in current.channels.campaigns:
        r = _rel(before.get(c.key), c.cpa)
        if r is not None:
            out[f"channels.cpa_rel_change.{c.key}"] = r
            changes.append(r)
    if changes:
        out["channels.max_cpa_rel_change"] = max(changes)


def _lag_drift(previous: DiscoveredPatterns, current: DiscoveredPatterns, out: dict[str, float]) -> None:
    before = {c.campaign: c.mean_lag_days for c in previous.conversion_lag.campaigns}
    deltas = [
        abs(c.mean_lag_days - before[c.campaign])
        for c in current.conversion_lag.campaigns
        if c.mean_lag_days is not None and before.get(c.campaign) is not None
    ]
    if deltas:
        out["conversion_lag.max_mean_lag_change_days"] = max(deltas)
    out["conversion_lag.order_distance"] = kendall_distance(previous.conversion_lag.order, current.conversion_lag.order)


def _segment_drift(previous: DiscoveredPatterns, current: DiscoveredPatterns, out: dict[str, float]) -> None:
    out["segments.k_change"] = float(abs(current.segments.choice.chosen_k - previous.segments.choice.chosen_k))
    label_prev = {m.unit: s.segment_id for s in previous.segments.segments for m in s.members}
    label_cur = {m.unit: s.segment_id for s in current.segments.segments for m in s.members}
    units = sorted(set(label_prev) & set(label_cur))
    pairs = list(itertools.combinations(units, 2))
    if pairs:
        changed = sum((label_prev[a] == label_prev[b]) != (label_cur[a] == label_cur[b]) for a, b in pairs)
        out["segments.membership_change"] = changed / len(pairs)


def drift(previous: DiscoveredPatterns, current: DiscoveredPatterns) -> dict[str, float]:
    """Interpretable drift measures from `previous` to `current` (see the module docstring), sorted by name."""
    out: dict[str, float] = {}
    for part in (_hour_drift, _dow_drift, _device_drift, _channel_drift, _lag_drift, _segment_drift):
        part(previous, current, out)
    return dict(sorted(out.items()))


def exceeds(drift: Mapping[str, float], bounds: Mapping[str, float] | None = None) -> list[str]:
    """One line per drift measure above its bound: `"<measure> = <value> > <bound> (bound '<pattern>')"`.

    A bound's key is a measure name or an fnmatch pattern (`channels.cpa_rel_change.*`); a measure matched by
    several bounds is checked against each. Measures without a bound are not checked."""
    bounds = DEFAULT_BOUNDS if bounds is None else bounds
    found = []
    for pattern, bound in bounds.items():
        for name in sorted(fnmatch.filter(drift.keys(), pattern)):
            value = drift[name]
            if value > bound:
                found.append(f"{name} = {value:.4g} > {bound:.4g} (bound {pattern!r})")
    return found
