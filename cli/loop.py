"""One loop day of the demo's closed loop as the daily job runs it: `run_loop` runs `bidding_loop_job` once per
daily partition (ingest → marts → published copy, plan → push → report) on a data directory's warehouse and demo
world, and records what each day did (`LoopDay`). `cli.closed_loop` runs the policy's days with it, and
`cli.comparison` the best baseline's days on a copy.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from cli.dbt_server import warm_dbt
from orchestration.environment import DATA_DIR_VAR
from orchestration.resources import build_resources, dbt_executable, dbt_resource

QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}  # progress, not every engine event


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


def definitions():
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


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Python's full garbage collections scan every live object, most of which outlive the loop (the definitions,
    the SDKs, and in the demo a trained policy and its evaluation): in a fresh process a loop day's collections took
    up to 0.7 s. Inside the block, `gc.freeze()` moves what lives at that point out of the collections' sight; on
    leaving, it comes back (and whatever died meanwhile is collected then)."""
    try:
        yield
    finally:
        gc.unfreeze()


def run_loop(
    keys: list[str],
    data: Path,
    instance: dg.DagsterInstance,
    plan_config: dict,
    on_day: Callable[[LoopDay], None] | None = None,
) -> list[LoopDay]:
    """One run of `bidding_loop_job` per partition (ingest → marts → published copy, plan → push → report) with the
    environment's resources (`build_resources()`) for the data directory `data`: its warehouse and its demo world."""
    job = definitions().resolve_job_def("bidding_loop_job")
    days = []
    # one dbt build a day: a dbt server forks each from a Python that has dbt imported already (1.2 s a day)
    with data_directory(data), frozen_heap(), warm_dbt(dbt_executable()) as dbt:
        resources = {**build_resources(), "dbt": dbt_resource(dbt)}
        for key in keys:
            started = time.perf_counter()
            gc.collect()  # yesterday's garbage goes; what lives on (a trained model, the definitions...) is frozen
            gc.freeze()
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
