"""What a trained policy is measured against, none of which needs the policy: every tuned baseline, the informed
planning ceiling, the clairvoyant oracle and the LP bound on the held-out seeds (`compute_yardsticks`), under a key
of everything their results depend on (`yardstick_key`: the same key, the same results). `rl.training.pipeline`
runs them in the training market and records them for the evaluation."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rl.env.schema import ObservationSchema
from rl.evaluation.evaluate import run_policies
from rl.policies.baselines import BASELINES, tune_baseline
from rl.training.train import TrainConfig, make_venv


def tuned_baselines(venv, tune_seeds: Sequence[int], names: Sequence[str] | None = None) -> tuple[dict, dict]:
    """Every baseline grid-searched on `tune_seeds` (never the evaluation seeds): (policies, chosen settings)."""
    policies, chosen = {}, {}
    wanted = list(names or BASELINES)
    # plain baselines first: a pattern-rules variant is tuned on top of its baseline's hyperparameters
    for name in sorted(wanted, key=lambda n: getattr(BASELINES[n], "base_name", None) is not None):
        cls = BASELINES[name]
        if tune_seeds:
            res = tune_baseline(name, venv, list(tune_seeds), chosen)
            policies[name], chosen[name] = cls.for_env(venv, **res.best), res.best
        else:
            policies[name], chosen[name] = cls.for_env(venv), {}
    return {n: policies[n] for n in wanted}, {n: chosen[n] for n in wanted}


@dataclass(frozen=True)
class EvalSettings:
    """The held-out evaluation's settings (`assets.learning.PolicyEvaluationConfig`): its seeds and episode settings
    (None: the training run's), which yardsticks run, and where it runs (a world copy, processes, priority)."""

    eval_seeds: tuple[int, ...] = (10_001, 10_002)
    tune_seeds: tuple[int, ...] = (501,)
    n_envs: int = 4
    episode_days: int | None = None  # default: the training run's
    warmup_days: int | None = None
    settle_days: int | None = None
    oracle_budget_step: float = 5.0
    ceiling: bool = True  # run the informed planning ceiling (the yardstick the policy is measured against)
    informed_replicates: int = 0  # > 0: also run the greedy informed oracle (a diagnostic)
    world_days: int = 0  # > 0: also run the policy in a copy of the demo world for this many days
    promote: bool = True
    workers: int = 1  # processes the evaluation seeds run in (rl.evaluation.evaluate.evaluate)
    nice: int = 0  # > 0: the yardsticks' worker processes run at this lower priority (see `compute_yardsticks`)


def yardstick_key(params, schema: ObservationSchema, tc: TrainConfig, settings: EvalSettings) -> dict:
    """Everything the baselines' and yardsticks' results depend on: the same key, the same results."""
    return {
        "params_hash": params.params_hash(),
        "schema": schema.to_json(),
        "n_envs": tc.n_envs,
        "episode_days": tc.episode_days,
        "warmup_days": tc.warmup_days,
        "settle_days": tc.settle_days,
        "campaign_volume_ranges": [list(r) for r in tc.campaign_volume_ranges],
        "eval_seeds": list(settings.eval_seeds),
        "tune_seeds": list(settings.tune_seeds),
        "oracle_budget_step": settings.oracle_budget_step,
        "ceiling": settings.ceiling,
        "informed_replicates": settings.informed_replicates,
    }


def compute_yardsticks(
    params,
    schema: ObservationSchema | None,
    tc: TrainConfig,
    settings: EvalSettings,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Every baseline (tuned on `settings.tune_seeds`), the informed planning ceiling, the clairvoyant oracle and
    the LP bound on the held-out seeds: everything the evaluation compares the policy with, none of which needs
    the policy. So it can run while the policy trains (`evaluation_yardsticks`, beside `bidding_policy`), its
    workers at `settings.nice` so that they take the core training leaves idle, not training's."""
    torch.set_num_threads(1)  # forked workers must not inherit an OpenMP thread pool (not fork-safe)
    started = time.perf_counter()
    venv = make_venv(params, tc, schema=schema, seed=0)
    # the baselines are tuned in the fast simulator (the same ranking within noise, a fraction of the time) and
    # evaluated, like the policy, in the full engine
    baselines, chosen = tuned_baselines(
        make_venv(params, tc, schema=venv.schema, seed=0, engine="fast"), settings.tune_seeds
    )
    results = run_policies(
        baselines,
        venv,
        list(settings.eval_seeds),
        oracle_budget_step=settings.oracle_budget_step,
        informed_replicates=settings.informed_replicates,
        ceiling=settings.ceiling,
        progress=progress,
        workers=settings.workers,
        nice=settings.nice,
    )
    return {
        "key": yardstick_key(params, venv.schema, tc, settings),
        "results": results,
        "baseline_settings": chosen,
        "wall_s": round(time.perf_counter() - started, 1),
    }


def yardstick_rows(found: dict) -> list[dict]:
    """Per baseline and yardstick: its mean of every metric over the episodes (CPA: total spend / conversions)."""
    rows = []
    for name, r in found["results"].items():
        conv, spend = float(np.sum(r["conversions"])), float(np.sum(r["spend"]))
        rows.append(
            {"name": name}
            | {m: float(np.mean(r[m])) for m in ("score", "conversions", "spend")}
            | {"cpa": spend / conv if conv else float("inf")}
        )
    return rows
