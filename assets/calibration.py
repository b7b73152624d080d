"""Calibration: the market simulator fitted to the account's own reports (`rl.calibration.fit`), checked by a
backtest on held-out days (`rl.calibration.backtest`) before anything learns in it.

Reads the published read-only warehouse copy (never the demo world's truth). Writes the fitted `MarketParams`
as JSON with its params hash and data window under data/calibration/ and records it in the warehouse.
"""

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import duckdb as duckdb_client
from dagster_duckdb import DuckDBResource

from assets import _preview
from assets.discovery import discovered_patterns
from orchestration.environment import data_dir, published_warehouse_path
from orchestration.resources.account import AccountResource
from rl.bidding.reference_store import ReferenceStore
from rl.calibration import data as calibration_data
from rl.calibration.backtest import backtest
from rl.calibration.fit import calibrate
from rl.calibration.plots import plot_backtest, plot_fit
from rl.calibration.records import CalibrationRecords
from rl.calibration.response import fit_response_models

BACKTEST = "calibration_backtest"  # blocking: the simulator is materially wrong, nothing may learn in it
BACKTEST_GOAL = "calibration_backtest_goal"  # a warning: the simulator misses the calibration goal, reported


class CalibrationConfig(dg.Config):
    """Window of history to fit on and the backtest's two bars (the account's budget and target: the `account`
    resource). The goal
    (`calibration_backtest_goal`, a warning): per metric and platform, WAPE within `floor_margin` × the noise floor a
    perfect simulator scores, and the held-out total within `total_tolerance` (or the margin × that total's own noise
    floor, where it is wider). The block (`calibration_backtest`, blocking): a material miss that chance does not
    explain — WAPE above `block_floor_margin` × its noise floor (and 5 points above it), or the total off by more
    than `block_total_tolerance` and by more than a perfect simulator would miss it on some judged pair once in
    1 / `block_false_alarm` backtests (`BacktestResult.material_misses`); nothing learns in such a simulator.
    Between the two, training goes on and the policy's own gate decides (it scores the policy in the demo world
    too)."""

    window_days: int = 365
    holdout_days: int = 14
    backtest_markets: int = 8
    floor_margin: float = 1.15
    total_tolerance: float = 0.05
    block_floor_margin: float = 2.0
    block_total_tolerance: float = 0.15
    block_false_alarm: float = 0.05


