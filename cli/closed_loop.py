"""The closed loop on the demo market, one simulated day at a time: ingest the day, rebuild the marts the plan
needs, plan, push, report (`cli.loop`) — and the comparison runs on copies of the same world taken before the loop
(`cli.comparison`: the static operator, and the best baseline through the same loop when the policy is not that
baseline; that run can go in a background process while the policy trains). `make demo` (`gaelp demo`, cli/demo.py)
and `benchmarks.closed_loop` run it, after `train` (the weekly retrain job on the history ingested: calibration,
training, evaluation with the gate), so the loop's plans come from the promoted model when the gate promotes it.

Conversions of the comparison are the eventual conversions of each day's clicks, read from the world's hidden facts:
evaluation only; the pipeline never reads them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb

from cli.comparison import Comparison, comparison_baseline
from cli.loop import QUIET, LoopDay, definitions, not_passed, run_loop
from orchestration.environment import data_dir, world_file, world_seed
from orchestration.resources import world_dir
from rl.bidding.audit import TABLE as AUDIT_TABLE
from rl.evaluation.closed_loop import Outcome, outcome


@dataclass
class Training:
    """What the retrain job left: whether the gate promoted the model, and why (not)."""

    ok: bool
    promoted: bool
    reasons: list[str]
    version: int | None = None
    best_baseline: str | None = None
    wall_s: float = 0.0


# The retrain job's steps in processes of their own, two at a time: `evaluation_yardsticks` runs beside
# `bidding_policy` (2 cores: training on one, the yardsticks on the other). The processes fork from a server that
# has imported the definitions once, instead of each importing them again.
PARALLEL = {
    "execution": {
        "config": {
            "multiprocess": {
                "max_concurrent": 2,
                "start_method": {"forkserver": {"preload_modules": ["orchestration.definitions"]}},
            }
        }
    }
}


def retrain_job() -> dg.JobDefinition:
    """The weekly retrain job, as the step processes of a multiprocess run rebuild it (`dg.reconstructable`)."""
    return definitions().resolve_job_def("retrain_job")


def train(instance: dg.DagsterInstance, echo: Callable[[str], None] = print) -> Training:
    """Run the weekly retrain job (market_calibration → bidding_policy beside evaluation_yardsticks →
    policy_evaluation with its blocking promotion gate) on the marts as they are, as the Monday schedule would."""
    echo("Training: calibrate the simulator on the marts, train the policy in it (≤ 5 min) while the baselines and")
    echo("yardsticks run on the held-out markets, then evaluate it; the gate promotes it only if it beats them all")
    started = time.perf_counter()
    with dg.execute_job(
        dg.reconstructable(retrain_job), instance=instance, run_config={**QUIET, **PARALLEL}, raise_on_error=False
    ) as result:
        return _training(result, time.perf_counter() - started, echo)


def _training(result: dg.ExecuteJobResult, wall: float, echo: Callable[[str], None]) -> Training:
    gates = [e for e in result.get_asset_check_evaluations() if e.check_name == "promotion_gate"]
    mats = result.asset_materializations_for_node("policy_evaluation")
    if not result.success and not gates:
        failed = [e.step_key for e in result.all_events if e.is_step_failure]
        why = f"the retrain job failed in {', '.join(failed) or 'a step'} (see the run's logs)"
        echo(f"Training failed after {wall:.0f} s: {why}")
        return Training(False, False, [why], wall_s=wall)
    meta = mats[0].metadata if mats else {}
    reasons = list(gates[0].metadata["reasons"].value) if gates else ["the gate did not run"]
    training = Training(
        ok=True,
        promoted=bool(meta["promoted"].value) if "promoted" in meta else False,
        reasons=reasons,
        version=int(meta["version"].value) if "version" in meta else None,
        best_baseline=str(meta["best_baseline"].value) if "best_baseline" in meta else None,
        wall_s=wall,
    )
    verdict = "promoted" if training.promoted else "NOT promoted: " + "; ".join(reasons)
    echo(f"Training done in {wall:.0f} s: model v{training.version} {verdict}")
    return training


def modifiers_pushed(data: Path, keys: list[str]) -> int:
    """Device and hour-block modifier changes applied to the world by the loop's pushes (the audit's rows)."""
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        (n,) = con.execute(
            f"SELECT count(*) FROM {AUDIT_TABLE} WHERE field IN ('device_modifier', 'hour_modifier') "
            "AND status = 'applied' AND data_partition BETWEEN ? AND ?",
            [keys[0], keys[-1]],
        ).fetchone()
    except duckdb.CatalogException:  # no push ever ran
        n = 0
    finally:
        con.close()
    return int(n)


def day_table(keys: list[str], days: list[LoopDay], runs: list[Outcome]) -> str:
    head = f"  {'day':<10} {'policy':<26} {'plan $':>7} {'wall s':>6}" + "".join(
        f" {r.name[:14] + ' $':>16} {'conv':>5}" for r in runs
    )
    lines = [head]
    by_key = {d.partition: d for d in days}
    for k in keys:
        d = by_key.get(k)
        label = f"{d.policy_version} ({d.policy_source})" if d and d.ok else ("FAILED" if d else "")
        lines.append(
            f"  {k:<10} {label[:26]:<26} {d.planned_budget if d else 0:7.2f} {d.wall_s if d else 0:6.1f}"
            + "".join(f" {r.spend[k]:16.2f} {r.conversions[k]:5.0f}" for r in runs)
        )
    return "\n".join(lines)


def closed_loop(
    loop_keys: list[str],
    instance: dg.DagsterInstance,
    baseline: str | None = None,
    compare: bool = True,
    echo: Callable[[str], None] = print,
    detail: Callable[[str], None] | None = None,
    comparison: Comparison | None = None,
) -> dict:
    """Run the loop on the demo world (data_dir()), then the comparison runs on copies (`comparison`, when they
    were started before, else now). Returns the figures. `echo` gets a line per day (with an ETA) and the summary;
    `detail` (default `echo`) the per-day table."""
    detail = detail or echo
    best = comparison_baseline(baseline)
    if comparison is not None and (not compare or comparison.best != best):
        comparison.cancel()  # training changed the registry's best baseline: that run compares with the wrong one
        if compare:
            echo(f"    the registry now names {best} the best baseline: its comparison run starts again")
        comparison = None
    if compare and comparison is None:
        comparison = Comparison.prepare(loop_keys, best)
    try:
        return _run_and_compare(loop_keys, instance, best, comparison, echo, detail)
    finally:
        if comparison is not None:
            comparison.cancel()  # stopped early (an error, Ctrl-C): the background run goes too


def _run_and_compare(
    loop_keys: list[str],
    instance: dg.DagsterInstance,
    best: str,
    comparison: Comparison | None,
    echo: Callable[[str], None],
    detail: Callable[[str], None],
) -> dict:
    data, wdir, wfile, seed = data_dir(), Path(world_dir()), str(world_file()), world_seed()
    done: list[LoopDay] = []

    def progress(d: LoopDay) -> None:
        done.append(d)
        mean = sum(x.wall_s for x in done) / len(done)
        eta = mean * (len(loop_keys) - len(done))
        echo(
            f"    day {len(done):>2}/{len(loop_keys)} {d.partition} {'ok' if d.ok else 'FAILED'} {d.wall_s:5.1f} s, "
            f"{d.policy_version} ({d.policy_source}), planned {d.planned_budget:.2f}"
            + (f", ETA {eta / 60:.1f} min" if len(done) < len(loop_keys) else "")
            + (f" — {d.error}" if d.error else "")
            + (f" — checks not passed: {', '.join(not_passed(d))}" if not_passed(d) else "")
        )

    days = run_loop(loop_keys, data, instance, {"fallback_baseline": best}, on_day=progress)
    policy_is_baseline = all(d.policy_version == f"baseline:{best}" for d in days if d.ok)
    runs = [outcome("policy", wdir, wfile, seed, loop_keys)]
    if comparison is not None:
        runs.append(outcome("static operator", comparison.static[1], wfile, seed, loop_keys))
        if policy_is_baseline:
            comparison.cancel()
            echo(f"    (no promoted model: the policy run IS the best baseline, {best}; not run twice)")
        else:
            comparison.run_baseline(echo)
            runs.append(outcome(f"baseline {best}", comparison.baseline[1], wfile, seed, loop_keys))
    compare = comparison is not None
    detail("\n" + day_table(loop_keys, days, runs))
    echo("\n  run                     spend   conversions      CPA   max spend/day")
    for r in runs:
        echo(f"  {r.name:<20} {r.total_spend:9.2f} {r.total_conversions:13.0f} {r.cpa:8.2f} {r.max_daily_spend:15.2f}")
    echo(
        "  (conversions: eventual conversions of each day's clicks, from the demo world's hidden facts — "
        "evaluation only)"
    )
    static = runs[1] if compare else None
    best_run = runs[0] if policy_is_baseline else (runs[2] if compare else None)
    promoted = [d for d in days if d.ok and d.policy_source == "promoted"]
    source = "promoted" if days and len(promoted) == sum(d.ok for d in days) and promoted else "fallback"
    reasons = sorted({d.fallback_reason for d in days if d.ok and d.fallback_reason})
    return {
        "policy_source": source,
        "fallback_reasons": reasons,
        "best_baseline_conversions": best_run.total_conversions if best_run else None,
        "best_baseline_cpa": round(best_run.cpa, 2) if best_run else None,
        "modifiers_pushed": modifiers_pushed(data, loop_keys),
        "days": len(loop_keys),
        "days_ok": sum(d.ok for d in days),
        "checks_not_passed": sorted({name for d in days for name in not_passed(d)}),
        "policy": sorted({d.policy_version for d in days if d.ok}),
        "policy_is_fallback_baseline": policy_is_baseline,
        "best_baseline": best,
        "policy_conversions": runs[0].total_conversions,
        "policy_spend": round(runs[0].total_spend, 2),
        "policy_cpa": round(runs[0].cpa, 2),
        "baseline_conversions": static.total_conversions if static else None,
        "baseline_spend": round(static.total_spend, 2) if static else None,
        "baseline_cpa": round(static.cpa, 2) if static else None,
        "max_daily_spend": round(runs[0].max_daily_spend, 2),
        "wall_s_per_day": round(sum(d.wall_s for d in days) / max(len(days), 1), 2),
    }
