"""The closed loop on the demo market, against the static operator on the same world and seed.

    .venv/bin/python -m benchmarks.closed_loop [--loop-days 28] [--days N] [--baseline NAME] [--no-train]

Runs the demo's loop (`cli/demo.py`) in a fresh temporary data directory and Dagster instance: the world simulates its
history, all of it (as `make demo` does; `--days N`: only the last N days) is ingested in one run, the retrain job
trains and gates a policy on it (as `make demo` does), then `--loop-days` days are decided by the plan → push loop,
one daily run each. The comparisons run on copies of the world taken before the loop: the static operator (the
reference settings left in force) and the best baseline through the same loop (in a background process while the
policy trains, as in the demo; its log is kept with `--keep`). `GAELP_WORLD_FILE` picks another world file.
Human-readable lines first; the LAST line is one JSON object with days, policy_source (promoted / fallback),
policy_conversions, policy_cpa, baseline_conversions / baseline_cpa (the static operator), best_baseline_conversions,
ratio_to_static, ratio_to_best_baseline, modifiers_pushed, max_daily_spend, wall_s_per_day, train_wall_s.

One run is one draw of the world: the informed ceiling itself varies by 12-23 conversions from run to run over 28
days. So when a model was promoted, `benchmarks.ceiling_headroom` then plays it, the baselines and the ceiling on
the world's true parameters over the same days (3 seeds x 4 markets, about 90 s), and the line carries those
expectations as `expected` (policy_conversions, policy_share_of_ceiling, its ratios, the ceiling's).
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
    ap.add_argument(
        "--days",
        type=int,
        default=None,
        help="history days ingested before the loop (default: all of the world's history, as make demo does)",
    )
    ap.add_argument("--baseline", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the temporary data directory and print where")
    ap.add_argument("--no-train", action="store_true", help="skip training: the loop runs the fallback baseline")
    args = ap.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="gaelp-closed-loop-"))
    os.environ.update({"GAELP_ENV": "demo", "GAELP_DATA_DIR": str(root / "data"), "DAGSTER_HOME": str(root / "home")})
    (root / "home").mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / "orchestration" / "instance" / "dagster.yaml", root / "home")
    import dagster as dg

    from cli import closed_loop, comparison, demo

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
            background = None
            if not args.no_train:  # the baseline's comparison run goes in the background meanwhile, as in the demo
                background = comparison.start_comparison(loop, args.baseline, root / "baseline.log")
            try:
                trained = None if args.no_train else closed_loop.train(instance)
                figures = closed_loop.closed_loop(loop, instance, args.baseline, compare=True, comparison=background)
            finally:
                if background is not None:
                    background.cancel()
        figures["train_wall_s"] = round(trained.wall_s, 1) if trained else None
        figures["gate_reasons"] = trained.reasons if trained else None
        static, best = figures["baseline_conversions"], figures["best_baseline_conversions"]
        figures["ratio_to_static"] = round(figures["policy_conversions"] / static, 3) if static else None
        figures["ratio_to_best_baseline"] = round(figures["policy_conversions"] / best, 3) if best else None
        figures["world_file"] = os.environ.get("GAELP_WORLD_FILE", "default")
        if figures.get("policy_source") == "promoted":
            from benchmarks import ceiling_headroom

            days = ["--start", str(loop[0]), "--loop-days", str(args.loop_days)]
            expected = ceiling_headroom.main([*days, "--model-dir", str(root / "data")])
            figures["expected"] = {
                k: v for k, v in expected.items() if k not in ("benchmark", "world_file", "model_dir")
            }
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
