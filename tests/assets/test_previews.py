"""Every asset in the definitions shows a preview in the Dagster UI: its latest materialization, after the pipeline
ran the way the demo does (history backfill, the weekly learning assets, one closed-loop day, then whatever is
left for that day), carries a table or a plot and no placeholder value.

The asset list is walked from `orchestration.definitions.defs`, so a new asset is held to the same bar without
touching this test. Tiny scale: the session's 60-day demo warehouse (tests/assets/conftest.py) on one instance.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time

import dagster as dg
import duckdb
import pytest

from assets import _preview
from cli.closed_loop import modifiers_pushed
from cli.loop import run_loop
from orchestration.definitions import defs
from orchestration.resources import build_resources, world_dir
from tests.assets.conftest import LAST
from tests.assets.test_learning import EVAL, TRAIN

SEED = 5  # the session world's seed
LOOP_DAY = (dt.date.fromisoformat(LAST) + dt.timedelta(days=1)).isoformat()  # the first day after the history
# what test_calibration and test_learning run on: seconds, not minutes
CONFIGS = {
    "market_calibration": {
        "window_days": 60,
        "backtest_markets": 2,
        "floor_margin": 100.0,
        "total_tolerance": 10.0,
        "block_floor_margin": 100.0,
        "block_total_tolerance": 10.0,
    },
    "bidding_policy": TRAIN,
    "policy_evaluation": EVAL,
}


def _run_config(selection: set[dg.AssetKey]) -> dict:
    return {"ops": {name: {"config": c} for name, c in CONFIGS.items() if dg.AssetKey(name) in selection}}


@pytest.mark.slow
def test_every_asset_materialization_has_a_preview_and_no_placeholder(built, tmp_path, monkeypatch):
    assert built["result"].success
    instance: dg.DagsterInstance = built["instance"]  # the history backfill (ingestion, warehouse) is recorded here
    src, data = built["tmp"], tmp_path / "data"
    # a private copy of the warehouse, its published copy and the world (the loop day pushes to the world)
    (data / "published").mkdir(parents=True)
    shutil.copyfile(src / "data" / "warehouse.duckdb", data / "warehouse.duckdb")
    shutil.copyfile(src / "data" / "published" / "warehouse.duckdb", data / "published" / "warehouse.duckdb")
    monkeypatch.setenv("GAELP_ENV", "demo")
    monkeypatch.setenv("GAELP_DATA_DIR", str(data))
    monkeypatch.setenv("GAELP_WORLD_FILE", str(src / "world.yaml"))
    monkeypatch.setenv("GAELP_WORLD_SEED", str(SEED))
    shutil.copytree(src / "world", world_dir())
    resources = build_resources()  # the definitions' own demo resources, pointed at the copy
    graph = defs.resolve_asset_graph()
    keys = {k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable}
    assets = list(defs.assets)

    def unmaterialized() -> set[dg.AssetKey]:
        return {k for k in keys if instance.get_latest_materialization_event(k) is None}

    # the weekly assets (discovery, calibration, learning: everything unpartitioned), as the retrain job would
    unpartitioned = {k for k in keys if graph.get(k).partitions_def is None}
    weekly = dg.materialize(
        assets,
        selection=sorted(unpartitioned),
        resources=resources,
        instance=instance,
        run_config=_run_config(unpartitioned),
        raise_on_error=False,
    )
    # one day of the demo's closed loop, exactly as `make demo` runs it (ingest, marts, plan, push)
    started = time.perf_counter()
    (day,) = run_loop([LOOP_DAY], data, instance, {})
    loop_s = time.perf_counter() - started
    assert day.ok, day.error
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        planned = con.execute(
            "SELECT platform, device_modifiers IS NOT NULL, hour_modifiers IS NOT NULL FROM bid_plan "
            "WHERE data_partition = ?",
            [LOOP_DAY],
        ).fetchall()
        audited = con.execute(
            "SELECT field, status FROM bid_push_audit WHERE data_partition = ? AND status IN ('applied', "
            "'skipped_unchanged')",
            [LOOP_DAY],
        ).fetchall()
    # the search campaigns' plan rows carry their modifiers, the social ones none, and the push handled them
    assert {(p, d, h) for p, d, h in planned} == {
        ("google_ads", True, True),
        ("microsoft_ads", True, True),
        ("meta", False, False),
        ("tiktok", False, False),
    }
    assert {"device_modifier", "hour_modifier"} <= {f for f, _ in audited}
    applied = sum(f.endswith("_modifier") and s == "applied" for f, s in audited)
    assert modifiers_pushed(data, [LOOP_DAY]) == applied
    # then every asset still without a materialization (the day's report and any asset added later), that day
    remaining = unmaterialized()
    rest = None
    if remaining:
        rest = dg.materialize(
            assets,
            selection=sorted(remaining),
            partition_key=LOOP_DAY if any(graph.get(k).partitions_def for k in remaining) else None,
            resources=resources,
            instance=instance,
            run_config=_run_config(remaining),
            raise_on_error=False,
        )

    problems = {}
    for key in sorted(keys):
        event = instance.get_latest_materialization_event(key)
        name = key.to_user_string()
        if event is None:
            problems[name] = "never materialized"
            continue
        metadata = event.asset_materialization.metadata
        if not _preview.has_preview(metadata):
            problems[name] = f"no preview (a table or an embedded PNG) among {sorted(metadata)}"
        elif bad := _preview.placeholders(metadata):
            problems[name] = "placeholder values: " + ", ".join(f"{k}={metadata[k].value!r}"[:120] for k in bad)
    failures = [
        f"{r.dagster_run.run_id[:8]}: {e.step_key}: {e.step_failure_data.error.message.strip()[:300]}"
        for r in (weekly, rest)
        if r is not None
        for e in r.all_events
        if e.is_step_failure
    ]
    assert not problems, "\n".join(f"{k}: {v}" for k, v in problems.items()) + "\n" + "\n".join(failures)
    print(f"loop day {LOOP_DAY}: {loop_s:.1f} s; {len(keys)} assets previewed")
