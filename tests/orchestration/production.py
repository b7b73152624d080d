"""What the production tests share: where deploy/ keeps each file, the credentials the prod resources read, the
PostgreSQL connection variables, a small demo world for a real run."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import yaml

from tests.conftest import scaled

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
