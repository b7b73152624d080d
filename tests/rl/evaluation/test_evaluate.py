"""The evaluator: every policy on the same episodes; oracle ≥ every policy; LP bound ≥ oracle; paired intervals."""

from __future__ import annotations

import os

import numpy as np
import pytest

from rl.env import BatchedBiddingVecEnv, EnvConfig
from rl.evaluation.evaluate import (
    INFORMED_CEILING,
    INFORMED_ORACLE,
    LP_BOUND,
    ORACLE,
    episode_lp_bound,
    evaluate,
    paired_interval,
    run_policies,
)
from rl.policies.baselines import BASELINES
from rl.policies.oracle import day_score
from tests.conftest import scaled

CONFIG = EnvConfig(episode_days=5, warmup_days=14, settle_days=None)


@pytest.fixture(scope="module")
def evaluation(reference_params):
    venv = BatchedBiddingVecEnv(scaled(reference_params, 0.1), n_envs=2, config=CONFIG, seed=0)
    policies = {name: cls.for_env(venv) for name, cls in BASELINES.items()}
    return evaluate(policies, venv, seeds=[11, 12], policy="pacer", oracle_budget_step=10.0, informed_replicates=2)


def test_every_policy_ran_the_same_episodes(evaluation):
    names = set(BASELINES) | {ORACLE, INFORMED_ORACLE, LP_BOUND}
    assert set(evaluation.results) == names
    assert all(len(r["score"]) == 4 for r in evaluation.results.values())
    assert evaluation.baselines == [n for n in BASELINES if n != "pacer"]


def test_oracle_beats_every_policy_and_lp_bound_beats_oracle(evaluation):
    oracle = np.array(evaluation.results[ORACLE]["score"])
    lp = np.array(evaluation.results[LP_BOUND]["score"])
    for name in BASELINES:
        assert evaluation.mean(name) <= evaluation.mean(ORACLE) + 1e-9, name
    assert np.all(lp >= oracle - 1e-9)
    assert sum(evaluation.results[ORACLE]["days_over_budget"]) == 0
    # knowing the true parameters is not knowing the day's draws: the informed oracle sits below hindsight
    assert evaluation.mean(INFORMED_ORACLE) < evaluation.mean(ORACLE)
    assert sum(evaluation.results[INFORMED_ORACLE]["days_over_budget"]) == 0


def test_no_policy_exceeds_the_budget_and_the_dict_round_trips(evaluation):
    from rl.evaluation.evaluate import Evaluation

    assert all(sum(r["days_over_budget"]) == 0 for r in evaluation.results.values())
    again = Evaluation.from_dict(evaluation.to_dict())
    assert again.table() == evaluation.table()
    assert set(again.comparisons) == set(evaluation.baselines)


def test_paired_interval():
    ci = paired_interval([3, 4, 5, 6], [1, 2, 3, 4])
    assert ci.mean == 2 and ci.low == ci.high == 2  # constant differences: zero width
    ci = paired_interval([3, 5, 4, 9], [1, 2, 3, 4])
    assert ci.low < ci.mean < ci.high and ci.n == 4
    with pytest.raises(ValueError):
        paired_interval([], [])


def test_episode_lp_bound_by_hand():
    # daily budget 10: day 1 buys 1, 2, 3 and 4/20 of the 20-item; day 2 buys 2 and 8
    days = [np.array([1.0, 2.0, 3.0, 20.0]), np.array([8.0, 2.0])]
    b = episode_lp_bound(days, daily_budget=10.0, target_cpa=5.0)
    assert (b["conversions"], b["spend"]) == pytest.approx((5.2, 20.0))  # all of it, CPA 3.85 < 5
    # target 3: pooled 1, 2, 2, 3 (N 4, S 8), then the average CPA reaches 3 after 0.8 of the 8-item
    b = episode_lp_bound(days, daily_budget=10.0, target_cpa=3.0)
    assert (b["conversions"], b["spend"]) == pytest.approx((4.8, 14.4))
    assert b["score"] == pytest.approx(day_score(4.8, 14.4, 3.0)) == pytest.approx(4.8)
    assert episode_lp_bound([], 10.0, 5.0)["score"] == 0.0


