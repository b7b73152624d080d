"""The production path (deploy/): what can be proven on one machine without a cluster or a cloud account.

- Postgres storage, for real: a throwaway PostgreSQL server on 127.0.0.1 (Debian's `postgresql`, installed when
  missing), an instance with deploy/dagster.yaml's storage section, one partition of `ingestion_job` materialized
  by another process, and the run read back from Postgres by a new instance: status, partition, materializations.
- The code server the webserver and daemon talk to: `dagster api grpc -m orchestration.definitions`, reached over
  gRPC and through deploy/workspace.yaml, as the production webserver reaches it.
- Configuration that cannot run here (Kubernetes, Docker, MotherDuck): validated against the real schemas of the
  installed dagster-k8s / dagster-docker / dagster-postgres / dbt-duckdb, offline, and checked for secrets.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import dagster as dg
import pytest
import yaml

from tests.conftest import scaled
from tests.system_packages import ensure_debian_packages, find_executable

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
INSTANCE_YAML = DEPLOY / "dagster.yaml"
DOCKER_INSTANCE_YAML = DEPLOY / "docker" / "dagster.yaml"
WORKSPACE_YAML = DEPLOY / "workspace.yaml"
HELM_VALUES = DEPLOY / "k8s" / "values.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"

JOB = "ingestion_job"
DAY = "2024-12-10"  # the partitions start 2024-11-26 (the reference world's history_start)
PG_VARS = ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB")
PG_GLOBS = ("/usr/lib/postgresql/*/bin/{}",)  # Debian keeps the server tools off PATH
SERVER_DEADLINE_S = 60
CODE_SERVER_DEADLINE_S = 120  # importing the definitions takes 10-30 s on a 2-core machine

# Every credential the prod resources read (orchestration/resources/__init__.py) and the warehouse's.
CREDENTIAL_VARS = (
    "GA4_PROPERTY_ID",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_ADS_DEVELOPER_TOKEN",
    "GOOGLE_ADS_CLIENT_ID",
    "GOOGLE_ADS_CLIENT_SECRET",
    "GOOGLE_ADS_REFRESH_TOKEN",
    "GOOGLE_ADS_LOGIN_CUSTOMER_ID",
    "GOOGLE_ADS_CUSTOMER_ID",
    "META_APP_ID",
    "META_APP_SECRET",
    "META_ACCESS_TOKEN",
    "META_AD_ACCOUNT_ID",
    "TIKTOK_ADVERTISER_ID",
    "TIKTOK_ACCESS_TOKEN",
    "MICROSOFT_ADS_DEVELOPER_TOKEN",
    "MICROSOFT_ADS_CLIENT_ID",
    "MICROSOFT_ADS_CLIENT_SECRET",
    "MICROSOFT_ADS_REFRESH_TOKEN",
    "MICROSOFT_ADS_CUSTOMER_ID",
    "MICROSOFT_ADS_ACCOUNT_ID",
    "MOTHERDUCK_TOKEN",
)


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_env(pg: dict) -> dict[str, str]:
    return {
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": str(pg["port"]),
        "DAGSTER_PG_USERNAME": pg["user"],
        "DAGSTER_PG_PASSWORD": pg["password"],
        "DAGSTER_PG_DB": pg["db"],
    }


def _demo_env(tmp: Path, reference_params) -> dict[str, str]:
    """A demo world at 10% of the reference account's volume, with its state under `tmp`."""
    world_file = tmp / "world.yaml"
    world_file.write_text(scaled(reference_params, 0.1).to_yaml())
    env = {k: v for k, v in os.environ.items() if k != "GAELP_HISTORY_START"}
    env.update(
        GAELP_ENV="demo",
        GAELP_DATA_DIR=str(tmp / "data"),
        GAELP_WORLD_FILE=str(world_file),
        GAELP_WORLD_SEED="3",
    )
    return env


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


