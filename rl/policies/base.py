"""The common policy interface, an episode runner and a fair grid-search helper.

Every policy — rule-based baselines, SB3 models, the clairvoyant oracle — is driven the same way:

    policy.reset(n_envs)               # before an episode; clears any per-env memory
    action = policy.act(obs)           # obs float32 [n_envs, D] → action [n_envs, 2C] in [-1, 1]

so one evaluator can run all of them on `BatchedBiddingVecEnv` (or any SB3 VecEnv over `BiddingEnv`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Policy(Protocol):
    name: str

    def reset(self, n_envs: int) -> None: ...

    def act(self, obs: np.ndarray) -> np.ndarray: ...


class OraclePolicy:
    """The per-day clairvoyant oracle as a `Policy`: it ignores the observation and asks the environment (which
    holds the day's draws) for the hindsight-best settings. Works with `BiddingEnv` and `BatchedBiddingVecEnv`
    (both expose `oracle_actions(budget_step)`); the guardrails still apply to its actions."""

    def __init__(self, env, budget_step: float = 5.0, name: str = "oracle"):
        self.env = env
        self.budget_step = budget_step
        self.name = name

    def reset(self, n_envs: int) -> None:
        pass

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.env.oracle_actions(self.budget_step)


class InformedOraclePolicy:
    """The greedy informed oracle as a `Policy`: each day the grid settings whose expected conversions and spend
    score best given the market's true parameters and state (not the day's draws), from the environment's
    `informed_actions`. A diagnostic, not a ceiling (`rl.policies.ceiling` is); evaluation only."""

    def __init__(self, env, replicates: int = 8, budget_step: float = 5.0, name: str = "informed_oracle"):
        self.env = env
        self.replicates = replicates
        self.budget_step = budget_step
        self.name = name

    def reset(self, n_envs: int) -> None:
        pass

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.env.informed_actions(self.replicates, self.budget_step)


@dataclass(frozen=True)
class EpisodeOutcome:
    """One reset cycle of a VecEnv under a policy: per env the episode summary (true score etc.) and return."""

    summaries: list[dict]
    returns: np.ndarray  # [n_envs] sum of rewards
    day_scores: np.ndarray | None = None  # [n_envs, days] if requested

    @property
    def scores(self) -> np.ndarray:
        return np.array([s["score"] for s in self.summaries])


def run_episode(policy: Policy, venv, seed: int | None = None, options: dict | None = None) -> EpisodeOutcome:
    """Reset `venv` (seeded: the same seed gives the same markets and days to every policy — common random
    numbers), run until every env has finished one episode, and collect the final infos."""
    if seed is not None:
        venv.seed(seed)
    if options is not None:
        venv.set_options(options)
    obs = venv.reset()
    n = venv.num_envs
    policy.reset(n)
    returns = np.zeros(n)
    summaries: list[dict | None] = [None] * n
    finished = np.zeros(n, dtype=bool)
    while not finished.all():
        obs, rewards, dones, infos = venv.step(policy.act(obs))
        returns += np.where(finished, 0.0, rewards)
        for i in np.flatnonzero(dones & ~finished):
            summaries[i] = infos[i]["episode_summary"]
        finished |= dones
    return EpisodeOutcome(summaries=list(summaries), returns=returns)


@dataclass(frozen=True)
class TuneResult:
    best: dict[str, Any]
    best_score: float
    table: list[tuple[dict[str, Any], float]]  # every grid point with its mean score, in grid order


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(grid[k] for k in keys))]


def tune(factory: Callable[..., Policy], grid: Mapping[str, Sequence[Any]], venv, seeds: Sequence[int]) -> TuneResult:
    """Grid search: every point runs the same training `seeds` on the same env (common random numbers) and is
    ranked by the mean true episode score over all seeds and markets; ties go to the earlier grid point."""
    if not seeds:
        raise ValueError("tune needs at least one training seed")
    table = []
    for point in grid_points(grid):
        policy = factory(**point)
        scores = [run_episode(policy, venv, seed).scores.mean() for seed in seeds]
        table.append((point, float(np.mean(scores))))
    best, best_score = max(table, key=lambda row: row[1])
    return TuneResult(best=best, best_score=best_score, table=table)
