"""End to end through the real UI server: `dagster-webserver` loads workspace.yaml in a subprocess, a GraphQL client
launches `ingestion_job` for one day exactly as the UI's "Materialize" button would, and the run lands in DuckDB.

The instance is a temporary copy of orchestration/instance/dagster.yaml with the default run coordinator, so a
launched run starts at once without `dagster-daemon`; the pool limit (duckdb_writer, 1) stays in force. The world is
the reference account at 10% volume so the run takes seconds. The server and everything it started (code server,
run workers) share one process group, stopped at the end whatever happened.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import duckdb
import pytest

from tests.conftest import scaled
from tests.orchestration.webserver_helpers import (
    Webserver,
    WebserverError,
    find_job,
    launch_partition,
    processes_with_env,
    run_errors,
    start_webserver,
    wait_for_run,
    write_instance,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
JOB = "ingestion_job"
DAY = "2024-12-10"  # the partitions start 2024-11-26 (the world's history_start); window 12-07..12-10 with lookback
OUTSIDE = "1999-01-01"
TABLES = (
    "ga4_sessions",
    "ga4_conversions",
    "ad_performance",
    "ad_conversion_lag",
    "ad_impression_share",
    "ad_settings",
    "ad_modifiers",
)
STARTUP_DEADLINE_S = 120  # 10-30 s on a 2-core machine; generous, with the server's output if it runs out
RUN_DEADLINE_S = 150

MATERIALIZATIONS = """
query Materializations($assetKey: AssetKeyInput!, $partitions: [String!]) {
  assetOrError(assetKey: $assetKey) {
    __typename
    ... on Asset { assetMaterializations(partitions: $partitions) { runId partition } }
    ... on AssetNotFoundError { message }
  }
}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory, reference_params):
    """A temporary instance, data directory and small world, and a webserver serving workspace.yaml over them."""
    tmp = tmp_path_factory.mktemp("webserver")
    home = tmp / "dagster_home"
    write_instance(home, REPO / "orchestration" / "instance" / "dagster.yaml")
    world_file = tmp / "world.yaml"
    world_file.write_text(scaled(reference_params, 0.1).to_yaml())
    data = tmp / "data"

    env = dict(os.environ)
    env.pop("GAELP_HISTORY_START", None)  # the partitions start where the world file's history starts
    env.update(
        DAGSTER_HOME=str(home),
        GAELP_ENV="demo",
        GAELP_DATA_DIR=str(data),
        GAELP_WORLD_FILE=str(world_file),
        GAELP_WORLD_SEED="3",
    )
    server = start_webserver(REPO / "workspace.yaml", env, tmp / "webserver.log", cwd=REPO)
    try:
        server.wait_ready(STARTUP_DEADLINE_S)
        location, repository = find_job(server, JOB, STARTUP_DEADLINE_S)
        yield {"server": server, "data": data, "location": location, "repository": repository}
    finally:
        try:
            server.stop()
        finally:
            leftovers = processes_with_env("DAGSTER_HOME", str(home))
            for pid in leftovers:
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
        assert not leftovers, f"processes {leftovers} outlived the webserver's process group (killed now)"


# The run refused below fails in the asset code, whatever the executor; in one process it needs one import of the
# definitions instead of one per step (the successful run of the first test keeps the job's multiprocess executor).
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}


def _launch(stack, partition: str, run_config: dict | None = None) -> dict:
    return launch_partition(stack["server"], stack["location"], stack["repository"], JOB, partition, run_config)


def _wait(server: Webserver, run_id: str) -> dict:
    try:
        return wait_for_run(server, run_id, RUN_DEADLINE_S)
    except WebserverError as e:
        pytest.fail(str(e))


def test_a_run_launched_over_graphql_materializes_its_partition_into_duckdb(stack):
    server = stack["server"]
    launched = _launch(stack, DAY)
    assert launched["__typename"] == "LaunchRunSuccess", f"launchRun refused {DAY}: {launched}"
    run_id = launched["run"]["runId"]

    run = _wait(server, run_id)
    assert run["status"] == "SUCCESS", (
        f"run {run_id} ended {run['status']}; errors:\n{run_errors(server, run_id)}\nserver output:\n{server.log()}"
    )
    assert {"key": "dagster/partition", "value": DAY} in run["tags"]
    assert {(tuple(m["assetKey"]["path"]), m["partition"]) for m in run["assetMaterializations"]} == {
        ((t,), DAY) for t in TABLES
    }

    for asset in ("ga4_sessions", "ad_performance"):
        result = server.graphql(MATERIALIZATIONS, {"assetKey": {"path": [asset]}, "partitions": [DAY]})
        materializations = result["assetOrError"]
        assert materializations["__typename"] == "Asset", materializations
        assert [m["runId"] for m in materializations["assetMaterializations"] if m["partition"] == DAY] == [run_id]

    # The run worker has exited (the run is terminal), so DuckDB's single-writer lock is free.
    with duckdb.connect(str(stack["data"] / "warehouse.duckdb"), read_only=True) as con:
        per_day = dict(con.execute("SELECT date, count(*) FROM raw.ad_performance GROUP BY date").fetchall())
        sessions = con.execute("SELECT count(*) FROM raw.ga4_sessions WHERE date = ?", [DAY]).fetchone()[0]
    day = dt.date.fromisoformat(DAY)
    assert per_day.get(day, 0) > 0, f"raw.ad_performance has no rows for {DAY}: {per_day}"
    # a fresh warehouse: the lookbacks revisit only days already loaded, so the run holds its partition alone
    assert set(per_day) == {day}
    assert sessions > 0


def test_a_partition_outside_the_partitions_is_refused_naming_it(stack):
    """Dagster 1.13 accepts any `dagster/partition` tag at launch, so the refusal comes from the run: it must fail,
    materialize nothing, and say which partition it could not run."""
    server = stack["server"]
    launched = _launch(stack, OUTSIDE, IN_PROCESS)
    if launched["__typename"] != "LaunchRunSuccess":  # refused at launch: the error must name the partition
        assert OUTSIDE in json.dumps(launched), launched
        return
    run_id = launched["run"]["runId"]
    run = _wait(server, run_id)
    errors = run_errors(server, run_id)
    assert run["status"] == "FAILURE", f"a run for {OUTSIDE} ended {run['status']}; errors:\n{errors}"
    assert run["assetMaterializations"] == []
    assert OUTSIDE in errors, f"the run's errors do not name {OUTSIDE}:\n{errors}"
