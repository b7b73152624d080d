"""The closed loop on the demo market, against the static operator on the same world and seed.

    .venv/bin/python -m benchmarks.closed_loop [--loop-days 28] [--days 90] [--baseline NAME]

Runs `orchestration.demo`'s loop in a fresh temporary data directory and Dagster instance: the world simulates its
history, the last `--days` history days are ingested in one run, then `--loop-days` days are decided by the plan →
push loop, one daily run each. The comparison is the static operator (the reference settings left in force) on a
copy of the world taken before the loop. With no promoted model in the policy registry the "policy" is the
fallback baseline (said in the output and in the JSON's `policy`).
Human-readable lines first; the LAST line is one JSON object with days, policy_conversions, policy_cpa,
baseline_conversions, baseline_cpa, max_daily_spend, wall_s_per_day.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loop-days", type=int, default=28)
    ap.add_argument("--days", type=int, default=90, help="history days ingested before the loop (default 90)")
    ap.add_argument("--baseline", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the temporary data directory and print where")
    args = ap.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="gaelp-closed-loop-"))
    os.environ.update({"GAELP_ENV": "demo", "GAELP_DATA_DIR": str(root / "data"), "DAGSTER_HOME": str(root / "home")})
    (root / "home").mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / "orchestration" / "instance" / "dagster.yaml", root / "home")
    import dagster as dg

    from orchestration import closed_loop, demo

    started = time.perf_counter()
    try:
        prepared = demo.prepare(args.days, args.loop_days, fresh=False)
        if isinstance(prepared, int):
            raise SystemExit(prepared)
        history, loop = prepared
        with dg.DagsterInstance.get() as instance:
            print(f"history: ingesting {history[0]} .. {history[-1]} (the world simulates from its start)")
            t = time.perf_counter()
            result = demo.run_job("daily_data_job", history[0], history[-1], instance)
            if not result.success:
                raise SystemExit("error: the history backfill failed")
            print(f"history done in {time.perf_counter() - t:.0f} s")
            figures = closed_loop.closed_loop(loop, instance, args.baseline, compare=True)
        figures["total_wall_s"] = round(time.perf_counter() - started, 1)
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(figures, sort_keys=True))
    return figures


if __name__ == "__main__":
    main()
