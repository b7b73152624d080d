"""Train a bidding policy from scratch on 2 cores and compare it with every tuned baseline, the clairvoyant oracle
and the LP bound on held-out seeds (common random numbers), then run it in a copy of the demo world.

    .venv/bin/python -m benchmarks.policy [--train-seconds 480] [--n-envs 8] [--bc-cycles 18] [--eval-seeds 2]
    .venv/bin/python -m benchmarks.policy --teacher oracle --bc-cycles 8 --select-seeds   # the old oracle warm start

The policy learns a correction of the online-LP baseline (residual learning, `rl.policies.residual`): it starts as
exactly that baseline and PPO trains the correction for the rest of the time; the trained correction is kept only
if it beats the zero correction on validation seed 601. `--residual-base none` instead learns the actions
themselves, warm-started by imitating online LP (DAgger, teacher bid multiplier chosen on training seeds 601/602).

The training market is the calibration artifact's (data/calibration/market_calibration.json) when it exists, else
the default world file's parameters with fixed noise (flagged in the output as "params_source"); training randomises
around it by the calibration's uncertainty. The baselines are grid-searched on tuning seeds in a second process while
the policy trains; evaluation seeds (10001, 10002, ...) are used by nothing else. The demo-world run opens a fresh
world from the default world file (seed 0) in a temporary directory, lets its history run to the evaluation start
date, and runs the policy there on reports only.
Human-readable lines first; the LAST line is one JSON object.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import multiprocessing as mp  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from orchestration.environment import data_dir  # noqa: E402
from rl.evaluation.evaluate import INFORMED_ORACLE, LP_BOUND, ORACLE, evaluate  # noqa: E402
from rl.market.params import MarketParams  # noqa: E402
from rl.policies.base import SB3Policy  # noqa: E402
from rl.policies.baselines import BASELINES  # noqa: E402
from rl.training.params import make_params_sampler, training_market  # noqa: E402
from rl.training.pipeline import EvalSettings, calibration_path, learns, tuned_baselines, world_comparison  # noqa: E402
from rl.training.train import TrainConfig, make_venv, train  # noqa: E402
from rl.world.paths import DEFAULT_WORLD_FILE  # noqa: E402


def _tune(params_json: str, cfg: TrainConfig, seeds: list[int]) -> dict:
    torch.set_num_threads(1)
    params = MarketParams.model_validate_json(params_json)
    venv = make_venv(params, cfg, seed=0)
    _, chosen = tuned_baselines(venv, seeds)
    return chosen


def _r(x: float, nd: int = 3) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-seconds", type=float, default=480.0)
    ap.add_argument("--algo", default="ppo", choices=["ppo", "sac"])
    ap.add_argument("--n-envs", type=int, default=8)
    ap.add_argument("--episode-days", type=int, default=14, help="evaluation episodes")
    ap.add_argument(
        "--train-episode-days",
        type=int,
        default=None,
        help="training episodes (default: --episode-days); longer ones spend less of the time on warm-up history",
    )
    ap.add_argument("--warmup-days", type=int, default=28)
    ap.add_argument(
        "--train-settle-days",
        type=int,
        default=None,
        help="days simulated after a training episode for its conversions to arrive (default: the longest lag; "
        "fewer cut the episode short and PPO bootstraps the rest)",
    )
    ap.add_argument("--bc-cycles", type=int, default=18)
    ap.add_argument("--bc-epochs", type=int, default=150)
    ap.add_argument("--learning-rate", type=float, default=1e-4)
    ap.add_argument("--log-std-init", type=float, default=-1.6)
    ap.add_argument("--teacher", default="online_lp", help='"oracle" or a baseline name (e.g. online_lp)')
    ap.add_argument(
        "--teacher-kwargs", default='{"slack": 1.0, "decay": 0.5}', help="JSON hyperparameters of a baseline teacher"
    )
    ap.add_argument("--teacher-bid-mult", type=float, default=0.92)
    ap.add_argument("--teacher-tune", action=argparse.BooleanOptionalAction, default=False)
    ap.add_argument("--dagger-rounds", type=int, default=3)
    ap.add_argument(
        "--residual-base",
        default="online_lp",
        help='learn a correction of this baseline (rl.policies.residual); "none": learn the actions themselves',
    )
    ap.add_argument("--residual-kwargs", default='{"slack": 1.0, "decay": 0.5}')
    ap.add_argument("--residual-scale", type=float, default=0.3)
    ap.add_argument(
        "--paired",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="reward = the learner's minus a same-draws twin's under the residual base (rl.training.paired)",
    )
    ap.add_argument("--select-seeds", type=int, nargs="*", default=[601])
    ap.add_argument("--eval-seeds", type=int, default=2)
    ap.add_argument("--eval-envs", type=int, default=4)
    ap.add_argument("--tune-seeds", type=int, nargs="*", default=[501])
    ap.add_argument("--oracle-step", type=float, default=10.0)
    ap.add_argument(
        "--informed-replicates",
        type=int,
        default=4,
        help="replicate days per decision of the informed oracle (true parameters, not the day's draws); 0: skip",
    )
    ap.add_argument("--world-days", type=int, default=14)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    t_all = time.perf_counter()

    market = training_market(calibration_path(data_dir()), DEFAULT_WORLD_FILE)
    params = market.params
    print(f"training market: {market.source} ({params.name}, params {market.params_hash})")
    residual = None if args.residual_base == "none" else args.residual_base
    train_days = args.train_episode_days or args.episode_days
    cfg = TrainConfig(
        algo=args.algo,
        total_timesteps=10_000_000,
        n_envs=args.n_envs,
        seed=args.seed,
        episode_days=train_days,
        warmup_days=args.warmup_days,
        settle_days=args.train_settle_days,
        n_steps=train_days,
        batch_size=train_days * args.n_envs // 2,
        n_epochs=5,
        learning_rate=args.learning_rate,
        log_std_init=args.log_std_init,
        bc_cycles=0 if residual else args.bc_cycles,
        residual_base=residual,
        residual_kwargs=tuple(sorted(json.loads(args.residual_kwargs).items())),
        residual_scale=args.residual_scale,
        paired=bool(residual) and args.paired,
        bc_epochs=args.bc_epochs,
        teacher=args.teacher,
        teacher_kwargs=tuple(sorted(json.loads(args.teacher_kwargs).items())),
        teacher_bid_mult=args.teacher_bid_mult,
        teacher_tune=args.teacher_tune,
        dagger_rounds=args.dagger_rounds,
        select_seeds=tuple(args.select_seeds),
        oracle_budget_step=25.0,
        progress_bar=False,
        tensorboard=False,
        max_wall_s=args.train_seconds,
    )
    eval_cfg = TrainConfig(
        n_envs=args.eval_envs, episode_days=args.episode_days, warmup_days=args.warmup_days, progress_bar=False
    )
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:  # baselines are tuned on the second core while the policy trains
        tuning = pool.apply_async(_tune, (params.model_dump_json(), eval_cfg, list(args.tune_seeds)))
        with tempfile.TemporaryDirectory(prefix="gaelp-bench-policy-") as tmp:
            sampler = make_params_sampler(params, market.uncertainty)
            result = train(params, cfg, Path(tmp), params_sampler=sampler)
        t0 = time.perf_counter()
        chosen = tuning.get()
        waited = time.perf_counter() - t0
    print(
        f"trained {result.timesteps} steps in {result.wall_s:.0f} s (behaviour cloning: {result.bc}); "
        f"baseline tuning waited {waited:.0f} s more: {chosen}"
    )
    if result.curve:
        print(
            "learning curve (timesteps: score):",
            ", ".join(f"{c['timesteps']}: {c['score']:.1f}" for c in result.curve[:: max(1, len(result.curve) // 12)]),
        )

    venv = make_venv(params, eval_cfg, seed=0)
    policies = {"policy": SB3Policy(result.model, name="policy")}
    policies |= {name: BASELINES[name].for_env(venv, **chosen[name]) for name in BASELINES}
    seeds = [10_001 + i for i in range(args.eval_seeds)]
    t0 = time.perf_counter()
    ev = evaluate(
        policies,
        venv,
        seeds,
        policy="policy",
        oracle_budget_step=args.oracle_step,
        informed_replicates=args.informed_replicates,
    )
    eval_s = time.perf_counter() - t0
    table = ev.table()
    for name, row in table.items():
        print(
            f"  {name:<15} score {row['score']:7.2f}  conv {row['conversions']:6.1f}  spend {row['spend']:8.1f}  "
            f"CPA {row['cpa']:7.2f}  days over budget {int(row['days_over_budget'])}"
        )
    for b, ci in ev.comparisons.items():
        print(f"  policy - {b:<15} {ci.mean:+7.2f}  [{ci.low:+.2f}, {ci.high:+.2f}]")

    world = {}
    if args.world_days > 0:
        t0 = time.perf_counter()
        start = params.history_start + dt.timedelta(days=args.warmup_days)
        settings = EvalSettings(eval_seeds=tuple(seeds), world_days=args.world_days)
        world = world_comparison(
            policies["policy"], params, venv.schema, settings, venv, None, DEFAULT_WORLD_FILE, 0, start=start
        )
        print(
            f"demo world from {world['world']['start_date']}: world score {world['world_score']:.2f} vs simulator "
            f"{world['sim_score']:.2f} ({time.perf_counter() - t0:.0f} s)"
        )

    best = ev.best_baseline()
    policy_score = table["policy"]["score"]
    out = {
        "benchmark": "policy",
        "train_wall_s": _r(result.wall_s, 1),
        "train_timesteps": result.timesteps,
        "policy_score": _r(policy_score),
        "oracle_score": _r(table[ORACLE]["score"]),
        "lp_bound_score": _r(table[LP_BOUND]["score"]),
        "informed_oracle_score": _r(table.get(INFORMED_ORACLE, {}).get("score")),
        **{f"{name}_score": _r(table[name]["score"]) for name in BASELINES},
        "best_baseline": best,
        "ratio_to_oracle": _r(policy_score / table[ORACLE]["score"]),
        "ratio_to_best_baseline": _r(policy_score / table[best]["score"]),
        "ratio_to_informed_oracle": _r(policy_score / table[INFORMED_ORACLE]["score"])
        if INFORMED_ORACLE in table
        else None,
        "informed_oracle_to_best_baseline": (
            _r(table[INFORMED_ORACLE]["score"] / table[best]["score"]) if INFORMED_ORACLE in table else None
        ),
        "paired_ci_vs_best_baseline": [_r(ev.comparisons[best].low), _r(ev.comparisons[best].high)],
        "world_score": _r(world.get("world_score")),
        "sim_score": _r(world.get("sim_score")),
        "world_days_over_budget": world.get("world", {}).get("days_over_budget"),
        "days_over_budget": int(table["policy"]["days_over_budget"]),
        "cpa": _r(table["policy"]["cpa"], 2),
        "target_cpa": params.target_cpa,
        "oracle_cpa": _r(table[ORACLE]["cpa"], 2),
        "eval_episodes": len(ev.results["policy"]["score"]),
        "eval_seeds": seeds,
        "episode_days": args.episode_days,
        "train_episode_days": train_days,
        "train_settle_days": args.train_settle_days,
        "eval_wall_s": _r(eval_s, 1),
        "total_wall_s": _r(time.perf_counter() - t_all, 1),
        "params_source": market.source,
        "algo": args.algo,
        "n_envs": args.n_envs,
        "bc_cycles": cfg.bc_cycles,
        "teacher": None if residual else args.teacher,
        "paired": cfg.paired,
        "learns": learns(result),
        "bc": result.bc,
        "selection": result.extra or None,
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__,
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
