"""The local instance's event log (orchestration/instance/storage.py) as `make demo`, `make ui`, the daemon and run
workers use it: loaded from orchestration/instance/dagster.yaml, written by one process and read by others while it
writes, and left in Dagster's own layout (the default storage reads it too)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage

from orchestration.instance.storage import PooledSqliteEventLogStorage

pytestmark = pytest.mark.timeout(180)

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "orchestration" / "instance" / "dagster.yaml"
CHECKS = 40

# Another process writes a run: an asset with CHECKS checks (evaluated a little apart, so readers catch the run
# half-written) and one downstream. It prints its run's outcome, then keeps the instance (and its connections) open
# until told to stop on stdin, so readers must see the commits without the writer closing or checkpointing anything.
WRITER = f"""
import sys, time
import dagster as dg

@dg.asset(check_specs=[dg.AssetCheckSpec(f"rows_{{i}}", asset="orders") for i in range({CHECKS})])
def orders():
    yield dg.Output(1)
    for i in range({CHECKS}):
        time.sleep(0.02)
        yield dg.AssetCheckResult(check_name=f"rows_{{i}}", passed=True)

@dg.asset(deps=[orders])
def revenue():
    return 2

job = dg.Definitions(assets=[orders, revenue]).resolve_implicit_global_asset_job_def()
with dg.DagsterInstance.get() as instance:
    result = job.execute_in_process(instance=instance, run_id=sys.argv[1])
    print("success" if result.success else "failure", flush=True)
    sys.stdin.readline()
"""


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(TEMPLATE.read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def test_the_instance_yaml_loads_the_pooled_storage_in_dagsters_layout(home):
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        assert isinstance(storage, PooledSqliteEventLogStorage)
        assert isinstance(instance.run_storage, SqliteRunStorage)  # run and schedule storage: Dagster's defaults
        assert Path(storage.path_for_shard("index")) == home / "history" / "runs" / "index.db"
        assert (home / "history" / "runs.db").exists()
        with storage.index_connection() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            first = conn.connection.dbapi_connection
        with storage.index_connection() as conn:  # the same SQLite connection, not a new one per use
            assert conn.connection.dbapi_connection is first


def _poll(instance: dg.DagsterInstance, run_id: str, stop: threading.Event, counts: list[int], errors: list) -> None:
    while not stop.is_set():
        try:
            counts.append(len(instance.all_logs(run_id)))
        except Exception as e:  # noqa: BLE001 - any failure to read while another process writes is the finding
            errors.append(e)
            return
        time.sleep(0.03)


def test_a_run_written_by_one_process_is_read_by_others_while_it_writes(home):
    run_id = "9d3c1b6e-0000-4000-8000-000000000001"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, run_id],
        env={**os.environ, "DAGSTER_HOME": str(home)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    stop, counts, errors, watched = threading.Event(), [], [], []

    def on_event(event, _cursor):
        watched.append(event)

    with dg.DagsterInstance.get() as reader, dg.DagsterInstance.get() as watcher:
        try:
            # the UI's live run log: Dagster's watch, woken by the run shard's file system events
            watcher.watch_event_logs(run_id, None, on_event)
            poller = threading.Thread(target=_poll, args=(reader, run_id, stop, counts, errors))
            poller.start()
            outcome = writer.stdout.readline().strip()
            stop.set()
            poller.join(timeout=30)
            assert outcome == "success"

            events = reader.all_logs(run_id)
            assert writer.poll() is None, "the writer must still hold its connections open"
            assert not errors, f"reading while another process wrote failed: {errors[0]!r}"
            assert counts == sorted(counts) and any(0 < n < len(events) for n in counts), (
                f"the reader never saw the run half-written: {counts[:5]} ... {counts[-5:]}"
            )
            deadline = time.monotonic() + 20
            while len(watched) < len(events) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert len(watched) == len(events), f"the run watch saw {len(watched)} of {len(events)} events"

            for key in (dg.AssetKey("orders"), dg.AssetKey("revenue")):
                records = reader.fetch_materializations(key, limit=1).records
                assert [r.run_id for r in records] == [run_id]
            check = dg.AssetCheckKey(dg.AssetKey("orders"), f"rows_{CHECKS - 1}")
            (latest,) = reader.event_log_storage.get_asset_check_execution_history(check, limit=1)
            assert latest.run_id == run_id and latest.status.value == "SUCCEEDED"
        finally:
            stop.set()
            writer.communicate(input="\n", timeout=60)
            watcher.end_watch_event_logs(run_id, on_event)
    assert writer.returncode == 0

    # Dagster's default storage reads the same files (an instance switched back, or from before, keeps its history)
    default_config = home / "default_config"
    default_config.mkdir()
    (default_config / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    ref = InstanceRef.from_dir(str(home), config_dir=str(default_config))
    with dg.DagsterInstance.from_ref(ref) as default:
        assert type(default.event_log_storage) is SqliteEventLogStorage
        assert len(default.all_logs(run_id)) == len(events)
        assert default.fetch_materializations(dg.AssetKey("revenue"), limit=1).records[0].run_id == run_id


def test_storing_check_events_does_not_open_a_new_engine_per_event(home, monkeypatch):
    """Dagster's SQLite storage asks whether the asset-check table exists before every check event, each time on a
    new engine; the pooled storage asks once."""
    from dagster._core.storage.event_log.sqlite import sqlite_event_log

    @dg.asset(check_specs=[dg.AssetCheckSpec(f"rows_{i}", asset="orders") for i in range(CHECKS)])
    def orders():
        yield dg.Output(1)
        for i in range(CHECKS):
            yield dg.AssetCheckResult(check_name=f"rows_{i}", passed=True)

    with dg.DagsterInstance.get() as instance:
        assert dg.materialize([orders], instance=instance).success  # set-up done: the tables exist
        engines = []
        real = sqlite_event_log.create_engine
        monkeypatch.setattr(sqlite_event_log, "create_engine", lambda *a, **k: engines.append(a) or real(*a, **k))
        result = dg.materialize([orders], instance=instance)
        assert result.success and len(result.get_asset_check_evaluations()) == CHECKS
        stored = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey("orders"), "rows_0"), limit=5
        )
        assert len(stored) == 2
    assert engines == []
