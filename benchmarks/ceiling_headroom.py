"""What the closed loop's targets ask of a policy: the informed planning ceiling run with the world's TRUE parameters
(what no policy can know), against the static operator and the best baseline, on the closed loop's dates.

    .venv/bin/python -m benchmarks.ceiling_headroom [--loop-days 28] [--seeds 10001 10002 10003] [--n-envs 4]
        [--model-dir DATA_DIR] [--start YYYY-MM-DD]

`benchmarks.closed_loop` asks for the policy's conversions ≥ 1.6 × the static operator's and ≥ 1.08 × the best
baseline's in the world. The policy plans on the calibrated market; the ceiling here plans on the world file's own
parameters and reads the simulator's hidden state, so its ratios are about as high as a planner in the same action
space and guardrails gets on that world. Its max bids are the plan's (`AccountSettings.max_bid` of the bid in force,
as the calibrated market has them), not the world file's `max_bid`. Episodes: `--n-envs` markets per seed, each
`--loop-days` days from the loop's first day (the last `--loop-days` daily partitions, as `make demo` and the
closed-loop benchmark use), after a 28-day warm-up at the settings in force, in the full engine.
`GAELP_WORLD_FILE` picks the world.

With `--model-dir` (a data directory: `GAELP_DATA_DIR` of a demo, or `data/` of a `closed_loop --keep` run) its
promoted model plays the same episodes. One closed-loop run is one draw of the world (a single run of the ceiling
varies by 12-23 conversions over 28 days); these are expectations over `seeds × n_envs` draws of the same days, so
they tell what the policy is worth against the ceiling with far less luck in it.

Human-readable lines first; the LAST line is one JSON object: mean conversions per episode of the static operator,
the best baseline and the ceiling, the ceiling's ratios, and `target_share_of_ceiling` — the conversions 1.6 × static
and 1.08 × best baseline ask for, as a share of the ceiling's; with a model, also its mean conversions
(`policy_conversions`), `policy_share_of_ceiling` and its ratios to the static operator and the best baseline.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import tempfile
import time
from pathlib import Path

from orchestration.environment import account_settings, world_file
from rl.env import BatchedBiddingVecEnv, EnvConfig, ObservationSchema
from rl.evaluation.evaluate import INFORMED_CEILING, evaluate
from rl.market.params import load_market_params
from rl.policies.base import Policy
from rl.policies.baselines import BASELINES

STATIC_TARGET, BASELINE_TARGET = 1.6, 1.08  # benchmarks.closed_loop's targets
POLICY = "promoted_policy"


def promoted_model(data_dir: Path) -> tuple[Policy, ObservationSchema, str]:
    """The promoted model of a data directory's policy registry, its observation schema and version; a clear error
    when there is none. Reads a copy of the published warehouse (the registry's connection may write its DDL)."""
    import duckdb

    from rl.training.model_registry import ModelRegistry

    source = Path(data_dir) / "published" / "warehouse.duckdb"
    if not source.exists():
        raise SystemExit(f"error: --model-dir {data_dir}: no published warehouse at {source}")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "warehouse.duckdb"
        shutil.copy(source, copy)
        con = duckdb.connect(str(copy))
        try:
            registry = ModelRegistry(con, Path(data_dir) / "models")
            entry = registry.promoted()
            if entry is None:
                raise SystemExit(f"error: --model-dir {data_dir}: the policy registry has no promoted model")
            return registry.load_policy(entry, entry.schema), entry.schema, f"v{entry.version}"
        finally:
            con.close()


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loop-days", type=int, default=28)
    ap.add_argument("--seeds", type=int, nargs="+", default=[10_001, 10_002, 10_003])
    ap.add_argument("--n-envs", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2, help="processes for the seeds (2 cores: 2)")
    ap.add_argument("--model-dir", type=Path, default=None, help="a data directory whose promoted model plays too")
    ap.add_argument("--start", type=dt.date.fromisoformat, default=None, help="first day (default: the loop's)")
    args = ap.parse_args(argv)
    from cli.demo import split_partitions  # the loop's dates, as the demo picks them

    start = args.start or dt.date.fromisoformat(split_partitions(None, args.loop_days)[1][0])
    path = world_file()
    account = account_settings()
    params = load_market_params(path)
    # the plan's max bid, as the calibrated market the policy learns in has it (`rl.calibration.fit`)
    capped = [c.model_copy(update={"max_bid": round(account.max_bid(c.current_bid), 2)}) for c in params.campaigns]
    params = params.model_copy(update={"campaigns": capped})
    model, schema, version = None, ObservationSchema.from_params(params), None
    if args.model_dir is not None:
        import torch

        torch.set_num_threads(1)
        model, schema, version = promoted_model(args.model_dir)
        params = schema.align(params)  # the model's campaign order
    config = EnvConfig(episode_days=args.loop_days, warmup_days=28, start_dates=(start, start))
    venv = BatchedBiddingVecEnv(params, n_envs=args.n_envs, config=config, schema=schema, seed=0)
    policies = {name: cls.for_env(venv) for name, cls in BASELINES.items()}
    if model is not None:
        policies[POLICY] = model
    t0 = time.perf_counter()
    ev = evaluate(
        policies, venv, args.seeds, policy="static", oracle=False, lp_bound=False, ceiling=True, workers=args.workers
    )
    wall = time.perf_counter() - t0
    table = ev.table()
    static = table["static"]["conversions"]
    best = max((n for n in BASELINES if n != "static"), key=lambda n: table[n]["score"])
    ceiling = table[INFORMED_CEILING]["conversions"]
    episodes = f"seeds {args.seeds} x {args.n_envs} markets"
    print(f"world {params.name} ({path}), {args.loop_days} days from {start}, {episodes}")
    for name in ("static", best, *([POLICY] if model is not None else []), INFORMED_CEILING):
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
    if model is not None:
        mine = table[POLICY]["conversions"]
        line.update(
            model_dir=str(args.model_dir),
            model_version=version,
            policy_conversions=round(mine, 2),
            policy_share_of_ceiling=round(mine / ceiling, 3),
            policy_ratio_to_static=round(mine / static, 3),
            policy_ratio_to_best_baseline=round(mine / table[best]["conversions"], 3),
        )
    print(json.dumps(line))
    return line


if __name__ == "__main__":
    main()