@pytest.fixture
def pg_vars(monkeypatch):
    values = {
        "DAGSTER_PG_HOST": "pg.internal",
        "DAGSTER_PG_PORT": "6543",
        "DAGSTER_PG_USERNAME": "dagster",
        "DAGSTER_PG_PASSWORD": "not-a-real-password",
        "DAGSTER_PG_DB": "dagster",
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


@pytest.mark.parametrize("path", [INSTANCE_YAML, DOCKER_INSTANCE_YAML], ids=["k8s", "docker"])
def test_the_production_instance_yaml_is_valid_and_reads_postgres_from_the_environment(
    path, tmp_path, pg_vars, monkeypatch
):
    from dagster._config import process_config, resolve_to_config_type
    from dagster._core.instance.config import dagster_instance_config
    from dagster._core.storage.config import pg_config

    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(path, home / "dagster.yaml")
    config, custom_class = dagster_instance_config(str(home))  # the whole file against Dagster's instance schema
    assert custom_class is None

    postgres = config["storage"]["postgres"]["postgres_db"]
    assert {k: postgres[k] for k in ("hostname", "port", "username", "password", "db_name")} == {
        "hostname": {"env": "DAGSTER_PG_HOST"},
        "port": {"env": "DAGSTER_PG_PORT"},
        "username": {"env": "DAGSTER_PG_USERNAME"},
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "db_name": {"env": "DAGSTER_PG_DB"},
    }
    assert postgres["scheme"] == "postgresql+psycopg2"  # SQLAlchemy 2.1's default driver is not installed
    resolved = process_config(resolve_to_config_type(pg_config()), config["storage"]["postgres"])
    assert resolved.success, resolved.errors
    assert resolved.value["postgres_db"]["password"] == pg_vars["DAGSTER_PG_PASSWORD"]
    assert resolved.value["postgres_db"]["port"] == 6543

    monkeypatch.delenv("DAGSTER_PG_PASSWORD")
    missing = process_config(resolve_to_config_type(pg_config()), config["storage"]["postgres"])
    assert not missing.success and "DAGSTER_PG_PASSWORD" in str(missing.errors)

    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["concurrency"]["pools"]["default_limit"] == 1  # the duckdb_writer pool: one writer at a time
    assert config["telemetry"]["enabled"] is False
    assert config["compute_logs"]["class"] in ("NoOpComputeLogManager", "LocalComputeLogManager")


def test_the_kubernetes_run_launcher_config_builds_a_run_job(tmp_path):
    """K8sRunLauncher's own schema accepts deploy/dagster.yaml's launcher config, the launcher can be built from it
    (pointed at a kubeconfig for an address nobody listens on: nothing is contacted) and the Job it would submit
    for a run mounts the data volume and takes its environment from the named Secrets and ConfigMap only."""
    from dagster._config import process_config, resolve_to_config_type
    from dagster._core.storage.dagster_run import DagsterRun
    from dagster_k8s import K8sRunLauncher
    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.job import construct_dagster_k8s_job

    launcher_yaml = _load(INSTANCE_YAML)["run_launcher"]
    assert (launcher_yaml["module"], launcher_yaml["class"]) == ("dagster_k8s", "K8sRunLauncher")
    processed = process_config(resolve_to_config_type(K8sRunLauncher.config_type()), launcher_yaml["config"])
    assert processed.success, processed.errors

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "offline",
                "clusters": [{"name": "offline", "cluster": {"server": "https://127.0.0.1:9"}}],
                "contexts": [{"name": "offline", "context": {"cluster": "offline", "user": "offline"}}],
                "users": [{"name": "offline", "user": {}}],
            }
        )
    )
    offline = {**processed.value, "load_incluster_config": False, "kubeconfig_file": str(kubeconfig)}
    launcher = K8sRunLauncher.from_config_value(None, offline)

    context = K8sContainerContext.create_for_run(DagsterRun(job_name=JOB), launcher, include_run_tags=False)
    job_config = context.get_k8s_job_config(job_image="gaelp:0.1.0", run_launcher=launcher)
    job = construct_dagster_k8s_job(  # as K8sRunLauncher._launch_k8s_job_with_args does
        job_config,
        ["dagster", "api", "execute_run"],
        "dagster-run-test",
        user_defined_k8s_config=context.run_k8s_config,
        component="run_worker",
    )
    pod = job.spec.template.spec
    assert pod.service_account_name == "gaelp-dagster"
    assert pod.security_context.fs_group == 10001  # the image's user can write the data volume
    container = pod.containers[0]
    assert container.image == "gaelp:0.1.0"
    sources = {
        (e.secret_ref.name if e.secret_ref else None, e.config_map_ref.name if e.config_map_ref else None)
        for e in container.env_from
    }
    assert sources >= {("gaelp-dagster-postgres", None), ("gaelp-credentials", None), (None, "gaelp-settings")}
    literal = {e.name: e.value for e in container.env or [] if e.value is not None}
    assert not set(literal) & set(CREDENTIAL_VARS + PG_VARS), f"credentials written into the Job: {literal}"
    volumes = {v.name: v for v in pod.volumes}
    assert volumes["gaelp-data"].persistent_volume_claim.claim_name == "gaelp-data"
    assert volumes["gaelp-ga4-key"].secret.secret_name == "gaelp-ga4-key"
    mounts = {m.name: m.mount_path for m in container.volume_mounts}
    assert mounts["gaelp-data"] == "/var/lib/gaelp"
    # the run worker gets the instance from the daemon in its arguments, with `env:` references only: the Postgres
    # connection details reach the pod through the gaelp-dagster-postgres Secret above
    assert {e.name: e.value for e in container.env}["DAGSTER_HOME"] == launcher.dagster_home


