"""What the calibration's errors cost a planner: one steady day planned on the calibrated market, run in the truth.

    .venv/bin/python -m benchmarks.calibration_regret [--calibration PATH] [--date YYYY-MM-DD]
    GAELP_WORLD_FILE=rl/world/worlds/other_account.yaml .venv/bin/python -m benchmarks.calibration_regret ...

A policy that learns in the calibrated market can at best do what that market says is best. This resolves that best
day in the world's TRUE market and compares it with the same planner's day on the true parameters (the planning
ceiling of a settled day) and with the settings in force (`rl.evaluation.regret`). `--calibration`: a
`market_calibration.json` (default: the data directory's, as `make demo` or the retrain job leaves it; a kept
`benchmarks.closed_loop --keep` directory has one under data/calibration/; where there is none, the last `--days`
days of the demo world are ingested into a temporary directory through the Dagster jobs and fitted as the
`market_calibration` asset fits them, a few minutes); `--date`: the day planned (default the day after the
calibration's window, the closed loop's first day). `GAELP_WORLD_FILE` picks the world, which must be the one the
calibration was fitted on.

Human-readable lines first; the LAST line is one JSON object: conversions per day of the ceiling's plan, of the
calibration's plan (and what the calibration expected of it) and of the settings in force, all in the truth;
`calibrated_share_of_ceiling`; the ratios to the settings in force; spend per day.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
from pathlib import Path

WINDOW_DAYS = 365  # the market_calibration asset's default window


def fit_demo_calibration(days: int) -> dict:
    """Ingest the demo world's last `days` days into a temporary data directory, fit its calibration as the
    `market_calibration` asset does (window, response models, the account's settings) and remove the directory;
    the calibration as the asset writes it (summary and params)."""
    import duckdb

    from benchmarks.calibration import build_warehouse
    from orchestration.environment import account_settings
    from rl.calibration import data as calibration_data
    from rl.calibration.fit import calibrate
    from rl.calibration.response import fit_response_models

    warehouse = build_warehouse(days)
    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            data = calibration_data.load(con, days=min(days, WINDOW_DAYS))
            response = fit_response_models(con, holdout_days=14)
        cal = calibrate(data, account_settings(), response)
        return json.loads(json.dumps(cal.summary() | {"params": cal.params.model_dump(mode="json")}, default=str))
    finally:
        shutil.rmtree(warehouse.parents[2], ignore_errors=True)


def main(argv: list[str] | None = None) -> dict:
    from orchestration.environment import data_dir, world_file
    from rl.evaluation.regret import calibration_regret
    from rl.market.params import load_market_params, parse_market_params

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calibration", type=Path, help="a market_calibration.json (default: the data directory's)")
    ap.add_argument("--date", type=dt.date.fromisoformat, help="the day planned (default: the day after the window)")
    ap.add_argument("--days", type=int, default=WINDOW_DAYS, help="days ingested when there is no calibration to read")
    args = ap.parse_args(argv)
    path = args.calibration or data_dir() / "calibration" / "market_calibration.json"
    if args.calibration is not None and not path.exists():
        raise SystemExit(f"no calibration at {path}")
    if path.exists():
        raw, source = json.loads(path.read_text()), str(path)
    else:
        print(f"no calibration at {path}: fitting one on the demo world's last {args.days} days", flush=True)
        raw, source = fit_demo_calibration(args.days), f"fitted on the demo world's last {args.days} days"
    calibrated = parse_market_params(raw["params"], source)
    date = args.date or dt.date.fromisoformat(raw["window"]["last"]) + dt.timedelta(days=1)
    truth = load_market_params(world_file())
    try:
        r = calibration_regret(truth, calibrated, date)
    except ValueError as e:
        raise SystemExit(f"{source} does not calibrate {world_file()}: {e}") from e
    names = ("ceiling", "calibrated", "static")
    print(f"{truth.name} on {date}; calibration of {raw['window']['first']} .. {raw['window']['last']} ({source})")
    print("per campaign, spend → conversions per day in the true market:")
    print(f"{'campaign':>10}" + "".join(f"{n:>24}" for n in names))
    for c, cid in enumerate(r.campaign_ids):
        print(f"{cid:>10}" + "".join(f"{r.spend[n][c]:>14.1f} → {r.conversions[n][c]:>6.2f}" for n in names))
    print(f"{'total':>10}" + "".join(f"{r.spend[n].sum():>14.1f} → {r.total(n):>6.2f}" for n in names))
    print(f"the calibration expected {r.believed:.2f} conversions a day from its plan; the truth gives it "
          f"{r.total('calibrated'):.2f}, {r.share_of_ceiling:.1%} of the ceiling's plan")  # fmt: skip
    static = max(r.total("static"), 1e-12)
    result = {
        "world": truth.name,
        "date": date.isoformat(),
        "ceiling_conversions_per_day": round(r.total("ceiling"), 3),
        "calibrated_plan_conversions_per_day": round(r.total("calibrated"), 3),
        "calibrated_plan_expected_conversions_per_day": round(r.believed, 3),
        "static_conversions_per_day": round(r.total("static"), 3),
        "calibrated_share_of_ceiling": round(r.share_of_ceiling, 4),
        "ceiling_x_static": round(r.total("ceiling") / static, 4),
        "calibrated_plan_x_static": round(r.total("calibrated") / static, 4),
        "spend_per_day": {n: round(float(r.spend[n].sum()), 2) for n in names},
    }
    print(json.dumps(result, sort_keys=True))
    return result


if __name__ == "__main__":
    main()
