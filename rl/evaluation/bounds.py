"""The statistics of an evaluation: the paired confidence interval of two policies' scores over the same episodes,
and the episode LP bound (see `rl.evaluation.evaluate`'s docstring). Pure functions of numbers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from rl.policies.oracle import day_score

__all__ = ["PairedInterval", "episode_lp_bound", "paired_interval"]


@dataclass(frozen=True)
class PairedInterval:
    mean: float
    low: float
    high: float
    n: int
    level: float

    def to_dict(self) -> dict:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n, "level": self.level}


def paired_interval(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> PairedInterval:
    """t-interval of mean(a − b) over paired samples (one pair per episode)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = len(d)
    if n == 0:
        raise ValueError("paired_interval needs at least one pair")
    mean = float(d.mean())
    if n == 1:
        return PairedInterval(mean, -math.inf, math.inf, 1, level)
    se = float(d.std(ddof=1) / math.sqrt(n))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * se)
    return PairedInterval(mean, mean - half, mean + half, n, level)


def episode_lp_bound(day_costs: Sequence[np.ndarray], daily_budget: float, target_cpa: float) -> dict:
    """Upper bound on an episode's score from each day's converting-opportunity costs (see module docstring)."""
    unit_costs, qty = [], []
    for costs in day_costs:
        costs = np.sort(np.asarray(costs, dtype=float))
        prefix = np.cumsum(costs)
        k = int(np.searchsorted(prefix, daily_budget, side="right"))  # items fully affordable
        unit_costs.append(costs[:k])
        qty.append(np.ones(k))
        if k < len(costs):
            rest = daily_budget - (prefix[k - 1] if k else 0.0)
            if rest > 0:
                unit_costs.append(costs[k : k + 1])
                qty.append(np.array([rest / costs[k]]))
    c = np.concatenate(unit_costs) if unit_costs else np.zeros(0)
    q = np.concatenate(qty) if qty else np.zeros(0)
    order = np.argsort(c, kind="stable")
    c, q = c[order], q[order]
    n_cum = np.concatenate([[0.0], np.cumsum(q)])
    s_cum = np.concatenate([[0.0], np.cumsum(c * q)])
    candidates = list(zip(n_cum, s_cum, strict=True))
    t = target_cpa
    for j in range(len(c)):
        if c[j] > t:  # average CPA rises through the target on this piece
            step = (t * n_cum[j] - s_cum[j]) / (c[j] - t)
            if 0 <= step <= q[j]:
                candidates.append((n_cum[j] + step, s_cum[j] + c[j] * step))
    n_best, s_best = max(candidates, key=lambda ns: day_score(ns[0], ns[1], t))
    return {"score": day_score(n_best, s_best, t), "conversions": float(n_best), "spend": float(s_best)}