def test_the_docker_run_launcher_passes_credentials_by_name_only():
    from dagster._config import process_config, resolve_to_config_type
    from dagster_docker import DockerRunLauncher

    launcher_yaml = _load(DOCKER_INSTANCE_YAML)["run_launcher"]
    assert (launcher_yaml["module"], launcher_yaml["class"]) == ("dagster_docker", "DockerRunLauncher")
    processed = process_config(resolve_to_config_type(DockerRunLauncher.config_type()), launcher_yaml["config"])
    assert processed.success, processed.errors
    launcher = DockerRunLauncher.from_config_value(None, processed.value)  # no Docker engine is contacted here
    names = {v.split("=", 1)[0]: v for v in launcher.env_vars}
    # each credential is copied from the daemon's environment by name, never given a value in the file
    assert set(CREDENTIAL_VARS + PG_VARS) <= set(names)
    assert all(names[k] == k for k in CREDENTIAL_VARS + PG_VARS)
    assert names["GAELP_DATA_DIR"] == "GAELP_DATA_DIR=/var/lib/gaelp/data"
    assert names["DAGSTER_HOME"] == "DAGSTER_HOME=/opt/dagster/docker_home"
    assert "/opt/dagster/docker_home/dagster.yaml" in DOCKERFILE.read_text()  # the image ships that instance


def test_the_compose_file_runs_the_three_processes_the_docker_launcher_expects():
    """deploy/docker/compose.yaml: code server, webserver and daemon from one image; the daemon's environment holds
    every variable the run launcher copies into run containers, and the volumes and network it names exist."""
    compose = _load(DEPLOY / "docker" / "compose.yaml")
    launcher = _load(DOCKER_INSTANCE_YAML)["run_launcher"]["config"]
    services = compose["services"]
    assert set(services) == {"code-server", "webserver", "daemon"}
    assert services["code-server"]["command"][:3] == ["dagster", "api", "grpc"]
    assert "orchestration.definitions" in services["code-server"]["command"]
    assert services["webserver"]["command"][0] == "dagster-webserver"
    assert services["daemon"]["command"][:2] == ["dagster-daemon", "run"]
    for name in ("webserver", "daemon"):
        assert "/opt/dagster/workspace.yaml" in services[name]["command"]
        assert services[name]["environment"]["GAELP_CODE_SERVER_HOST"] == "code-server"
    daemon_env = services["daemon"]["environment"]
    copied = [v for v in launcher["env_vars"] if "=" not in v]
    assert set(copied) <= set(daemon_env), set(copied) - set(daemon_env)
    assert daemon_env["DAGSTER_HOME"] == "/opt/dagster/docker_home"
    declared = {v["name"] for v in compose["volumes"].values()}
    assert set(launcher["container_kwargs"]["volumes"]) <= declared
    assert launcher["network"] in {n["name"] for n in compose["networks"].values()}


def test_the_workspace_loads_the_code_location_from_a_grpc_server(monkeypatch):
    from dagster._core.workspace.config_schema import process_workspace_config

    monkeypatch.setenv("GAELP_CODE_SERVER_HOST", "gaelp-code-server")
    monkeypatch.setenv("GAELP_CODE_SERVER_PORT", "4000")
    workspace = _load(WORKSPACE_YAML)
    processed = process_workspace_config(workspace)
    assert processed.success, processed.errors
    entries = processed.value["load_from"]
    assert len(entries) == 1 and set(entries[0]) == {"grpc_server"}
    server = entries[0]["grpc_server"]
    assert server["location_name"] == "gaelp"
    assert (server["host"], server["port"]) == ("gaelp-code-server", 4000)  # read from the environment
    raw = workspace["load_from"][0]["grpc_server"]
    assert (raw["host"], raw["port"]) == ({"env": "GAELP_CODE_SERVER_HOST"}, {"env": "GAELP_CODE_SERVER_PORT"})


