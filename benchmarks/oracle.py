"""Wall time of the clairvoyant oracle for one day of the default world, with its score, the LP bound's, and the
score of the bids in force on the same day (common random numbers).

    .venv/bin/python -m benchmarks.oracle [--date 2025-06-02] [--seed 7] [--budget-step 5]

Human-readable lines first; the LAST line is one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time

import numpy as np

from rl.market.compiled import CompiledMarket
from rl.market.draws import draw_day, market_rngs
from rl.market.engine import MarketState, resolve_day
from rl.market.params import load_market_params
from rl.policies.oracle import DEFAULT_BID_MULTIPLIERS, clairvoyant_oracle, day_score, lp_bound
from rl.world.paths import DEFAULT_WORLD_FILE


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--date", type=dt.date.fromisoformat, default=dt.date(2025, 6, 2))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--budget-step", type=float, default=5.0)
    args = ap.parse_args(argv)
    params = load_market_params(DEFAULT_WORLD_FILE)
    cm = CompiledMarket.from_params(params)
    state = MarketState.initial(cm, 1)
    draws = draw_day(cm, args.date, market_rngs(args.seed, 1, args.date))

    t0 = time.perf_counter()
    oracle = clairvoyant_oracle(cm, draws, state, budget_step=args.budget_step)
    oracle_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    lp = lp_bound(cm, draws, state)
    lp_s = time.perf_counter() - t0
    budgets = np.array([[c.current_daily_budget for c in params.campaigns]])
    bids = np.array([[c.current_bid for c in params.campaigns]])
    current, _ = resolve_day(cm, draws, state, budgets, bids)
    current_score = day_score(float(current.conversions.sum()), float(current.cost.sum()), params.target_cpa)

    print(
        f"world {params.name} {args.date} seed {args.seed}: {draws.n_opportunities} opportunities, "
        f"{len(DEFAULT_BID_MULTIPLIERS)} bids x {int(params.daily_budget / args.budget_step) + 1} budgets per campaign"
    )
    print(
        f"bids in force : score {current_score:6.2f}  conv {current.conversions.sum():5.1f}  "
        f"spend {current.cost.sum():7.2f}"
    )
    print(
        f"clairvoyant   : score {oracle.score:6.2f}  conv {oracle.conversions:5.1f}  spend {oracle.spend:7.2f}  "
        f"({oracle_s:.2f} s)"
    )
    for c, bid, budget in zip(params.campaigns, oracle.bids, oracle.budgets, strict=True):
        print(f"    {c.name:<42} bid {bid:6.2f} (in force {c.current_bid:5.2f})  budget {budget:6.1f}")
    print(f"LP bound      : score {lp.score:6.2f}  conv {lp.conversions:5.1f}  spend {lp.spend:7.2f}  ({lp_s:.2f} s)")
    line = {
        "benchmark": "oracle",
        "oracle_wall_s": round(oracle_s, 3),
        "oracle_score": round(oracle.score, 3),
        "lp_bound_score": round(lp.score, 3),
        "lp_bound_wall_s": round(lp_s, 3),
        "bids_in_force_score": round(current_score, 3),
        "opportunities": int(draws.n_opportunities),
        "date": args.date.isoformat(),
        "seed": args.seed,
    }
    print(json.dumps(line))
    return line


if __name__ == "__main__":
    main()
