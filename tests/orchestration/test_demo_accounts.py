"""A demo world is an account: the pipeline's account seeds (campaign registry, GA4 mapping) must list its campaigns.

The repository's seeds are the reference account's. A world with other campaigns gets its own, compiled from the demo
market's accounts into the data directory, and both the Python side and dbt read them through GAELP_ACCOUNT_SEEDS."""

from __future__ import annotations

import csv
import os
import shutil

import dagster as dg
import duckdb
import pytest

from orchestration.accounts import DemoAccountsError, connect_demo_accounts
from rl.campaign_registry import (
    ACCOUNT_SEEDS_VAR,
    DEFAULT_ACCOUNT_SEEDS,
    DEFAULT_REGISTRY_FILE,
    CampaignRegistry,
    CampaignRegistryError,
    registry_file,
)
from rl.market.params import MarketParams, parse_market_params
from tests.builders import build_warehouse, demo_resources

DROPPED = (104, 301)  # a competitor-terms search campaign and the only TikTok one: the world has no TikTok at all


def _without(params: MarketParams, dropped: tuple[int, ...]) -> MarketParams:
    raw = params.model_dump(mode="json")
    raw["campaigns"] = [c for c in raw["campaigns"] if c["id"] not in dropped]
    used = {c["platform"] for c in raw["campaigns"]}
    raw["platforms"] = [p for p in raw["platforms"] if p["name"] in used]
    rivals = []
    for r in raw["competitors"]:
        r["campaigns"] = [c for c in r["campaigns"] if c not in dropped]
        if r["campaigns"] and r["platform"] in used:
            rivals.append(r)
    raw["competitors"] = rivals
    return parse_market_params(raw, "a world without campaigns " + ", ".join(map(str, dropped)))


@pytest.fixture
def demo_env(tmp_path, monkeypatch):
    """The demo environment over a fresh data directory, GAELP_ACCOUNT_SEEDS unset (`connect_demo_accounts` sets it
    for the process: removed afterwards, then monkeypatch restores whatever was there before)."""
    monkeypatch.delenv(ACCOUNT_SEEDS_VAR, raising=False)
    monkeypatch.setenv("GAELP_ENV", "demo")
    monkeypatch.setenv("GAELP_WORLD_SEED", "3")
    monkeypatch.setenv("GAELP_DATA_DIR", str(tmp_path / "data"))
    for var in ("GAELP_WORLD_FILE", "GAELP_TARGETS_CSV", "GAELP_ACCOUNTS_FILE"):
        monkeypatch.delenv(var, raising=False)
    yield tmp_path
    os.environ.pop(ACCOUNT_SEEDS_VAR, None)


def _rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_the_reference_world_runs_on_the_repositorys_seeds(demo_env):
    assert connect_demo_accounts() is None
    assert registry_file() == DEFAULT_REGISTRY_FILE
    assert not (demo_env / "data" / "accounts" / "seeds").exists()


def test_a_world_with_other_campaigns_gets_its_own_seeds_and_its_warehouse_builds(
    demo_env, monkeypatch, reference_params
):
    world = _without(reference_params, DROPPED)
    world_file = demo_env / "other.yaml"
    world_file.write_text(world.to_yaml())
    monkeypatch.setenv("GAELP_WORLD_FILE", str(world_file))

    seeds = connect_demo_accounts()
    assert seeds == (demo_env / "data" / "accounts" / "seeds").resolve()
    assert registry_file() == seeds / "campaign_registry.csv"
    registry = CampaignRegistry.load()
    assert sorted(c.campaign_id for c in registry.campaigns) == sorted(world.campaign_ids)
    assert {c.status for c in registry.campaigns} == {"enabled"}
    assert "tiktok" not in registry.platforms
    assert _rows(seeds / "campaign_ga4_mapping.csv") == []  # the demo tags its traffic by the convention
    assert connect_demo_accounts() is None  # the seeds in use now match: nothing rewritten

    # ingestion checks its rows against this registry, and the warehouse reads it from the same directory
    tmp = demo_env / "build"
    tmp.mkdir()
    resources = demo_resources(tmp, world, scale=0.2, seed=3)
    monkeypatch.setenv("GAELP_DATA_DIR", str(tmp / "data"))
    result = build_warehouse(resources, "2025-01-01", "2025-01-07", dg.DagsterInstance.ephemeral())
    assert result.success
    with duckdb.connect(str(tmp / "data" / "warehouse.duckdb"), read_only=True) as con:
        ids = sorted(r[0] for r in con.execute("select campaign_id from dim_campaign").fetchall())
        spent = {r[0] for r in con.execute("select distinct campaign_id from fct_campaign_daily").fetchall()}
    assert ids == sorted(world.campaign_ids)
    assert spent <= set(ids) and not spent & set(DROPPED)


def test_seeds_the_environment_names_that_do_not_fit_the_world_are_refused(demo_env, monkeypatch, reference_params):
    theirs = demo_env / "their_seeds"
    shutil.copytree(DEFAULT_ACCOUNT_SEEDS, theirs)  # the reference account's: they list 104 and 301
    monkeypatch.setenv(ACCOUNT_SEEDS_VAR, str(theirs))
    world_file = demo_env / "other.yaml"
    world_file.write_text(_without(reference_params, DROPPED).to_yaml())
    monkeypatch.setenv("GAELP_WORLD_FILE", str(world_file))
    with pytest.raises(DemoAccountsError, match=ACCOUNT_SEEDS_VAR):
        connect_demo_accounts()
    assert _rows(theirs / "campaign_registry.csv") == _rows(DEFAULT_REGISTRY_FILE)  # left as they were

    # a relative directory would be read from two places (dbt runs in its project directory): refused by name
    monkeypatch.setenv(ACCOUNT_SEEDS_VAR, "their_seeds")
    with pytest.raises(CampaignRegistryError, match=f"{ACCOUNT_SEEDS_VAR} must be an absolute path"):
        CampaignRegistry.load()
