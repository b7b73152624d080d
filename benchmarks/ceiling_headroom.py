"""What the closed loop's targets ask of a policy: the informed planning ceiling run with the world's TRUE parameters
(what no policy can know), against the static operator and the best baseline, on the closed loop's dates.

    .venv/bin/python -m benchmarks.ceiling_headroom [--loop-days 28] [--seeds 10001 10002 10003] [--n-envs 4]

`benchmarks.closed_loop` asks for the policy's conversions ≥ 1.6 × the static operator's and ≥ 1.08 × the best
baseline's in the world. The policy plans on the calibrated market; the ceiling here plans on the world file's own
parameters and reads the simulator's hidden state, so its ratios are about as high as a planner in the same action
space and guardrails gets on that world. Its max bids are the plan's (`AccountSettings.max_bid` of the bid in force,
as the calibrated market has them), not the world file's `max_bid`. Episodes: `--n-envs` markets per seed, each
`--loop-days` days from the loop's first day (the last `--loop-days` daily partitions, as `make demo` and the
closed-loop benchmark use), after a 28-day warm-up at the settings in force, in the full engine.
`GAELP_WORLD_FILE` picks the world.

Human-readable lines first; the LAST line is one JSON object: mean conversions per episode of the static operator,
the best baseline and the ceiling, the ceiling's ratios, and `target_share_of_ceiling` — the conversions 1.6 × static
and 1.08 × best baseline ask for, as a share of the ceiling's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time

from orchestration.environment import account_settings, world_file
from rl.env import BatchedBiddingVecEnv, EnvConfig, ObservationSchema
from rl.evaluation.evaluate import INFORMED_CEILING, evaluate
from rl.market.params import load_market_params
from rl.policies.baselines import BASELINES

STATIC_TARGET, BASELINE_TARGET = 1.6, 1.08  # benchmarks.closed_loop's targets


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loop-days", type=int, default=28)
    ap.add_argument("--seeds", type=int, nargs="+", default=[10_001, 10_002, 10_003])
    ap.add_argument("--n-envs", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2, help="processes for the seeds (2 cores: 2)")
    args = ap.parse_args(argv)
    from cli.demo import split_partitions  # the loop's dates, as the demo picks them

    start = dt.date.fromisoformat(split_partitions(None, args.loop_days)[1][0])
    path = world_file()
    account = account_settings()
    params = load_market_params(path)
    # the plan's max bid, as the calibrated market the policy learns in has it (`rl.calibration.fit`)
    capped = [c.model_copy(update={"max_bid": round(account.max_bid(c.current_bid), 2)}) for c in params.campaigns]
    params = params.model_copy(update={"campaigns": capped})
    config = EnvConfig(episode_days=args.loop_days, warmup_days=28, start_dates=(start, start))
    venv = BatchedBiddingVecEnv(
        params, n_envs=args.n_envs, config=config, schema=ObservationSchema.from_params(params), seed=0
    )
    policies = {name: cls.for_env(venv) for name, cls in BASELINES.items()}
    t0 = time.perf_counter()
    ev = evaluate(
        policies, venv, args.seeds, policy="static", oracle=False, lp_bound=False, ceiling=True, workers=args.workers
    )
    wall = time.perf_counter() - t0
    table = ev.table()
    static = table["static"]["conversions"]
    best = max((n for n in policies if n != "static"), key=lambda n: table[n]["score"])
    ceiling = table[INFORMED_CEILING]["conversions"]
    episodes = f"seeds {args.seeds} x {args.n_envs} markets"
    print(f"world {params.name} ({path}), {args.loop_days} days from {start}, {episodes}")
    for name in ("static", best, INFORMED_CEILING):
        row = table[name]
        print(f"  {name:<24} conversions {row['conversions']:7.2f}  spend {row['spend']:9.2f}  CPA {row['cpa']:6.2f}")
    line = {
        "benchmark": "ceiling_headroom",
        "world_file": str(path),
        "start": start.isoformat(),
        "days": args.loop_days,
        "seeds": args.seeds,
        "n_envs": args.n_envs,
        "static_conversions": round(static, 2),
        "best_baseline": best,
        "best_baseline_conversions": round(table[best]["conversions"], 2),
        "ceiling_conversions": round(ceiling, 2),
        "ceiling_ratio_to_static": round(ceiling / static, 3),
        "ceiling_ratio_to_best_baseline": round(ceiling / table[best]["conversions"], 3),
        "target_share_of_ceiling": round(
            max(STATIC_TARGET * static, BASELINE_TARGET * table[best]["conversions"]) / ceiling, 3
        ),
        "wall_s": round(wall, 1),
    }
    print(json.dumps(line))
    return line


if __name__ == "__main__":
    main()
