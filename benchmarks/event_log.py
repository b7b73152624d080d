"""The Dagster event log of the local instance: Dagster's default SQLite storage against the project's pooled one
(orchestration/instance/storage.py), side by side in one process on identical workloads.

    .venv/bin/python -m benchmarks.event_log [--repeats 3]

The workload is shaped like one closed-loop day of `bidding_loop_job`: seven ingestion assets, a dbt-like multi-asset
of 18 models with 158 checks, and four downstream assets (about 600 events, three in four of them the warehouse's
checks planned, output and evaluated). It is recorded once, then for each storage, in its own temporary
DAGSTER_HOME loaded from a dagster.yaml like orchestration/instance/dagster.yaml:
- `store`: the recorded events replayed into the event log (`store_event`, as a run writes them), a new run each
  time: the storage alone;
- `job`: the same job executed in process on the instance: Dagster's whole per-run work around the storage.
Storages, alternated in every repeat (the median is reported): `default` (Dagster's SqliteEventLogStorage, the
instance before this storage), `pooled` (the project's), `pooled_full_sync` (the same pool with SQLite's default
synchronous=FULL, to tell the pool's share from the fsyncs'), `consolidated` (Dagster's one-file
ConsolidatedSqliteEventLogStorage, the other storage Dagster ships).
Human-readable lines first; the LAST line is one JSON object with events_per_run, s_per_600_events and job_wall_s
per storage, events_per_s, store_speedup and job_speedup (default / pooled) and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import dagster as dg
import yaml
from dagster._core.instance.ref import InstanceRef

from orchestration.instance.storage import PooledSqliteEventLogStorage

TEMPLATE = Path(__file__).resolve().parents[1] / "orchestration" / "instance" / "dagster.yaml"
INGESTION = ("ga4_sessions", "ga4_conversions", "ad_performance", "ad_conversion_lag", "ad_settings", "ad_modifiers")
MODELS = 18
CHECKS = 158
EVENTS = 600  # the unit of the figures: about one loop day


class PooledFullSyncEventLogStorage(PooledSqliteEventLogStorage):
    """The pooled storage with SQLite's default synchronous=FULL: the pool's effect without the fsync setting's."""

    SYNCHRONOUS = "FULL"


def loop_day_job() -> dg.JobDefinition:
    """A job with the shape of a closed-loop day (the events it writes, not its work)."""
    raw = [dg.asset(name=name)(lambda: 1) for name in (*INGESTION, "ad_impression_share")]
    specs = [dg.AssetSpec(f"model_{i}", deps=[a.key for a in raw]) for i in range(MODELS)]
    checks = [dg.AssetCheckSpec(f"test_{i}", asset=f"model_{i % MODELS}") for i in range(CHECKS)]

    @dg.multi_asset(specs=specs, check_specs=checks)
    def warehouse(context):
        context.log.info("dbt build")
        for spec in specs:
            yield dg.MaterializeResult(asset_key=spec.key)
        for check in checks:
            yield dg.AssetCheckResult(asset_key=check.asset_key, check_name=check.name, passed=True)

    downstream = []
    for name in ("published_warehouse", "daily_bid_plan", "bid_push", "daily_performance_report"):
        deps = [downstream[-1]] if downstream else [s.key for s in specs]
        downstream.append(dg.asset(name=name, deps=deps)(lambda: None))
    return dg.Definitions(assets=[*raw, warehouse, *downstream]).resolve_implicit_global_asset_job_def()


def instance_yaml(kind: str, home: Path) -> str:
    """The project's instance file, with the event log storage `kind` in place of the pooled one."""
    config = yaml.safe_load(TEMPLATE.read_text())
    storage = {
        "pooled": config["event_log_storage"],
        "pooled_full_sync": {
            "module": "benchmarks.event_log",
            "class": PooledFullSyncEventLogStorage.__name__,
            "config": {"base_dir": str(home)},
        },
        "consolidated": {
            "module": "dagster._core.storage.event_log",
            "class": "ConsolidatedSqliteEventLogStorage",
            "config": {"base_dir": str(home / "history" / "runs")},
        },
        "default": None,
    }[kind]
    config.pop("event_log_storage")
    if storage:
        config["event_log_storage"] = storage
    return yaml.safe_dump(config)


def open_instance(kind: str, root: Path) -> dg.DagsterInstance:
    home = root / kind
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(instance_yaml(kind, home))
    os.environ["DAGSTER_HOME"] = str(home)  # the project's file reads its base_dir from it
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


def replay(instance: dg.DagsterInstance, events: list) -> float:
    run_id = str(uuid.uuid4())
    storage = instance.event_log_storage
    started = time.perf_counter()
    for event in events:
        storage.store_event(event._replace(run_id=run_id))
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--kinds", default="default,pooled,pooled_full_sync,consolidated")
    args = ap.parse_args(argv)
    kinds = args.kinds.split(",")
    job = loop_day_job()
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    with dg.DagsterInstance.ephemeral() as scratch:
        recorded = scratch.all_logs(job.execute_in_process(instance=scratch, run_config=quiet).run_id)
    root = Path(tempfile.mkdtemp(prefix="gaelp-event-log-"))
    previous_home = os.environ.get("DAGSTER_HOME")
    store: dict[str, list[float]] = {k: [] for k in kinds}
    runs: dict[str, list[float]] = {k: [] for k in kinds}
    try:
        instances = {kind: open_instance(kind, root) for kind in kinds}
        for repeat in range(args.repeats):
            order = kinds if repeat % 2 == 0 else kinds[::-1]  # neither storage always runs on a warmer machine
            for kind in order:
                store[kind].append(replay(instances[kind], recorded) * EVENTS / len(recorded))
                started = time.perf_counter()
                if not job.execute_in_process(instance=instances[kind], run_config=quiet).success:
                    raise SystemExit(f"the job failed on the {kind} storage")
                runs[kind].append(time.perf_counter() - started)
        counts = {kind: len(instance.get_run_records()) for kind, instance in instances.items()}
        for instance in instances.values():
            instance.dispose()
    finally:
        if previous_home is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous_home
        shutil.rmtree(root, ignore_errors=True)
    assert len(set(counts.values())) == 1, counts  # every storage recorded the same runs
    s_per_600 = {k: round(statistics.median(v), 3) for k, v in store.items()}
    job_wall = {k: round(statistics.median(v), 3) for k, v in runs.items()}
    print(f"{len(recorded)} events per run, {args.repeats} repeats, load average {os.getloadavg()[0]:.2f}")
    for kind in kinds:
        print(f"  {kind:<17} store {s_per_600[kind]:7.2f} s per {EVENTS} events   job {job_wall[kind]:6.2f} s")
    both = {"default", "pooled"} <= set(kinds)
    line = {
        "benchmark": "event_log",
        "events_per_run": len(recorded),
        "repeats": args.repeats,
        "s_per_600_events": s_per_600,
        "events_per_s": {k: round(EVENTS / v, 1) for k, v in s_per_600.items()},
        "job_wall_s": job_wall,
        "store_speedup": round(s_per_600["default"] / s_per_600["pooled"], 1) if both else None,
        "job_speedup": round(job_wall["default"] / job_wall["pooled"], 2) if both else None,
        "load_average": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(line))
    return line


if __name__ == "__main__":
    main()
