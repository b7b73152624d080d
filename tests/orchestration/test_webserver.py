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
import time
from pathlib import Path

import duckdb
import pytest

from tests.conftest import scaled
from tests.orchestration.webserver_helpers import Webserver, processes_with_env, start_webserver

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
)
STARTUP_DEADLINE_S = 120  # 10-30 s on a 2-core machine; generous, with the server's output if it runs out
RUN_DEADLINE_S = 150
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}

# The run coordinator that submits straight to the run launcher (the default, queued one waits for the daemon).
IMMEDIATE_RUN_COORDINATOR = """
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
"""

REPOSITORIES = """
{ repositoriesOrError {
    __typename
    ... on RepositoryConnection { nodes { name location { name } jobs { name } } }
    ... on PythonError { message }
} }
"""

WORKSPACE = """
{ workspaceOrError {
    __typename
    ... on Workspace { locationEntries { name loadStatus locationOrLoadError {
        __typename ... on PythonError { message stack } } } }
    ... on PythonError { message }
} }
"""

LAUNCH = """
mutation Launch($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message className }
    ... on Error { message }
  }
}
"""

RUN = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status tags { key value } assetMaterializations { assetKey { path } partition } }
    ... on Error { message }
  }
}
"""

# Every event of a run with its message, and for errors the whole cause chain (the step's own error is a wrapper).
RUN_EVENTS = """
query RunEvents($runId: ID!, $cursor: String) {
  runOrError(runId: $runId) {
    ... on Run { eventConnection(afterCursor: $cursor, limit: 1000) {
      cursor hasMore
      events {
        __typename
        ... on MessageEvent { message stepKey }
        ... on ErrorEvent { error { message stack errorChain { error { message stack } } } }
      }
    } }
  }
}
"""

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
    home.mkdir()
    template = (REPO / "orchestration" / "instance" / "dagster.yaml").read_text()
    (home / "dagster.yaml").write_text(template.rstrip("\n") + "\n" + IMMEDIATE_RUN_COORDINATOR)
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
        location, repository = _find_job(server, time.monotonic() + STARTUP_DEADLINE_S)
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


def _find_job(server: Webserver, deadline: float) -> tuple[str, str]:
    """(location name, repository name) of the repository holding JOB, once the code location has loaded."""
    while True:
        workspace = server.graphql(WORKSPACE)["workspaceOrError"]
        assert workspace["__typename"] == "Workspace", workspace
        for entry in workspace["locationEntries"]:
            error = entry["locationOrLoadError"]
            if error and error["__typename"] == "PythonError":
                stack = "".join(error["stack"])
                pytest.fail(f"code location {entry['name']} failed to load:\n{error['message']}{stack}")
        repositories = server.graphql(REPOSITORIES)["repositoriesOrError"]
        assert repositories["__typename"] == "RepositoryConnection", repositories
        for node in repositories["nodes"]:
            if JOB in {j["name"] for j in node["jobs"]}:
                return node["location"]["name"], node["name"]
        if time.monotonic() > deadline:
            pytest.fail(f"no repository serves {JOB}: {json.dumps(repositories)}\nserver output:\n{server.log()}")
        time.sleep(1)


def _launch(stack, partition: str) -> dict:
    params = {
        "selector": {
            "repositoryLocationName": stack["location"],
            "repositoryName": stack["repository"],
            "jobName": JOB,
        },
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
    }
    return stack["server"].graphql(LAUNCH, {"executionParams": params})["launchRun"]


def _run(server: Webserver, run_id: str) -> dict:
    run = server.graphql(RUN, {"runId": run_id})["runOrError"]
    assert run["__typename"] == "Run", run
    return run


def _events(server: Webserver, run_id: str) -> list[dict]:
    events, cursor = [], None
    while True:
        page = server.graphql(RUN_EVENTS, {"runId": run_id, "cursor": cursor})["runOrError"]["eventConnection"]
        events += page["events"]
        cursor = page["cursor"]
        if not page["hasMore"]:
            return events


def _errors(server: Webserver, run_id: str) -> str:
    """Every error of the run's event log with its causes, one block per event."""
    blocks = []
    for event in _events(server, run_id):
        error = event.get("error")
        if not error:
            continue
        chain = [error, *(link["error"] for link in error["errorChain"])]
        text = "\n".join(e["message"].rstrip() + "\n" + "".join(e["stack"]) for e in chain)
        blocks.append(f"[{event['__typename']} {event.get('stepKey') or ''}] {event['message']}\n{text}")
    return "\n\n".join(blocks)


def _wait(server: Webserver, run_id: str) -> dict:
    deadline = time.monotonic() + RUN_DEADLINE_S
    while True:
        run = _run(server, run_id)
        if run["status"] in TERMINAL:
            return run
        if time.monotonic() > deadline:
            messages = "\n".join(f"  {e['__typename']}: {e.get('message', '')}" for e in _events(server, run_id))
            pytest.fail(
                f"run {run_id} still {run['status']} after {RUN_DEADLINE_S} s; its events:\n{messages}\n"
                f"server output:\n{server.log()}"
            )
        time.sleep(1)


def test_a_run_launched_over_graphql_materializes_its_partition_into_duckdb(stack):
    server = stack["server"]
    launched = _launch(stack, DAY)
    assert launched["__typename"] == "LaunchRunSuccess", f"launchRun refused {DAY}: {launched}"
    run_id = launched["run"]["runId"]

    run = _wait(server, run_id)
    assert run["status"] == "SUCCESS", (
        f"run {run_id} ended {run['status']}; errors:\n{_errors(server, run_id)}\nserver output:\n{server.log()}"
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
    # the partition and the click-date conversion report's 30-day lookback, cut at the first partition (11-26)
    assert set(per_day) == {day - dt.timedelta(days=n) for n in range(15)}
    assert sessions > 0


def test_a_partition_outside_the_partitions_is_refused_naming_it(stack):
    """Dagster 1.13 accepts any `dagster/partition` tag at launch, so the refusal comes from the run: it must fail,
    materialize nothing, and say which partition it could not run."""
    server = stack["server"]
    launched = _launch(stack, OUTSIDE)
    if launched["__typename"] != "LaunchRunSuccess":  # refused at launch: the error must name the partition
        assert OUTSIDE in json.dumps(launched), launched
        return
    run_id = launched["run"]["runId"]
    run = _wait(server, run_id)
    errors = _errors(server, run_id)
    assert run["status"] == "FAILURE", f"a run for {OUTSIDE} ended {run['status']}; errors:\n{errors}"
    assert run["assetMaterializations"] == []
    assert OUTSIDE in errors, f"the run's errors do not name {OUTSIDE}:\n{errors}"
