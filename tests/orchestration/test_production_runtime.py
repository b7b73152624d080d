"""The production path on one machine, for real (deploy/):

- Postgres storage: a throwaway PostgreSQL server on 127.0.0.1 (Debian's `postgresql`, installed when missing), an
  instance with deploy/dagster.yaml's storage section, one partition of `ingestion_job` materialized by another
  process, and the run read back from Postgres by a new instance: status, partition, materializations.
- The code server the webserver and daemon talk to: `dagster api grpc -m orchestration.definitions`, reached over
  gRPC and through deploy/workspace.yaml, as the production webserver reaches it.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from tests.orchestration.production import (
    CODE_SERVER_DEADLINE_S,
    DAY,
    INSTANCE_YAML,
    JOB,
    PG_GLOBS,
    PG_VARS,
    REPO,
    SERVER_DEADLINE_S,
    WORKSPACE_YAML,
    _demo_env,
    _free_port,
    _load,
    _pg_env,
)
from tests.system_packages import ensure_debian_packages, find_executable

# ---------------------------------------------------------------------------------------------------------------
# A throwaway PostgreSQL server
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL cluster in a temporary directory, listening on 127.0.0.1 only, with a password-protected role
    and an empty database; stopped and deleted at the end whatever happened."""
    ensure_debian_packages("postgresql")
    pg_ctl = find_executable("pg_ctl", tuple(g.format("pg_ctl") for g in PG_GLOBS))
    initdb = find_executable("initdb", tuple(g.format("initdb") for g in PG_GLOBS))
    if pg_ctl is None or initdb is None:
        pytest.fail("the postgresql package is installed but pg_ctl/initdb were not found (/usr/lib/postgresql)")

    # PostgreSQL refuses to run as root: as root (CI), run the server as the `postgres` user the Debian package
    # creates, in a directory it owns (pytest's own tmp dirs are root-only, 0700).
    as_owner: list[str] = []
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail(
                "running as root and there is no `postgres` user to run the server as (the Debian package "
                "creates it: apt-get install --reinstall postgresql-common)"
            )
        as_owner = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="gaelp-pg-"))
    data, log = root / "data", root / "server.log"
    pg = {"port": _free_port(), "user": "gaelp_dagster", "db": "gaelp_dagster", "password": secrets.token_urlsafe(18)}
    pwfile = root / "pwfile"
    pwfile.write_text(pg["password"] + "\n")
    if as_owner:
        os.chown(root, owner.pw_uid, owner.pw_gid)
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)

    def run(*command: str, timeout: float = 120) -> None:
        done = subprocess.run([*as_owner, *command], capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            server_log = log.read_text() if log.exists() else ""
            pytest.fail(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}{server_log}")

    started = False
    try:
        # scram-sha-256 over TCP, so the test proves DAGSTER_PG_PASSWORD is what gets Dagster in
        run(
            str(initdb),
            "-D",
            str(data),
            "-U",
            pg["user"],
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            "-E",
            "UTF8",
            "--no-instructions",
        )
        options = f"-c listen_addresses=127.0.0.1 -p {pg['port']} -k {root} -c fsync=off -c full_page_writes=off"
        run(str(pg_ctl), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", str(SERVER_DEADLINE_S), "start")
        started = True
        import psycopg2

        conn = psycopg2.connect(
            host="127.0.0.1", port=pg["port"], user=pg["user"], password=pg["password"], dbname="postgres"
        )
        try:
            conn.autocommit = True  # CREATE DATABASE refuses to run in a transaction
            with conn.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{pg["db"]}"')
        finally:
            conn.close()
        yield pg
    finally:
        try:
            if started:
                subprocess.run(
                    [*as_owner, str(pg_ctl), "-D", str(data), "-m", "immediate", "-w", "stop"],
                    capture_output=True,
                    timeout=60,
                    check=False,
                )
        finally:
            shutil.rmtree(root, ignore_errors=True)


def _query(pg: dict, sql: str, params: tuple = ()) -> list[tuple]:
    import psycopg2

    conn = psycopg2.connect(
        host="127.0.0.1", port=pg["port"], user=pg["user"], password=pg["password"], dbname=pg["db"]
    )
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    finally:
        conn.close()


# The run worker's side, in its own process as in production: the real Definitions (orchestration.definitions),
# the instance from DAGSTER_HOME, one partition of the job. It prints what it materialized, as JSON, last.
MATERIALIZE_ONE_PARTITION = """
import json, sys
import dagster as dg
from orchestration.definitions import defs

job, partition = sys.argv[1], sys.argv[2]
with dg.DagsterInstance.get() as instance:
    result = defs.resolve_job_def(job).execute_in_process(instance=instance, partition_key=partition)
    keys = sorted(e.asset_key.to_user_string() for e in result.get_asset_materialization_events())
    print(json.dumps({"run_id": result.run_id, "success": result.success, "materialized": keys}))
"""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_partition_materialized_with_postgres_storage_is_read_back_by_a_new_instance(
    postgres, tmp_path, reference_params
):
    """The production storage end to end: one process runs the day's ingestion against an instance whose runs and
    event log live in Postgres; a second instance, opened fresh from the same DAGSTER_HOME (as the webserver or
    the daemon would), finds the run, its partition and every materialization, and Postgres holds no secret."""
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    home = tmp_path / "dagster_home"
    home.mkdir()
    production = _load(INSTANCE_YAML)
    # deploy/dagster.yaml's storage and pool limit as they are; the default coordinator and launcher instead of
    # the queue (no daemon here) and Kubernetes (no cluster here)
    instance_yaml = {k: production[k] for k in ("storage", "concurrency", "telemetry")}
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_yaml))
    env = {**_demo_env(tmp_path, reference_params), **_pg_env(postgres), "DAGSTER_HOME": str(home)}

    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", MATERIALIZE_ONE_PARTITION, JOB, DAY],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=480,
    )
    assert done.returncode == 0, f"the run worker failed:\n{done.stdout[-4000:]}\n{done.stderr[-8000:]}"
    reported = json.loads(done.stdout.strip().splitlines()[-1])
    assert reported["success"] and reported["materialized"], reported
    print(f"\nmaterialized {len(reported['materialized'])} assets in {time.monotonic() - started:.1f}s")

    # A new instance from the same DAGSTER_HOME, in this process, with the connection details from the environment.
    saved = {k: os.environ.get(k) for k in PG_VARS}
    os.environ.update(_pg_env(postgres))
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            assert isinstance(instance.run_storage, PostgresRunStorage)
            assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
            assert instance.get_concurrency_config().pool_config.default_pool_limit == 1

            run = instance.get_run_by_id(reported["run_id"])
            assert run is not None, "the run is not in the Postgres run storage"
            assert run.job_name == JOB
            assert run.status == dg.DagsterRunStatus.SUCCESS
            assert run.tags.get("dagster/partition") == DAY
            runs = instance.get_runs(filters=dg.RunsFilter(job_name=JOB, tags={"dagster/partition": DAY}))
            assert [r.run_id for r in runs] == [reported["run_id"]]

            read_back = set()
            for key in reported["materialized"]:
                asset_key = dg.AssetKey.from_user_string(key)
                records = instance.fetch_materializations(asset_key, limit=10).records
                assert [r.run_id for r in records] == [reported["run_id"]], key
                assert records[0].partition_key == DAY, key
                read_back.add(key)
            assert read_back == set(reported["materialized"])
            events = instance.all_logs(reported["run_id"], of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
            assert sorted(e.dagster_event.asset_key.to_user_string() for e in events) == reported["materialized"]
            assert instance.get_materialized_partitions(dg.AssetKey.from_user_string(reported["materialized"][0])) == {
                DAY
            }
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    # It really is in Postgres (not a SQLite file next to DAGSTER_HOME) ...
    assert _query(postgres, "SELECT count(*) FROM runs WHERE run_id = %s", (reported["run_id"],)) == [(1,)]
    (count,) = _query(
        postgres,
        "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'",
        (reported["run_id"],),
    )[0]
    assert count == len(reported["materialized"])
    assert not list(home.rglob("*.db")), "a SQLite storage was created next to the Postgres one"
    # ... and no table there holds the database password (instance config is stored as `env:` references).
    tables = [t for (t,) in _query(postgres, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    leaks = [
        t
        for t in tables
        if _query(postgres, f'SELECT count(*) FROM "{t}" x WHERE x::text LIKE %s', (f"%{postgres['password']}%",))[0][0]
    ]
    assert not leaks, f"the Postgres password is stored in {leaks}"


# ---------------------------------------------------------------------------------------------------------------
# The code server, and the production workspace that points at it
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_code_server_serves_the_definitions_to_the_production_workspace(tmp_path, reference_params):
    """`dagster api grpc -m orchestration.definitions` (the user-code deployment's command) answers over gRPC, and
    deploy/workspace.yaml, with its host and port from the environment, loads the `gaelp` location from it."""
    from dagster._core.remote_representation.external_data import RepositoryErrorSnap
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget
    from dagster._grpc.client import DagsterGrpcClient
    from dagster._grpc.types import ListRepositoriesResponse
    from dagster._serdes import deserialize_value

    port = _free_port()
    env = _demo_env(tmp_path, reference_params)
    log = tmp_path / "code_server.log"
    command = [
        str(Path(sys.executable).parent / "dagster"),
        "api",
        "grpc",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-m",
        "orchestration.definitions",
        "-d",
        str(REPO),
        "--location-name",
        "gaelp",
    ]
    with log.open("w") as out:
        # its own process group: everything it starts is stopped with it
        server = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        client = DagsterGrpcClient(port=port, host="127.0.0.1")
        deadline = time.monotonic() + CODE_SERVER_DEADLINE_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"the code server exited ({server.returncode}):\n{log.read_text()[-6000:]}")
            try:
                assert client.ping("gaelp")["echo"] == "gaelp"
                break
            except Exception:
                if time.monotonic() > deadline:
                    pytest.fail(f"the code server did not answer in {CODE_SERVER_DEADLINE_S}s:\n{log.read_text()}")
                time.sleep(1)
        listed = deserialize_value(client.list_repositories())
        assert not isinstance(listed, RepositoryErrorSnap), listed
        assert isinstance(listed, ListRepositoriesResponse)
        assert listed.repository_symbols, "the code server lists no repository"

        (tmp_path / "webserver_home").mkdir()
        os.environ["GAELP_CODE_SERVER_HOST"], os.environ["GAELP_CODE_SERVER_PORT"] = "127.0.0.1", str(port)
        try:
            with (
                dg.DagsterInstance.local_temp(str(tmp_path / "webserver_home")) as instance,
                WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(WORKSPACE_YAML)])) as workspace,
            ):
                context = workspace.create_request_context()
                errors = context.code_location_errors()
                assert not errors, errors[0].to_string()
                location = context.get_code_location("gaelp")
                jobs = {j.name for repo in location.get_repositories().values() for j in repo.get_all_jobs()}
                assert {JOB, "daily_bidding_job"} <= jobs
        finally:
            os.environ.pop("GAELP_CODE_SERVER_HOST", None)
            os.environ.pop("GAELP_CODE_SERVER_PORT", None)
    finally:
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)


# ---------------------------------------------------------------------------------------------------------------
# Configuration validated offline
# ---------------------------------------------------------------------------------------------------------------
