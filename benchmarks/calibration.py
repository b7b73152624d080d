"""Calibration on a demo world: fit time, the 14-day backtest against the goal and the response models' held-out
scores.

    .venv/bin/python -m benchmarks.calibration [--days 730] [--warehouse PATH]
    GAELP_WORLD_FILE=rl/world/worlds/other_account.yaml .venv/bin/python -m benchmarks.calibration

Without --warehouse it ingests `--days` days of the demo world (GAELP_WORLD_FILE, default the reference account;
seed GAELP_WORLD_SEED, default 0) into a fresh temporary data directory and builds the warehouse through the
Dagster assets (several minutes for two years), then fits on the published copy. Human-readable lines first; the
LAST line is one JSON object with fit_wall_s, backtest_wape_spend / _clicks / _conversions (all platforms; per
platform, the noise floor a perfect simulator would score and the 14-day total error with its own noise floor
alongside), backtest_goal_failures (the goal: WAPE within 1.15 × the noise floor and the 14-day total within 5%,
or 1.15 × the total's noise floor where that is wider), the fitted device multipliers, holdout_auc,
holdout_logloss and baseline_logloss (the conversion response model; click_* the same for the click model) over
the rolling held-out windows, and whether each model is used (it beat its baseline).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path


def build_warehouse(days: int) -> Path:
    root = Path(tempfile.mkdtemp(prefix="gaelp-calibration-"))
    os.environ.update({"GAELP_ENV": "demo", "GAELP_DATA_DIR": str(root / "data"), "DAGSTER_HOME": str(root / "home")})
    (root / "home").mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / "orchestration" / "instance" / "dagster.yaml", root / "home")
    import dagster as dg

    from cli.demo import partition_range, run_job

    first, last = partition_range(days)
    print(f"building the demo warehouse {first} .. {last} in {root} (ingestion + dbt through Dagster)", flush=True)
    with dg.DagsterInstance.get() as instance:
        for job in ("ingestion_job", "warehouse_job"):
            result = run_job(job, first, last, instance)
            if not result.success:
                raise SystemExit(f"{job} failed; see the Dagster log above")
    return root / "data" / "published" / "warehouse.duckdb"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--warehouse", type=Path, help="an existing (published) warehouse file to calibrate on")
    ap.add_argument("--markets", type=int, default=8, help="simulated replicates of the held-out days")
    args = ap.parse_args(argv)
    path = args.warehouse or build_warehouse(args.days)

    import duckdb

    from rl.account import AccountSettings
    from rl.calibration import data as calibration_data
    from rl.calibration.backtest import backtest
    from rl.calibration.fit import calibrate
    from rl.calibration.response import fit_response_models

    with duckdb.connect(str(path), read_only=True) as con:
        data = calibration_data.load(con, days=args.days)
        started = time.perf_counter()
        response = fit_response_models(con, holdout_days=14)
        response_s = time.perf_counter() - started
    cal = calibrate(data, AccountSettings(), response=response)
    started = time.perf_counter()
    bt = backtest(data, AccountSettings(), 14, args.markets)
    backtest_s = time.perf_counter() - started
    print(
        f"window {data.first} .. {data.last}; fit {cal.fit_wall_s:.1f} s, response models {response_s:.1f} s, "
        f"backtest {backtest_s:.1f} s"
    )
    for flag in cal.flags:
        print(f"  prior/flag: {flag}")
    for metric in bt.wape:
        cells = "  ".join(
            f"{p} {bt.wape[metric][p]:.1%} (floor {bt.floor[metric][p]:.1%}, "
            f"14-day total {bt.total_error[metric][p]:.1%})"
            for p in bt.wape[metric]
        )
        print(f"  {metric:<12} {cells}")
    conv, click = response.metrics["conversion"], response.metrics["click"]
    out = {
        "benchmark": "calibration",
        "days": data.n_days,
        "fit_wall_s": round(cal.fit_wall_s, 2),
        "response_fit_wall_s": round(response_s, 2),
        "backtest_wall_s": round(backtest_s, 2),
        "backtest_wape_spend": round(bt.wape["spend"]["all"], 4),
        "backtest_wape_clicks": round(bt.wape["clicks"]["all"], 4),
        "backtest_wape_conversions": round(bt.wape["conversions"]["all"], 4),
        "backtest_wape_by_platform": {m: {p: round(v, 4) for p, v in by.items()} for m, by in bt.wape.items()},
        "backtest_noise_floor": {m: {p: round(v, 4) for p, v in by.items()} for m, by in bt.floor.items()},
        "backtest_total_error_14d": {m: {p: round(v, 4) for p, v in by.items()} for m, by in bt.total_error.items()},
        "backtest_total_noise_floor": {m: {p: round(v, 4) for p, v in by.items()} for m, by in bt.total_floor.items()},
        "backtest_goal_failures": bt.failures(),
        "world_file": os.environ.get("GAELP_WORLD_FILE", "rl/world/worlds/reference_account.yaml"),
        "device_shares": [round(v, 4) for v in cal.devices.shares],
        "device_ctr_mult": [round(v, 4) for v in cal.devices.ctr],
        "device_cvr_mult": [round(v, 4) for v in cal.devices.cvr],
        "holdout_auc": round(conv["holdout_auc"], 4),
        "holdout_logloss": round(conv["holdout_logloss"], 6),
        "baseline_logloss": round(conv["baseline_logloss"], 6),
        "holdout_folds": conv["folds"],
        "holdout_trials": conv["n_holdout_trials"],
        "response_model_used": response.conversion.usable,
        "click_model_used": response.click.usable,
        "click_holdout_auc": round(click["holdout_auc"], 4),
        "click_holdout_logloss": round(click["holdout_logloss"], 6),
        "click_baseline_logloss": round(click["baseline_logloss"], 6),
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
