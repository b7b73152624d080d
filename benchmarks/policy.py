"""Train a bidding policy per world file on 2 cores and compare it, on held-out episodes in the full engine, with every
tuned baseline (and its pattern-rules variant), the informed planning ceiling, the clairvoyant oracle and the LP
bound; then run it in a copy of each demo world.

    .venv/bin/python -m benchmarks.policy [--train-seconds 600] [--eval-seeds 3] [--eval-envs 8]
    .venv/bin/python -m benchmarks.policy --worlds rl/world/worlds/reference_account.yaml   # one world

Per world (the reference account and the differently shaped second world by default), the training market is the
world file's parameters with fixed noise (`rl.training.params.training_market` without a calibration: never the
world's truth itself); `--uncertainty-scale` > 0 randomises the training markets around it (domain randomisation;
off by default: the teacher plans each randomised market with its true parameters, and where 28 days of reports
cannot tell those markets apart the student learns the average of different plans — measured 130-136 against
145-152 without, on the same held-out episodes). The demo-world run is the check against a market that differs from
the training market. Training (`--train-seconds` split across
the worlds, one core): the policy is distilled from the informed planning ceiling (DAgger: the ceiling labels the
states the student itself visits; it reads the simulator's truth, the student only observations), then fine-tuned
by paired PPO on the fast simulator (`rl.market.fast`) against a frozen copy of itself, and the fine-tuned model
is kept only if it beats the distilled one on validation seed 601. Meanwhile the second core tunes every baseline
on tuning seeds (fast simulator) and runs the baselines and yardsticks on the evaluation seeds (full engine); the
evaluation seeds (10001, …) are used by nothing else. Scores are pooled over the worlds' episodes; each world's
are printed too.
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

from rl.evaluation.evaluate import INFORMED_CEILING, LP_BOUND, ORACLE, YARDSTICKS, Evaluation, evaluate  # noqa: E402
from rl.market.params import MarketParams  # noqa: E402
from rl.policies.baselines import BASELINES, PLAIN  # noqa: E402
from rl.policies.sb3 import SB3Policy  # noqa: E402
from rl.training.model_registry import gate  # noqa: E402
from rl.training.params import make_params_sampler, training_market  # noqa: E402
from rl.training.pipeline import learns, world_comparison  # noqa: E402
from rl.training.train import TrainConfig, make_venv, train  # noqa: E402
from rl.training.yardsticks import EvalSettings, tuned_baselines  # noqa: E402
from rl.world.paths import DEFAULT_WORLD_FILE, OTHER_WORLD_FILE  # noqa: E402

ONLINE_LP_DAILY = "online_lp"  # today's best: online LP without modifiers


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


def eval_config(args) -> TrainConfig:
    return TrainConfig(n_envs=args.eval_envs, episode_days=args.episode_days, warmup_days=args.warmup_days)


def baselines_and_yardsticks(params_json: str, args_dict: dict, seeds: list[int]) -> dict:
    """Worker (second core): tune every baseline on the tuning seeds in the fast simulator, then run the baselines,
    the informed planning ceiling, the clairvoyant oracle and the LP bound on the evaluation seeds (full engine)."""
    torch.set_num_threads(1)
    args = argparse.Namespace(**args_dict)
    params = MarketParams.model_validate_json(params_json)
    cfg = eval_config(args)
    t0 = time.perf_counter()
    policies, chosen = tuned_baselines(make_venv(params, cfg, seed=0, engine="fast"), args.tune_seeds)
    tune_s = time.perf_counter() - t0
    venv = make_venv(params, cfg, seed=0)
    t0 = time.perf_counter()
    ev = evaluate(
        policies,
        venv,
        seeds,
        policy=ONLINE_LP_DAILY,
        oracle=args.oracle,
        lp_bound=args.oracle,
        oracle_budget_step=args.oracle_step,
        ceiling=True,
    )
    return {"evaluation": ev.to_dict(), "chosen": chosen, "tune_s": tune_s, "eval_s": time.perf_counter() - t0}


def train_config(args, seconds: float) -> TrainConfig:
    return TrainConfig(
        algo="ppo",
        total_timesteps=10_000_000,
        n_envs=args.n_envs,
        seed=args.seed,
        episode_days=args.episode_days,
        warmup_days=args.warmup_days,
        n_steps=args.episode_days,
        batch_size=args.episode_days * args.n_envs // 2,
        n_epochs=5,
        net_arch=(256, 256),
        learning_rate=args.learning_rate,
        log_std_init=args.log_std_init,
        teacher="ceiling",
        bc_cycles=args.dagger_cycles,
        dagger_rounds=args.dagger_rounds,
        dagger_envs=args.dagger_envs,
        bc_epochs=args.bc_epochs,
        paired=True,
        select_seeds=tuple(args.select_seeds),
        progress_bar=False,
        tensorboard=False,
        max_wall_s=seconds,
        engine="fast",
    )


def pooled(evaluations: list[Evaluation]) -> Evaluation:
    """One evaluation of all worlds' episodes (each episode stays paired across policies)."""
    names = [n for n in evaluations[0].results if all(n in e.results for e in evaluations)]
    results = {
        n: {m: [v for e in evaluations for v in e.results[n][m]] for m in evaluations[0].results[n]} for n in names
    }
    first = evaluations[0]
    return Evaluation(
        policy=first.policy,
        baselines=[b for b in first.baselines if b in names],
        seeds=[s for e in evaluations for s in e.seeds],
        n_envs=first.n_envs,
        episode_days=first.episode_days,
        params_hash="+".join(e.params_hash for e in evaluations),
        results=results,
    )


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worlds", nargs="+", default=[str(DEFAULT_WORLD_FILE), str(OTHER_WORLD_FILE)])
    ap.add_argument("--train-seconds", type=float, default=600.0, help="in all, split evenly across the worlds")
    ap.add_argument("--n-envs", type=int, default=16)
    ap.add_argument("--episode-days", type=int, default=14)
    ap.add_argument("--warmup-days", type=int, default=28)
    ap.add_argument("--dagger-cycles", type=int, default=48, help="teaching cycles (fewer if the time runs out)")
    ap.add_argument("--dagger-rounds", type=int, default=3)
    ap.add_argument("--dagger-envs", type=int, default=4, help="markets per teaching cycle")
    ap.add_argument("--uncertainty-scale", type=float, default=0.0, help="domain randomisation (0: off)")
    ap.add_argument("--bc-epochs", type=int, default=100)
    ap.add_argument("--learning-rate", type=float, default=3e-5)
    ap.add_argument("--log-std-init", type=float, default=-2.0)
    ap.add_argument("--select-seeds", type=int, nargs="*", default=[601])
    ap.add_argument("--eval-seeds", type=int, default=3, help="8 episodes each, per world")
    ap.add_argument("--eval-envs", type=int, default=8)
    ap.add_argument("--tune-seeds", type=int, nargs="*", default=[501])
    ap.add_argument(
        "--oracle", action=argparse.BooleanOptionalAction, default=True, help="run the clairvoyant oracle and LP bound"
    )
    ap.add_argument("--oracle-step", type=float, default=10.0)
    ap.add_argument("--world-days", type=int, default=14)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    t_all = time.perf_counter()
    seeds = [10_001 + i for i in range(args.eval_seeds)]
    per_world_seconds = args.train_seconds / len(args.worlds)
    markets = [training_market(None, Path(w)) for w in args.worlds]
    ctx = mp.get_context("fork")
    worlds, evaluations = [], []
    train_s = train_steps = teacher_s = teacher_labels = rl_steps = rl_s = 0.0
    with ctx.Pool(1) as pool:  # baselines and yardsticks on the second core while the policies train
        jobs = [
            pool.apply_async(baselines_and_yardsticks, (m.params.model_dump_json(), vars(args), seeds)) for m in markets
        ]
        for world_file, market, job in zip(args.worlds, markets, jobs, strict=True):
            params = market.params
            name = Path(world_file).name
            print(f"world {name}: training market {market.source} ({params.name}, {market.params_hash})")
            cfg = train_config(args, per_world_seconds)
            with tempfile.TemporaryDirectory(prefix="gaelp-bench-policy-") as tmp:
                sampler = None
                if args.uncertainty_scale > 0:
                    sampler = make_params_sampler(params, market.uncertainty, args.uncertainty_scale)
                result = train(params, cfg, Path(tmp), params_sampler=sampler)
            bc = result.bc or {}
            labels = float(bc.get("samples", 0))
            collect_s = float(bc.get("collect_and_fit_s", 0.0))
            train_s += result.wall_s
            train_steps += result.timesteps + labels
            teacher_labels += labels
            teacher_s += collect_s
            rl_steps += result.timesteps
            rl_s += max(result.wall_s - collect_s, 1e-9)
            print(
                f"  trained in {result.wall_s:.0f} s: {int(labels)} states labelled by the ceiling ({collect_s:.0f} s),"
                f" {result.timesteps} PPO decisions; kept: {(result.extra or {}).get('kept', 'rl')} {result.extra}"
            )
            venv = make_venv(params, eval_config(args), seed=0)
            policy = SB3Policy(result.model, name="policy")
            mine = evaluate({"policy": policy}, venv, seeds, policy="policy", oracle=False, lp_bound=False)
            t0 = time.perf_counter()
            other = job.get()
            waited = time.perf_counter() - t0
            theirs = Evaluation.from_dict(other["evaluation"])
            results = {**mine.results, **theirs.results}
            baselines = [n for n in theirs.results if n not in YARDSTICKS]
            ev = Evaluation("policy", baselines, seeds, venv.num_envs, args.episode_days, params.params_hash(), results)
            print(
                f"  baselines tuned in {other['tune_s']:.0f} s, baselines and yardsticks run in {other['eval_s']:.0f} s"
                f"; waited {waited:.0f} s for them"
            )
            world, world_best = {}, {}
            if args.world_days > 0:
                t0 = time.perf_counter()
                start = params.history_start + dt.timedelta(days=args.warmup_days)
                settings = EvalSettings(eval_seeds=tuple(seeds), world_days=args.world_days)
                world = world_comparison(policy, params, venv.schema, settings, venv, None, Path(world_file), 0, start)
                # the best baseline in the same world days: what the policy's world score compares with
                best_name = ev.best_baseline()
                best_policy = BASELINES[best_name].for_env(venv, **other["chosen"][best_name])
                world_best = world_comparison(
                    best_policy, params, venv.schema, settings, venv, None, Path(world_file), 0, start
                )
                print(
                    f"  demo world from {world['world']['start_date']}: policy {world['world_score']:.2f} "
                    f"(simulator {world['sim_score']:.2f}), {best_name} {world_best['world_score']:.2f} "
                    f"({time.perf_counter() - t0:.0f} s)"
                )
            ev.world = world or None
            table = ev.table()
            for name, row in table.items():
                print(
                    f"  {name:<24} score {row['score']:7.2f}  conv {row['conversions']:6.1f}  "
                    f"spend {row['spend']:8.1f}  CPA {row['cpa']:7.2f}  days over budget {int(row['days_over_budget'])}"
                )
            evaluations.append(ev)
            worlds.append(
                {
                    "world": params.name,
                    "file": Path(world_file).name,
                    "policy_score": _r(table["policy"]["score"]),
                    "best_baseline": ev.best_baseline(),
                    "best_baseline_score": _r(table[ev.best_baseline()]["score"]),
                    "informed_ceiling_score": _r(table[INFORMED_CEILING]["score"]),
                    "online_lp_daily_score": _r(table[ONLINE_LP_DAILY]["score"]),
                    "world_score": _r(world.get("world_score")),
                    "sim_score": _r(world.get("sim_score")),
                    "world_best_baseline_score": _r(world_best.get("world_score")),
                    "kept": (result.extra or {}).get("kept"),
                    "learns": learns(result),
                    "baseline_settings": other["chosen"],
                }
            )

    ev = pooled(evaluations)
    table = ev.table()
    best = ev.best_baseline()
    comparisons = ev.comparisons
    ci = comparisons[best]
    decision = gate(ev)
    for b, c in comparisons.items():
        print(f"  policy - {b:<24} {c.mean:+7.2f}  [{c.low:+.2f}, {c.high:+.2f}]  (n={c.n})")
    print(f"gate: {'promote' if decision.passed else 'do not promote'}: {'; '.join(decision.reasons)}")
    policy_score = table["policy"]["score"]
    best_score = table[best]["score"]
    ceiling_score = table[INFORMED_CEILING]["score"]
    online_lp = table[ONLINE_LP_DAILY]["score"]
    out = {
        "benchmark": "policy",
        "worlds": [w["world"] for w in worlds],
        "eval_episodes": len(ev.results["policy"]["score"]),
        "policy_score": _r(policy_score),
        "best_baseline": best,
        "best_baseline_score": _r(best_score),
        "ratio_to_best_baseline": _r(policy_score / best_score),
        "paired_ci_vs_best_baseline": {
            "points": [_r(ci.low), _r(ci.high)],
            "share": [_r(ci.low / best_score, 4), _r(ci.high / best_score, 4)],
        },
        "promoted": decision.passed,
        "gate": decision.reasons,
        "informed_ceiling_score": _r(ceiling_score),
        "ratio_to_informed_ceiling": _r(policy_score / ceiling_score),
        "online_lp_daily_score": _r(online_lp),
        "ratio_to_online_lp_daily": _r(policy_score / online_lp),
        **{f"{name}_score": _r(table[name]["score"]) for name in BASELINES if name in table},
        "oracle_score": _r(table[ORACLE]["score"]) if ORACLE in table else None,
        "lp_bound_score": _r(table[LP_BOUND]["score"]) if LP_BOUND in table else None,
        "ratio_to_oracle": _r(policy_score / table[ORACLE]["score"]) if ORACLE in table else None,
        "days_over_budget": int(table["policy"]["days_over_budget"]),
        "cpa": _r(table["policy"]["cpa"], 2),
        "target_cpa": markets[0].params.target_cpa,
        "train_wall_s": _r(train_s, 1),
        "train_decisions": int(train_steps),
        "train_decisions_per_s": _r(rl_steps / rl_s, 1),
        "teacher_labels": int(teacher_labels),
        "teacher_wall_s": _r(teacher_s, 1),
        "all_decisions_per_s": _r(train_steps / max(train_s, 1e-9), 1),
        "per_world": worlds,
        "plain_baselines": [c.name for c in PLAIN],
        "eval_seeds": seeds,
        "episode_days": args.episode_days,
        "params_source": sorted({m.source for m in markets}),
        "uncertainty_scale": args.uncertainty_scale,
        "total_wall_s": _r(time.perf_counter() - t_all, 1),
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__,
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
