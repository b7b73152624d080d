"""The closed loop on the demo market, one simulated day at a time: ingest the day, rebuild the marts the plan
needs, plan, push, report — and the comparison runs on copies of the same world taken before the loop (the static
operator, and the best baseline through the same loop when the policy is not that baseline; that run can go in a
background process while the policy trains: `Comparison.start`). `make demo` (`gaelp demo`, cli/demo.py) and
`benchmarks.closed_loop` run it, after `train` (the weekly retrain job on the history ingested: calibration,
training, evaluation with the gate), so the loop's plans come from the promoted model when the gate promotes it.

Conversions of the comparison are the eventual conversions of each day's clicks, read from the world's hidden facts:
evaluation only; the pipeline never reads them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import duckdb

from orchestration.environment import DATA_DIR_VAR, data_dir, world_file, world_seed
from orchestration.resources import build_resources, world_dir
from rl.bidding.audit import TABLE as AUDIT_TABLE
from rl.bidding.policy_choice import promoted_policy
from rl.evaluation.closed_loop import Outcome, outcome

QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}  # progress, not every engine event

DEFAULT_BASELINE = "online_lp"  # the best baseline in the simulator (benchmarks.policy) when the registry names none


@dataclass
class LoopDay:
    partition: str
    wall_s: float
    policy_version: str = ""
    policy_source: str = ""
    planned_budget: float = 0.0
    fallback_reason: str = ""
    ok: bool = True
    error: str = ""
    # every asset check the day's run evaluated (the dbt tests, the plan's guardrails): name → passed
    checks: dict[str, bool] = field(default_factory=dict)


def _definitions():
    # deferred: the definitions need the dbt manifest (make dbt-manifest), which `gaelp accounts` does not
    from orchestration.definitions import defs

    return defs


@contextlib.contextmanager
def data_directory(data: Path) -> Iterator[None]:
    """GAELP_DATA_DIR pointed at `data` while the block runs (the resources and dbt's profile read it), then back."""
    previous = os.environ.get(DATA_DIR_VAR)
    os.environ[DATA_DIR_VAR] = str(data)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(DATA_DIR_VAR, None)
        else:
            os.environ[DATA_DIR_VAR] = previous


def run_loop(
    keys: list[str],
    data: Path,
    instance: dg.DagsterInstance,
    plan_config: dict,
    on_day: Callable[[LoopDay], None] | None = None,
) -> list[LoopDay]:
    """One run of `bidding_loop_job` per partition (ingest → marts → published copy, plan → push → report) with the
    environment's resources (`build_resources()`) for the data directory `data`: its warehouse and its demo world."""
    job = _definitions().resolve_job_def("bidding_loop_job")
    days = []
    with data_directory(data):
        resources = build_resources()
        for key in keys:
            started = time.perf_counter()
            result = job.execute_in_process(
                run_config={**QUIET, "ops": {"daily_bid_plan": {"config": plan_config}}},
                instance=instance,
                partition_key=key,
                resources=resources,
                raise_on_error=False,
            )
            day = LoopDay(key, time.perf_counter() - started, ok=result.success)
            day.checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
            mats = result.asset_materializations_for_node("daily_bid_plan")
            if mats:
                meta = mats[0].metadata
                day.policy_version = meta["policy_version"].value
                day.policy_source = meta["policy_source"].value
                day.planned_budget = meta["total_budget"].value
                day.fallback_reason = "" if day.policy_source == "promoted" else str(meta["fallback"].value)
            if not result.success:
                day.error = (
                    "; ".join(
                        f"{e.step_key}: {e.step_failure_data.error.message.strip()[:300]}"
                        for e in result.all_events
                        if e.is_step_failure
                    )
                    or "a blocking check failed (the push did not run)"
                )
            days.append(day)
            if on_day:
                on_day(day)
    return days


def not_passed(day: LoopDay) -> list[str]:
    """The checks of a loop day that did not pass (a warning lets the day go on; an error blocks the plan)."""
    return sorted(name for name, passed in day.checks.items() if not passed)


@dataclass
class Training:
    """What the retrain job left: whether the gate promoted the model, and why (not)."""

    ok: bool
    promoted: bool
    reasons: list[str]
    version: int | None = None
    best_baseline: str | None = None
    wall_s: float = 0.0


def train(instance: dg.DagsterInstance, echo: Callable[[str], None] = print) -> Training:
    """Run the weekly retrain job (market_calibration → bidding_policy → policy_evaluation with its blocking
    promotion gate) on the marts as they are, as the Monday schedule would."""
    echo("Training: calibrate the simulator on the marts, train the policy in it (≤ 5 min), evaluate it against")
    echo("every baseline on held-out markets; the gate promotes it only if it beats them all")
    started = time.perf_counter()
    result = (
        _definitions()
        .resolve_job_def("retrain_job")
        .execute_in_process(run_config=QUIET, instance=instance, raise_on_error=False)
    )
    wall = time.perf_counter() - started
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


def copy_state(data: Path, world: Path, target: Path) -> tuple[Path, Path]:
    """Copy the warehouse and the world state into the data directory `target`, laid out as the resources expect
    (`warehouse.duckdb`, `world/seed-<seed>`), for a comparison run; returns (data directory, world directory)."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copyfile(data / "warehouse.duckdb", target / "warehouse.duckdb")
    copied = target / world.relative_to(data) if world.is_relative_to(data) else target / "world" / world.name
    shutil.copytree(world, copied)
    return target, copied


def comparison_baseline(explicit: str | None) -> str:
    """The best baseline: the one asked for, else the policy registry's, else DEFAULT_BASELINE."""
    if explicit:
        return explicit
    try:
        con = duckdb.connect(str(data_dir() / "warehouse.duckdb"), read_only=True)
        try:
            best = promoted_policy(con, str(data_dir() / "models"))[3]
        finally:
            con.close()
    except Exception:
        best = None
    return best or DEFAULT_BASELINE


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


PROGRESS_FILE = "loop_days.jsonl"  # one line per loop day a comparison run finished (the parent reads its progress)


@dataclass
class Comparison:
    """The comparison runs, on copies of the world and warehouse taken before the loop: the static operator (the
    reference settings left in force: nothing pushed) and the best baseline through the same loop (the same job,
    resources and checks as the policy's days, on its own data directory and an ephemeral Dagster instance).

    The baseline's run depends on nothing the retrain job makes (baselines take no trained parameters), so it can
    `start` in a background process as soon as the copies exist: training runs on one core (SB3 with one torch
    thread), and the baseline's 28 days fit on the other meanwhile instead of after the policy's loop."""

    keys: list[str]
    best: str
    static: tuple[Path, Path]  # (data directory, world directory) of the static operator's copy
    baseline: tuple[Path, Path]  # the same for the best baseline's run
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    @classmethod
    def prepare(cls, keys: list[str], best: str) -> Comparison:
        """Copy the world and warehouse as they are now (before the loop's first day) for both runs."""
        data, wdir = data_dir(), Path(world_dir())
        static = copy_state(data, wdir, data / "compare" / "static_operator")
        return cls(keys, best, static, copy_state(data, wdir, data / "compare" / f"baseline_{best}"))

    def start(self, log_path: Path) -> None:
        """Run the best baseline's loop in a background process (`python -m cli.closed_loop`); its Dagster and dbt
        logs go to `log_path`. It runs in a process group of its own (with the dbt builds it starts), which `cancel`
        stops as a whole: the callers cancel on every way out, Ctrl-C included."""
        self.log_path = log_path
        command = [sys.executable, "-m", "cli.closed_loop", "--data", str(self.baseline[0]), "--policy", self.best]
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*command, *self.keys],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=os.environ | {DATA_DIR_VAR: str(self.baseline[0])},
                start_new_session=True,
            )

    def days_done(self) -> int:
        path = self.baseline[0] / PROGRESS_FILE
        return len(path.read_text().splitlines()) if path.exists() else 0

    def run_baseline(self, echo: Callable[[str], None]) -> bool:
        """The best baseline's run through the loop days: waited for if it runs in the background, else run here.
        True if every day of it succeeded."""
        if self.process is None:
            echo(f"    comparison: the best baseline ({self.best}) through the same {len(self.keys)} days on a copy")
            return all(d.ok for d in run_loop(self.keys, self.baseline[0], dg.DagsterInstance.ephemeral(), self.plan))
        if self.process.poll() is None:
            echo(
                f"    waiting for the best baseline's run in the background (day {self.days_done()}/{len(self.keys)}"
                f"; its log: {self.log_path})"
            )
        ok = self.process.wait() == 0
        if not ok:
            echo(f"    the best baseline's run failed (exit {self.process.returncode}); its log: {self.log_path}")
        return ok

    @property
    def plan(self) -> dict:
        return {"policy": self.best}

    def cancel(self) -> None:
        """Stop the background run and the dbt build it may be in (it is not needed, or the caller is stopping).
        SIGKILL to its process group: a SIGTERM is swallowed while Dagster executes a run in process (it captures
        interrupts and clears them when the run ends), and the run only ever writes its own disposable copy."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def start_comparison(
    keys: list[str], baseline: str | None, log_path: Path, echo: Callable[[str], None] = print
) -> Comparison:
    """Copy the state for the comparison runs now and start the best baseline's run in the background (call it
    before training: see `Comparison`). `closed_loop(..., comparison=...)` collects it."""
    comparison = Comparison.prepare(keys, comparison_baseline(baseline))
    comparison.start(log_path)
    echo(
        f"meanwhile, in the background: the best baseline ({comparison.best}) through the same {len(keys)} loop days "
        "on a copy of the world (for the comparison)"
    )
    return comparison


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


def main(argv: list[str] | None = None) -> int:
    """`python -m cli.closed_loop --data DIR --policy NAME DAY...`: one comparison run through the loop days on the
    copy in DIR (an ephemeral Dagster instance), a line per day on stdout and in DIR/loop_days.jsonl. Exit 1 if a
    day failed. `Comparison.start` runs it in the background."""
    ap = argparse.ArgumentParser(prog="python -m cli.closed_loop", description=main.__doc__)
    ap.add_argument("--data", type=Path, required=True, help="the copy's data directory (warehouse.duckdb, world/)")
    ap.add_argument("--policy", required=True, help="the baseline that plans every day")
    ap.add_argument("keys", nargs="+", help="the loop days (daily partitions), in order")
    args = ap.parse_args(argv)
    if not (args.data / "warehouse.duckdb").exists():
        print(f"error: no warehouse.duckdb in {args.data} (a comparison run needs a copy: Comparison.prepare)")
        return 2
    progress = args.data / PROGRESS_FILE
    progress.unlink(missing_ok=True)

    def on_day(day: LoopDay) -> None:
        line = json.dumps({"day": day.partition, "ok": day.ok, "wall_s": round(day.wall_s, 2), "error": day.error})
        print(line, flush=True)
        with open(progress, "a") as out:
            out.write(line + "\n")

    days = run_loop(args.keys, args.data, dg.DagsterInstance.ephemeral(), {"policy": args.policy}, on_day=on_day)
    return 0 if all(d.ok for d in days) else 1


if __name__ == "__main__":
    raise SystemExit(main())