def calibration_dir() -> Path:
    folder = data_dir() / "calibration"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dg.asset(
    deps=[discovered_patterns],
    group_name="calibration",
    kinds={"python", "duckdb"},
    pool="duckdb_writer",  # it records the fit in the warehouse
    check_specs=[
        dg.AssetCheckSpec(BACKTEST, asset="market_calibration", blocking=True),
        dg.AssetCheckSpec(BACKTEST_GOAL, asset="market_calibration"),
    ],
)
def market_calibration(
    context: dg.AssetExecutionContext, config: CalibrationConfig, duckdb: DuckDBResource, account: AccountResource
) -> dg.MaterializeResult:
    """The simulator the bidding policy learns in: a `MarketParams` fitted to the account's marts, with the
    parameters that are priors rather than fits flagged, and a backtest on the most recent days."""
    published = published_warehouse_path()
    with duckdb_client.connect(str(published), read_only=True) as con:
        data = calibration_data.load(con, days=config.window_days)
        response = fit_response_models(con, holdout_days=config.holdout_days)
        # after GAELP took over, the plan decodes and caps bids from the recorded reference bids: so must training
        references = ReferenceStore(con).recorded_bids()
    context.log.info(f"calibrating on {data.first} .. {data.last} ({data.n_days} days)")
    settings = account.settings()
    cal = calibrate(data, settings, response, reference_bids=references)
    context.log.info(f"fitted in {cal.fit_wall_s:.1f} s; backtesting the last {config.holdout_days} days")
    # the backtest's fit must not see the held-out days, so no response model there (it is refitted on the window)
    bt = backtest(data, settings, config.holdout_days, config.backtest_markets)
    folder = calibration_dir()
    summary = cal.summary() | {
        "params": cal.params.model_dump(mode="json"),
        "backtest": {
            "first": bt.first.isoformat(),
            "last": bt.last.isoformat(),
            "wape": bt.wape,
            "noise_floor": bt.floor,
            "total_error": bt.total_error,
            "total_noise_floor": bt.total_floor,
        },
    }
    text = json.dumps(summary, indent=2, default=str)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    (folder / f"market_calibration-{stamp}.json").write_text(text)
    latest = folder / "market_calibration.json"
    latest.write_text(text)
    failures = bt.failures(config.floor_margin, config.total_tolerance)
    blocking = bt.material_misses(config.block_false_alarm, config.block_floor_margin, config.block_total_tolerance)
    with duckdb.get_connection() as conn:
        CalibrationRecords(conn).record(cal.params.params_hash(), data.first, data.last, not failures, text)
    for line in failures:
        context.log.warning(f"backtest misses the goal: {line}")
    fit_png = plot_fit(cal, folder / "market_calibration.png")
    bt_png = plot_backtest(bt.daily, bt.wape, folder / "calibration_backtest.png")
    wape = _preview.markdown(
        [{"metric": m} | {p: bt.label(m, p) for p in sorted(bt.wape[m])} for m in bt.wape],
        f"no held-out day to backtest on in {bt.first} .. {bt.last}",
    )
    response_rows = [
        {
            "model": name,
            "held-out AUC": f"{m['holdout_auc']:.4f}",
            "held-out log loss": f"{m['holdout_logloss']:.5f}",
            "per-campaign frequency log loss": f"{m['baseline_logloss']:.5f}",
            "gain (± SE)": f"{m['logloss_gain']:.6f} ± {m['logloss_gain_se']:.6f} over {m.get('folds', 1)} windows",
            "used": "yes" if getattr(response, name).usable else "no: not better than its baseline",
        }
        for name, m in response.metrics.items()
    ]
    return dg.MaterializeResult(
        metadata={
            "artifact": dg.MetadataValue.path(str(latest)),
            "params_hash": cal.params.params_hash(),
            "window": f"{data.first} .. {data.last}",
            "fit_wall_s": round(cal.fit_wall_s, 1),
            "priors_and_flags": _preview.bullets(cal.flags, "none: every parameter was fitted"),
            "fit": _preview.png(fit_png, "fitted vs observed"),
            "backtest": _preview.png(bt_png, f"backtest on held-out {bt.first} .. {bt.last}"),
            "backtest_wape": wape,
            "response_model": _preview.markdown(response_rows, "no response model fitted"),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=BACKTEST,
                passed=not blocking,
                metadata=_check_metadata(
                    bt,
                    wape,
                    bt_png,
                    blocking,
                    f"WAPE ≤ max({config.block_floor_margin} × noise floor, floor + 5 points); held-out total within "
                    f"{config.block_total_tolerance:.0%} or chance (false alarm ≤ {config.block_false_alarm:.0%})",
                ),
            ),
            dg.AssetCheckResult(
                check_name=BACKTEST_GOAL,
                passed=not failures,
                severity=dg.AssetCheckSeverity.WARN,
                metadata=_check_metadata(
                    bt,
                    wape,
                    bt_png,
                    failures,
                    f"WAPE ≤ {config.floor_margin} × noise floor; held-out total within {config.total_tolerance:.0%} "
                    f"(or {config.floor_margin} × its noise floor)",
                ),
            ),
        ],
    )


def _check_metadata(bt, wape, png, failures: list[str], bar: str) -> dict:
    return {
        "held_out": f"{bt.first} .. {bt.last}",
        "bar": bar,
        "wape": wape,
        "total_error_14d": dg.MetadataValue.json(bt.total_error),
        "failures": ", ".join(failures) or "none",
        "plot": _preview.png(png, "backtest"),
    }


CALIBRATION_ASSETS = [market_calibration]