def test_the_helm_values_configure_what_gaelp_relies_on():
    """The keys of the official chart GAELP's deployment depends on, the same choices as deploy/dagster.yaml, and
    images pinned to versions (Dagster's own for the webserver and daemon, the project's for the user code)."""
    values = _load(HELM_VALUES)
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    instance = _load(INSTANCE_YAML)

    assert values["postgresql"]["enabled"] is False  # an external, managed Postgres
    assert values["generatePostgresqlPasswordSecret"] is False
    assert values["postgresql"]["postgresqlScheme"] == instance["storage"]["postgres"]["postgres_db"]["scheme"]
    assert values["global"]["postgresqlSecretName"]
    for key in ("postgresqlHost", "postgresqlUsername", "postgresqlPassword", "postgresqlDatabase"):
        assert values["postgresql"][key] == "", f"postgresql.{key} is set at install time, never in the file"

    for component in ("dagsterWebserver", "dagsterDaemon"):
        image = values[component]["image"]
        assert image["tag"] == dg.__version__, f"{component} runs Dagster {image['tag']}, the code {dg.__version__}"
    assert values["dagsterDaemon"]["enabled"] is True
    assert values["dagsterDaemon"]["runCoordinator"]["type"] == "QueuedRunCoordinator"
    assert values["dagsterDaemon"]["runMonitoring"]["enabled"] is True

    assert values["concurrency"]["enabled"] is True
    assert values["concurrency"]["pools"]["defaultLimit"] == instance["concurrency"]["pools"]["default_limit"] == 1
    assert values["concurrency"]["runs"]["maxConcurrentRuns"] == instance["concurrency"]["runs"]["max_concurrent_runs"]

    user_code = values["dagster-user-deployments"]
    assert user_code["enabled"] and user_code["enableSubchart"]
    (deployment,) = user_code["deployments"]
    assert deployment["image"]["tag"] == version  # the image built from deploy/Dockerfile for this version
    args = deployment["dagsterApiGrpcArgs"]
    assert args[args.index("-m") + 1] == "orchestration.definitions"
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
    assert deployment["env"]["GAELP_ENV"] == "prod"
    launcher = instance["run_launcher"]["config"]
    assert [s["name"] for s in deployment["envSecrets"]] == [s for s in launcher["env_secrets"] if "postgres" not in s]
    assert [c["name"] for c in deployment["envConfigMaps"]] == launcher["env_config_maps"]
    assert {m["name"]: m["mountPath"] for m in deployment["volumeMounts"]} == {
        m["name"]: m["mount_path"] for m in launcher["volume_mounts"]
    }
    assert deployment["podSecurityContext"]["fsGroup"] == 10001
    run_pod = values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["podSpecConfig"]
    assert run_pod["securityContext"]["fsGroup"] == 10001
    data_mount = next(m["mountPath"] for m in deployment["volumeMounts"] if m["name"] == "gaelp-data")
    assert deployment["env"]["GAELP_DATA_DIR"].startswith(data_mount + "/")

    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["telemetry"]["enabled"] is False
    images = [values[c]["image"] for c in ("dagsterWebserver", "dagsterDaemon")] + [deployment["image"]]
    assert all(i["tag"] and i["tag"] != "latest" for i in images), images


def test_the_dockerfile_installs_pinned_torch_first_then_the_lock_then_the_project():
    text = DOCKERFILE.read_text()
    lines = [line.strip() for line in text.replace("\\\n", " ").splitlines() if line.strip()]
    runs = [line for line in lines if line.startswith("RUN ")]
    torch = next(i for i, line in enumerate(runs) if "torch==2.13.0" in line)
    lock = next(i for i, line in enumerate(runs) if "-r requirements.lock" in line)
    project = next(i for i, line in enumerate(runs) if "-e ." in line)
    manifest = next(i for i, line in enumerate(runs) if "dbt parse" in line)
    assert torch < lock < project < manifest
    assert "whl/cpu" in runs[torch]
    for line in lines:  # every COPY source exists in the repository (the build context)
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert (REPO / source).exists(), f"{line}: {source} is not in the repository"
    for line in lines:  # no credential is baked into the image
        if line.startswith(("ENV ", "ARG ")):
            assert not any(name in line for name in CREDENTIAL_VARS + PG_VARS), line
    assert re.search(r"^USER 10001$", text, re.M), "the image runs as uid 10001 (the pods' fsGroup), not root"


