"""The production configuration that cannot run here (Kubernetes, Docker, MotherDuck): validated against the real
schemas of the installed dagster-k8s / dagster-docker / dagster-postgres / dbt-duckdb, offline, and checked for
secrets."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import dagster as dg
import pytest
import yaml

from tests.orchestration.production import (
    CREDENTIAL_VARS,
    DEPLOY,
    DOCKER_INSTANCE_YAML,
    DOCKERFILE,
    HELM_VALUES,
    INSTANCE_YAML,
    JOB,
    PG_VARS,
    REPO,
    WORKSPACE_YAML,
    _load,
)


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
    from dagster._core.instance.ref import InstanceRef
    from dagster._core.storage.config import pg_config

    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(path, home / "dagster.yaml")
    config, custom_class = dagster_instance_config(str(home))  # the whole file against Dagster's instance schema
    assert custom_class is None
    # every storage in Postgres: the local instance's SQLite event log (orchestration/instance/storage.py) stays local
    assert not {"run_storage", "event_log_storage", "schedule_storage"} & set(config)
    ref = InstanceRef.from_dir(str(home))
    assert (ref.storage_data.class_name, ref.event_storage_data.class_name) == (
        "DagsterPostgresStorage",
        "PostgresEventLogStorage",
    )

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