def test_seeds_in_worker_processes_give_the_same_evaluation(reference_params, evaluation):
    """`workers=2` runs the two seeds in forked processes: every result, in the same order, as in one process (the
    module's evaluation), with the informed planning ceiling too; progress says where each seed runs."""
    venv = BatchedBiddingVecEnv(scaled(reference_params, 0.1), n_envs=2, config=CONFIG, seed=0)
    policies = {name: cls.for_env(venv) for name, cls in BASELINES.items()}
    said = []
    forked = evaluate(
        policies,
        venv,
        seeds=[11, 12],
        policy="pacer",
        oracle_budget_step=10.0,
        informed_replicates=2,
        ceiling=True,
        progress=said.append,
        workers=2,
    )
    assert {k: v for k, v in forked.results.items() if k != INFORMED_CEILING} == evaluation.results
    alone = evaluate(
        {"pacer": policies["pacer"]}, venv, seeds=[11, 12], policy="pacer", oracle=False, lp_bound=False, ceiling=True
    )
    assert forked.results[INFORMED_CEILING] == alone.results[INFORMED_CEILING]
    assert said == [
        "seed 11: every policy and yardstick, in a worker process",
        "seed 12: every policy and yardstick, in a worker process",
        "seed 11: done",
        "seed 12: done",
    ]
    with pytest.raises(ValueError, match="workers must be >= 1"):
        evaluate(policies, venv, seeds=[11], policy="pacer", workers=0)


class _AtLowPriority:
    """A baseline that refuses to act unless its process runs at least `nice` below the test's priority."""

    def __init__(self, base, nice: int):
        self.base, self.name, self.floor = base, base.name, os.nice(0) + nice

    def reset(self, n_envs: int) -> None:
        self.base.reset(n_envs)

    def act(self, obs):
        if os.nice(0) < self.floor:
            raise RuntimeError(f"acting at niceness {os.nice(0)}, expected >= {self.floor}")
        return self.base.act(obs)


def test_known_results_join_the_evaluation_as_if_run_together(reference_params, evaluation):
    """The baselines and yardsticks run first (`run_policies`, in lowered-priority workers, as while the policy
    trains) and the policy alone later, with them as `known`: the same evaluation as one run of everything."""
    venv = BatchedBiddingVecEnv(scaled(reference_params, 0.1), n_envs=2, config=CONFIG, seed=0)
    others = {n: _AtLowPriority(cls.for_env(venv), 3) for n, cls in BASELINES.items() if n != "pacer"}
    known = run_policies(others, venv, [11, 12], oracle_budget_step=10.0, informed_replicates=2, workers=2, nice=3)
    later = evaluate(
        {"pacer": BASELINES["pacer"].for_env(venv)},
        venv,
        seeds=[11, 12],
        policy="pacer",
        oracle=False,
        lp_bound=False,
        known=known,
    )
    assert later.results == evaluation.results
    assert later.baselines == evaluation.baselines
    assert later.table() == evaluation.table()
    # one worker at a lower priority is still a process of its own
    alone = run_policies({"static": others["static"]}, venv, [11], oracle=False, lp_bound=False, nice=3)
    assert alone["static"] == {m: v[:2] for m, v in evaluation.results["static"].items()}
    with pytest.raises(ValueError, match="both run here and given"):
        evaluate({"static": others["static"].base}, venv, [11], "static", oracle=False, lp_bound=False, known=known)
    with pytest.raises(ValueError, match="one value per episode"):
        evaluate(
            {"pacer": BASELINES["pacer"].for_env(venv)}, venv, [11], "pacer", oracle=False, lp_bound=False, known=known
        )