# Keys whose value would be a secret if it were a literal; names of Secrets (secretName, envSecrets) are not.
SECRET_KEY = re.compile(r"(password|passwd|token|api_?key|client_secret|app_secret)$", re.I)
SECRET_TEXT = (
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"\bya29\.[\w-]{20,}"),  # Google OAuth access token
    re.compile(r"\b1//[\w-]{30,}"),  # Google OAuth refresh token
    re.compile(r"\bEAA[A-Za-z0-9]{40,}"),  # Meta access token
    re.compile(r"(postgres(ql)?|mysql)://[^:\s/]+:[^@\s]+@"),  # a URL with a password in it
)


# A value taken from the environment by Docker Compose: ${NAME}, ${NAME:?message} or ${NAME:-} (no default).
COMPOSE_REFERENCE = re.compile(r"^\$\{\w+(:\?[^}]*|:-)?\}$")


def _literal_secrets(node, path="") -> list[str]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            literal = isinstance(value, str | int) and str(value) != "" and not COMPOSE_REFERENCE.match(str(value))
            if SECRET_KEY.search(str(key)) and literal:
                found.append(where)
            found += _literal_secrets(value, where)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _literal_secrets(value, f"{path}[{i}]")
    return found


def test_nothing_under_deploy_holds_a_literal_secret():
    files = [p for p in DEPLOY.rglob("*") if p.is_file()]
    assert {INSTANCE_YAML, DOCKER_INSTANCE_YAML, WORKSPACE_YAML, HELM_VALUES, DOCKERFILE} <= set(files)
    assert DEPLOY / "docker" / "compose.yaml" in files
    for path in [*files, REPO / "dbt_project" / "profiles.yml"]:
        text = path.read_text()
        for pattern in SECRET_TEXT:
            assert not pattern.search(text), f"{path.relative_to(REPO)}: looks like a secret ({pattern.pattern})"
        if path.suffix in (".yaml", ".yml"):
            leaks = _literal_secrets(yaml.safe_load(text))
            assert not leaks, f"{path.relative_to(REPO)}: literal values for {leaks}; read them from the environment"
        # a credential variable is only ever named, never given a value (the key file's path is not a secret)
        for name in set(CREDENTIAL_VARS + ("DAGSTER_PG_PASSWORD",)) - {"GOOGLE_APPLICATION_CREDENTIALS"}:
            assert not re.search(rf"\b{name}\s*[=:]\s*[\"']?[\w./+-]{{6,}}", text), f"{path}: {name} has a value"


# ---------------------------------------------------------------------------------------------------------------
# The dbt production target
# ---------------------------------------------------------------------------------------------------------------


def _dbt_parse_prod(tmp_path: Path, **env_vars: str) -> subprocess.CompletedProcess:
    """`dbt parse --target prod` into a scratch target directory (the demo manifest stays as it is); parsing
    connects to nothing."""
    env = {k: v for k, v in os.environ.items() if k not in ("MOTHERDUCK_TOKEN", "GAELP_MOTHERDUCK_DB")}
    env.update(env_vars, GAELP_DATA_DIR=str(tmp_path / "data"), DBT_SEND_ANONYMOUS_USAGE_STATS="false")
    project = REPO / "dbt_project"
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "dbt"),
            "parse",
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
            "--target",
            "prod",
            "--target-path",
            str(tmp_path / "target"),
            "--log-path",
            str(tmp_path / "logs"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_dbt_prod_target_takes_every_secret_from_the_environment(tmp_path):
    profile = _load(REPO / "dbt_project" / "profiles.yml")["gaelp"]
    assert profile["target"] == "demo"  # nothing switches to prod by accident
    prod = profile["outputs"]["prod"]
    assert prod["type"] == "duckdb" and prod["path"].startswith("md:")
    assert "env_var('MOTHERDUCK_TOKEN')" in prod["path"]

    missing = _dbt_parse_prod(tmp_path, GAELP_MOTHERDUCK_DB="gaelp_ci")
    assert missing.returncode != 0
    assert "Env var required but not provided: 'MOTHERDUCK_TOKEN'" in missing.stdout + missing.stderr

    token = "dummy-" + secrets.token_hex(12)
    parsed = _dbt_parse_prod(tmp_path, GAELP_MOTHERDUCK_DB="gaelp_ci", MOTHERDUCK_TOKEN=token)
    assert parsed.returncode == 0, parsed.stdout + parsed.stderr
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    assert manifest["metadata"]["adapter_type"] == "duckdb"
    assert any(key.startswith("model.gaelp.") for key in manifest["nodes"])
    written = [p for p in tmp_path.rglob("*") if p.is_file() and token.encode() in p.read_bytes()]
    assert token not in parsed.stdout + parsed.stderr and not written, f"the token was written to {written}"
