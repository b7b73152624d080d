"""Evaluating policies on held-out seeds with common random numbers.

    ev = evaluate({"policy": trained, "static": ..., ...}, venv, seeds=[1001, 1002], policy="policy")
    ev.table()                 # per policy: mean score, conversions, spend, CPA, days over budget
    ev.comparisons             # policy − each baseline: paired mean difference and confidence interval
    gate(ev)                   # rl.training.model_registry.gate

Every policy, the clairvoyant oracle (`OraclePolicy`: each day's hindsight-best budgets and bids, applied exactly —
in a twin environment without the per-day step limit, `exact_oracle_env`) and the LP bound run the *same*
episodes: each seed resets the environment to the same markets, start date and random numbers (`run_episode(…,
seed)`). An episode (one market of one seed) is the unit of the paired
comparison: differences of the policy's and a baseline's scores on the same episode, t-interval over episodes.

The *informed planning ceiling* (`rl.policies.ceiling`, `ceiling=True`) runs in the evaluation environment itself —
the same action space, step limits and modifier guardrails as every policy — knowing the true parameters and state
but not the day's draws, and planning the whole episode. It is the yardstick a learned policy is measured against.
The clairvoyant oracle is reported beside it as what it is: hindsight about which visitors convert, never a target.
With `informed_replicates > 0` the greedy one-day *informed oracle* runs too (`InformedOraclePolicy`, in the twin
environment without step limits), as a diagnostic.

The episode LP bound is the per-auction knapsack over the whole episode along the oracle's trajectory: every
converting opportunity of every day at its cheapest converting slot price, each day's purchases within the daily
budget, bought cheapest first across days, fractionally, maximising the episode score. The oracle's episode is one
feasible point of that relaxation, so LP bound ≥ oracle on every episode.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import math
import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from rl.env.vec_env import BatchedBiddingVecEnv
from rl.evaluation.bounds import PairedInterval, episode_lp_bound, paired_interval
from rl.policies.base import InformedOraclePolicy, OraclePolicy, Policy
from rl.policies.ceiling import InformedCeilingPolicy
from rl.policies.oracle import converting_click_costs

ORACLE = "oracle"
INFORMED_ORACLE = "informed_oracle"
INFORMED_CEILING = "informed_ceiling"
LP_BOUND = "lp_bound"
YARDSTICKS = (INFORMED_CEILING, ORACLE, INFORMED_ORACLE, LP_BOUND)
METRICS = ("score", "conversions", "spend", "cpa", "days_over_budget", "return")
BUDGET_TOLERANCE = 1e-6


def exact_oracle_env(venv) -> BatchedBiddingVecEnv:
    """A twin of `venv` (same params, sampler, schema, episode settings; same seeds give the same episodes) without
    the per-day step limit, so the oracle applies each day's hindsight-best settings exactly."""
    return BatchedBiddingVecEnv(
        venv.base_params,
        n_envs=venv.num_envs,
        config=dataclasses.replace(venv.config, max_step=None),
        schema=venv.schema,
        params_sampler=venv.params_sampler,
    )


def run_tracked(policy: Policy, venv, seed: int, on_day: Callable | None = None) -> list[dict]:
    """One seeded reset cycle of `venv` under `policy`; per market its summary plus days over budget.
    `on_day(venv)` is called before each decided day (the oracle run collects the LP bound's inputs there)."""
    venv.seed(seed)
    obs = venv.reset()
    n = venv.num_envs
    policy.reset(n)
    budget = float(venv.sim.params.daily_budget)
    over = np.zeros(n, dtype=int)
    out: list[dict | None] = [None] * n
    while True:
        if on_day is not None:
            on_day(venv)
        obs, _, dones, infos = venv.step(policy.act(obs))
        for m, info in enumerate(infos):
            over[m] += int(info["spend"] > budget * (1 + BUDGET_TOLERANCE))
        if dones.all():
            for m, info in enumerate(infos):
                s = dict(info["episode_summary"])
                s["days_over_budget"] = int(over[m])
                out[m] = s
            return out


