"""The reward: increments of the evaluation score computed on what has been *reported* so far.

The evaluation score of an episode is

    score = N × min(1, (target CPA / CPA)²),   CPA = S / N,

with N the conversions caused by the episode's clicks and S the episode's spend (the engine never spends above a
campaign's budget and the guardrails keep the budgets' total within the account budget). The score is not a sum
over days, so the reward is shaped as the day-to-day increment of the same formula evaluated on the reported
running totals:

    Φ_t = score(N_t, S_t),   r_t = reward_scale × (Φ_t − Φ_{t−1}),

where N_t counts the conversions of episode clicks that have *happened* by the end of day t (a conversion adds to
the reward on the day it occurs — its click date + lag — never earlier) and S_t is the spend through day t. The
return telescopes to reward_scale × score(N_T, S_T).

Conversions lag clicks by up to weeks, so at the last decided day many are still in flight, and because the CPA
factor is squared, a score on reported-so-far conversions punishes over-target policies far more than under-target
ones (it would rank a policy at 2× target CPA below one that spends almost nothing). The environment therefore
ends an episode with a *settle period*: after the last decided day the campaigns are paused and the simulated clock
runs on `settle_days` (default: the longest lag) within the final step, whose reward counts the conversions
happening in that period — reported by the end of the transition, never before they happen. Then N_T is every
conversion of the episode's clicks, the return is exactly reward_scale × the evaluation score, and the episode
terminates. With settle_days = 0 (or shorter than the longest lag) the episode is truncated instead and a learner
bootstraps the in-flight conversions from the value of the final observation.

While the running CPA is at or below target each conversion is worth exactly +reward_scale and spend is free;
above target, extra spend without conversions is penalised through the CPA factor. Conversions of clicks made
before the episode (the warm-up) never enter N.

reward_scale defaults to target CPA / account daily budget, i.e. 1 per "a day's budget worth of conversions at
target CPA" (≈ 1 per step for a policy buying at target CPA).
"""

from __future__ import annotations

import numpy as np


def score(conversions: np.ndarray, spend: np.ndarray, target_cpa: float) -> np.ndarray:
    """Vectorised `rl.policies.oracle.day_score`: N × min(1, (target / (S / N))²); 0 without conversions."""
    n = np.asarray(conversions, dtype=float)
    s = np.asarray(spend, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(s > 0, np.minimum(1.0, (target_cpa * n / np.where(s > 0, s, 1.0)) ** 2), 1.0)
    return np.where(n > 0, n * factor, 0.0)


def default_reward_scale(daily_budget: float, target_cpa: float) -> float:
    return float(target_cpa / daily_budget)