@dataclass
class Evaluation:
    """Per policy (and "oracle", "lp_bound") per-episode arrays of every metric, in the same episode order."""

    policy: str
    baselines: list[str]
    seeds: list[int]
    n_envs: int
    episode_days: int
    params_hash: str
    results: dict[str, dict[str, list[float]]]
    level: float = 0.95
    world: dict | None = None
    extra: dict = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.results)

    def mean(self, name: str, metric: str = "score") -> float:
        vals = np.asarray(self.results[name][metric], dtype=float)
        if metric == "cpa":
            conv = np.sum(self.results[name]["conversions"])
            return float(np.sum(self.results[name]["spend"]) / conv) if conv else math.inf
        return float(vals.mean()) if len(vals) else math.nan

    @property
    def comparisons(self) -> dict[str, PairedInterval]:
        """Policy minus each baseline (paired by episode)."""
        mine = self.results[self.policy]["score"]
        return {b: paired_interval(mine, self.results[b]["score"], self.level) for b in self.baselines}

    def best_baseline(self) -> str | None:
        if not self.baselines:
            return None
        return max(self.baselines, key=lambda b: self.mean(b))

    def table(self) -> dict[str, dict[str, float]]:
        return {
            name: {
                "score": self.mean(name),
                "conversions": self.mean(name, "conversions"),
                "spend": self.mean(name, "spend"),
                "cpa": self.mean(name, "cpa"),
                "days_over_budget": float(np.sum(self.results[name].get("days_over_budget", [0]))),
            }
            for name in self.results
        }

    def to_dict(self) -> dict:
        return {
            "policy": self.policy,
            "baselines": list(self.baselines),
            "seeds": list(self.seeds),
            "n_envs": self.n_envs,
            "episode_days": self.episode_days,
            "params_hash": self.params_hash,
            "results": self.results,
            "level": self.level,
            "world": self.world,
            "extra": self.extra,
            "table": self.table(),
            "comparisons": {b: ci.to_dict() for b, ci in self.comparisons.items()},
            "best_baseline": self.best_baseline(),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> Evaluation:
        missing = {"policy", "baselines", "seeds", "n_envs", "episode_days", "params_hash", "results"} - set(d)
        if missing:
            raise ValueError(f"not an evaluation: missing keys {sorted(missing)}")
        return cls(
            policy=d["policy"],
            baselines=list(d["baselines"]),
            seeds=list(d["seeds"]),
            n_envs=int(d["n_envs"]),
            episode_days=int(d["episode_days"]),
            params_hash=str(d["params_hash"]),
            results={k: {m: list(v) for m, v in r.items()} for k, r in d["results"].items()},
            level=float(d.get("level", 0.95)),
            world=d.get("world"),
            extra=dict(d.get("extra") or {}),
        )


def evaluate(
    policies: Mapping[str, Policy],
    venv,
    seeds: Sequence[int],
    policy: str,
    oracle: bool = True,
    lp_bound: bool = True,
    oracle_budget_step: float = 5.0,
    level: float = 0.95,
    progress: Callable[[str], None] | None = None,
    informed_replicates: int = 0,
    ceiling: bool = False,
    workers: int = 1,
    known: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
) -> Evaluation:
    """Run every policy (and the yardsticks asked for: the informed planning ceiling, the clairvoyant oracle and
    LP bound, the greedy informed oracle) on the same seeded episodes. `policy` names the one compared against all
    others (the baselines). `workers` > 1 runs the seeds in that many forked processes (each seed's episodes are
    self-contained: the same results as one process, in the same order); `progress` then hears of each seed as it
    starts in a worker and as it ends. `known`: results already run on the same environment and seeds
    (`run_policies`, e.g. the baselines and yardsticks while the policy trained); they join the evaluation as they
    are, as baselines unless they are yardsticks."""
    if policy not in policies:
        raise ValueError(f"policy {policy!r} is not among the evaluated policies {sorted(policies)}")
    known = dict(known or {})
    clash = sorted(set(policies) & set(known))
    if clash:
        raise ValueError(f"{clash} are both run here and given as known results")
    results = run_policies(
        policies,
        venv,
        seeds,
        oracle=oracle,
        lp_bound=lp_bound,
        oracle_budget_step=oracle_budget_step,
        progress=progress,
        informed_replicates=informed_replicates,
        ceiling=ceiling,
        workers=workers,
    )
    episodes = len(seeds) * venv.num_envs
    for name, r in known.items():
        short = [m for m in ("score", "conversions", "spend") if len(r.get(m, ())) != episodes]
        if short:
            raise ValueError(f"known results of {name!r}: {short} do not have one value per episode ({episodes})")
        results[name] = {m: [float(v) for v in r.get(m, [0.0] * episodes)] for m in METRICS}
    baselines = [n for n in results if n != policy and n not in YARDSTICKS]
    return Evaluation(
        policy=policy,
        baselines=baselines,
        seeds=list(seeds),
        n_envs=venv.num_envs,
        episode_days=venv.config.episode_days,
        params_hash=venv.base_params.params_hash(),
        results=results,
        level=level,
    )


def run_policies(
    policies: Mapping[str, Policy],
    venv,
    seeds: Sequence[int],
    oracle: bool = True,
    lp_bound: bool = True,
    oracle_budget_step: float = 5.0,
    progress: Callable[[str], None] | None = None,
    informed_replicates: int = 0,
    ceiling: bool = False,
    workers: int = 1,
    nice: int = 0,
) -> dict[str, dict[str, list[float]]]:
    """Per policy and yardstick asked for, every metric per episode (seed by seed, market by market): `evaluate`'s
    runs without the comparison. `nice` > 0 lowers the priority of forked workers (`workers` > 1) by that much, so
    they use a core the caller's other work leaves idle rather than slow that work down."""
    if not seeds:
        raise ValueError("evaluate needs at least one held-out seed")
    if lp_bound and not oracle:
        raise ValueError("the episode LP bound is computed along the oracle's run: oracle=True is required")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    job = _SeedJob(
        policies,
        venv,
        exact_oracle_env(venv) if oracle else None,
        lp_bound,
        oracle_budget_step,
        informed_replicates,
        ceiling,
    )
    results: dict[str, dict[str, list[float]]] = {}
    for runs in _run_seeds(job, list(seeds), workers, progress, nice):
        for name, summaries in runs:
            r = results.setdefault(name, {m: [] for m in METRICS})
            for s in summaries:
                for m in METRICS:
                    r[m].append(float(s.get(m, 0.0)))
    return results


@dataclass(frozen=True)
class _SeedJob:
    """What every seed of an evaluation runs (a forked worker inherits it: policies need not pickle)."""

    policies: Mapping[str, Policy]
    venv: object
    oracle_env: object | None  # None: no clairvoyant oracle (nor LP bound, informed oracle)
    lp_bound: bool
    oracle_budget_step: float
    informed_replicates: int
    ceiling: bool

    def run(self, seed: int, progress: Callable[[str], None] | None = None) -> list[tuple[str, list[dict]]]:
        """(name, per-market summaries) of every policy and yardstick on one seed, in a fixed order."""
        out: list[tuple[str, list[dict]]] = []
        say = progress or (lambda _: None)
        venv = self.venv
        for name, pol in self.policies.items():
            say(f"seed {seed}: {name}")
            out.append((name, run_tracked(pol, venv, seed)))
        if self.ceiling:
            say(f"seed {seed}: informed planning ceiling")
            out.append((INFORMED_CEILING, run_tracked(InformedCeilingPolicy(venv), venv, seed)))
        if self.oracle_env is not None:
            say(f"seed {seed}: oracle")
            oracle_env = self.oracle_env
            costs: list[list[np.ndarray]] = [[] for _ in range(venv.num_envs)]

            def collect(env) -> None:
                if not self.lp_bound:
                    return
                for m in range(env.num_envs):
                    draws, state = env.sim.market_view(m)
                    costs[m].append(converting_click_costs(env.sim.cm, draws, state))

            oracle_policy = OraclePolicy(oracle_env, self.oracle_budget_step)
            out.append((ORACLE, run_tracked(oracle_policy, oracle_env, seed, on_day=collect)))
            if self.informed_replicates > 0:
                say(f"seed {seed}: informed oracle")
                informed = InformedOraclePolicy(oracle_env, self.informed_replicates, self.oracle_budget_step)
                out.append((INFORMED_ORACLE, run_tracked(informed, oracle_env, seed)))
            if self.lp_bound:
                p = venv.sim.params
                bounds = [episode_lp_bound(costs[m], p.daily_budget, p.target_cpa) for m in range(venv.num_envs)]
                out.append(
                    (
                        LP_BOUND,
                        [
                            {
                                "score": b["score"],
                                "conversions": b["conversions"],
                                "spend": b["spend"],
                                "cpa": b["spend"] / b["conversions"] if b["conversions"] else math.inf,
                            }
                            for b in bounds
                        ],
                    )
                )
        return out


_FORKED_JOB: _SeedJob | None = None  # the job a forked worker runs (set just before the workers fork)


def _run_forked(seed: int) -> list[tuple[str, list[dict]]]:
    assert _FORKED_JOB is not None, "an evaluation worker started without its job"
    return _FORKED_JOB.run(seed)


def _run_seeds(
    job: _SeedJob, seeds: list[int], workers: int, progress: Callable[[str], None] | None, nice: int = 0
) -> list[list[tuple[str, list[dict]]]]:
    """Every seed's runs, in seed order: here, or in `workers` forked processes (fork: the workers inherit the
    policies and environments as they are, nothing is pickled but the results), at `nice` below this process."""
    workers = min(workers, len(seeds))
    # a lower priority needs a process of its own, even for one worker
    if (workers <= 1 and nice <= 0) or "fork" not in multiprocessing.get_all_start_methods():
        return [job.run(seed, progress) for seed in seeds]
    global _FORKED_JOB
    _FORKED_JOB = job
    try:
        context = multiprocessing.get_context("fork")
        lower = {"initializer": os.nice, "initargs": (nice,)} if nice > 0 else {}
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, **lower) as pool:
            futures = []
            for seed in seeds:
                futures.append(pool.submit(_run_forked, seed))
                if progress:
                    progress(f"seed {seed}: every policy and yardstick, in a worker process")
            out = []
            for seed, future in zip(seeds, futures, strict=True):
                out.append(future.result())
                if progress:
                    progress(f"seed {seed}: done")
            return out
    finally:
        _FORKED_JOB = None
