"""`gaelp accounts discover` / `check` on the demo market: the same discovery code as a real account (the demo answers
with the SDKs' types), reproducing the registry and push targets the demo runs on today; unmanaged campaigns never
reach a plan; a malformed review file is refused by file, line and column."""

from __future__ import annotations

import csv
import os
from dataclasses import replace

import pytest

from cli.main import main
from orchestration.accounts import MAPPING_FILE
from rl.accounts.review import read_review, write_review
from rl.bidding import planner
from rl.campaign_registry import DEFAULT_REGISTRY_FILE, CampaignRegistry
from rl.env.schema import ObservationSchema
from tests.rl.bidding import test_planner as planning


@pytest.fixture
def demo(tmp_path, monkeypatch):
    """The demo environment over a fresh data directory (the default world, seed 0)."""
    for var in ("GAELP_WORLD_FILE", "GAELP_TARGETS_CSV", "GAELP_ACCOUNTS_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GAELP_ENV", "demo")
    monkeypatch.setenv("GAELP_WORLD_SEED", "0")
    monkeypatch.setenv("GAELP_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "out"
    return {
        "file": tmp_path / "data" / "accounts" / "accounts.csv",
        "write": ["--write", "--registry", str(out / "registry.csv"), "--mapping", str(out / "mapping.csv")]
        + ["--targets", str(out / "targets.csv")],
        "out": out,
    }


def _check(demo) -> int:
    return main(["accounts", "check", *demo["write"]])


def test_demo_discover_then_check_reproduce_todays_registry_and_targets_exactly(demo, capsys):
    assert main(["accounts", "discover"]) == 0
    proposed = read_review(demo["file"])
    today = CampaignRegistry.load()  # the registry the demo runs on, written by hand until now
    assert [(r.platform, r.campaign_id, r.campaign_name, r.product, r.intent) for r in proposed] == [
        (c.platform, c.campaign_id, c.campaign_name, c.product, c.intent) for c in today.campaigns
    ]  # product and intent guessed from the names
    assert not any(r.managed for r in proposed) and all(r.manageable for r in proposed)
    assert _check(demo) == 1 and not (demo["out"] / "registry.csv").exists()  # nothing managed: nothing written

    write_review(demo["file"], [replace(r, managed=True) for r in proposed])  # the review: manage them all
    assert _check(demo) == 0
    assert (demo["out"] / "registry.csv").read_bytes() == DEFAULT_REGISTRY_FILE.read_bytes()
    assert (demo["out"] / "mapping.csv").read_bytes() == MAPPING_FILE.read_bytes()  # no override: the convention
    with open(demo["out"] / "targets.csv", newline="") as f:
        targets = list(csv.DictReader(f))
    lookup = planner.targets_from_rows(targets)
    assert len(targets) == len(today.campaigns)
    for c in today.campaigns:  # the ids the demo pushes to today
        assert lookup(c.platform, c.campaign_id) == planner.demo_targets_for(c.platform, c.campaign_id)
    assert "ok: 8 campaign(s), 8 managed, 0 GA4 mapping override(s)" in capsys.readouterr().out


def test_unmanaged_campaigns_are_never_in_a_plan(demo):
    assert main(["accounts", "discover"]) == 0
    rows = read_review(demo["file"])
    write_review(demo["file"], [replace(r, managed=r.campaign_id not in (104, 202)) for r in rows])
    assert _check(demo) == 0
    registry = CampaignRegistry.load(demo["out"] / "registry.csv")
    assert {(c.campaign_id, c.status) for c in registry.campaigns if c.status != "enabled"} == {
        (104, "paused"),
        (202, "paused"),
    }  # still reported (ingestion knows them), never planned
    with open(demo["out"] / "targets.csv", newline="") as f:
        targets = list(csv.DictReader(f))
    assert sorted(int(t["campaign_id"]) for t in targets) == [101, 102, 103, 201, 301, 401]
    dim = planning.DIM.with_columns(
        status=planning.pl.Series([c.status for c in registry.campaigns])  # dim_campaign built from this registry
    )
    schema = ObservationSchema.from_registry(registry)
    campaigns = planning.mart_history.campaigns_in_schema_order(schema, dim)
    history = planning.mart_history.history_from_marts(
        planning.marts(), campaigns, planning.LAST, planning.ACCOUNT.history_days
    )
    plan = planner.make_plan(
        history,
        planning.REFERENCE,
        planning.ACCOUNT,
        schema,
        planning.choice("proportional"),
        planning.LAST.isoformat(),
        planner.targets_from_rows(targets),  # a planned unmanaged campaign would have no target: PlanError
    )
    assert sorted(e.campaign_id for e in plan.entries) == [101, 102, 103, 201, 301, 401]


def test_discovering_again_keeps_the_review(demo):
    assert main(["accounts", "discover"]) == 0
    rows = read_review(demo["file"])
    reviewed = [replace(rows[0], managed=True, product="brand_search", ga4_campaign_name="brand_utm")] + rows[1:]
    write_review(demo["file"], reviewed)
    assert main(["accounts", "discover"]) == 0
    again = read_review(demo["file"])
    assert (again[0].managed, again[0].product, again[0].ga4_campaign_name) == (True, "brand_search", "brand_utm")
    assert [r.key for r in again] == [r.key for r in rows] and not any(r.managed for r in again[1:])


def test_a_malformed_review_file_is_refused_by_file_line_and_column(demo, capsys):
    assert main(["accounts", "discover"]) == 0
    text = demo["file"].read_text().splitlines()
    text[3] = text[3].replace(",false,", ",yes,", 1)  # line 4: managed
    text[5] = text[5].replace("meta,201,", "meta,2x1,", 1)  # line 6: campaign_id
    demo["file"].write_text("\n".join(text) + "\n")
    assert main(["accounts", "check"]) == 2
    err = capsys.readouterr().err
    assert f"{demo['file']}:4: managed 'yes' is not true or false" in err
    assert f"{demo['file']}:6: campaign_id '2x1' is not a positive integer" in err
    assert main(["accounts", "discover"]) == 2  # nor is it overwritten


def test_in_prod_a_platform_without_credentials_is_not_connected_and_secrets_stay_out(tmp_path, monkeypatch, capsys):
    from orchestration.accounts import platform_resources

    for var in [v for v in os.environ if v.startswith(("GOOGLE_ADS_", "META_", "TIKTOK_", "MICROSOFT_"))]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("GAELP_ENV", "prod")
    monkeypatch.setenv("GAELP_DATA_DIR", str(tmp_path))
    assert main(["accounts", "discover"]) == 1
    out = capsys.readouterr()
    assert "google_ads: not connected: GOOGLE_ADS_CLIENT_ID, GOOGLE_ADS_CLIENT_SECRET" in out.out
    assert "no platform could be read; nothing written" in out.err and not (tmp_path / "accounts").exists()
    secrets = {"META_APP_SECRET": "app-secret-DO-NOT-LOG", "META_ACCESS_TOKEN": "token-DO-NOT-LOG"}
    for name, value in {"META_APP_ID": "1", "META_AD_ACCOUNT_ID": "act_5", **secrets}.items():
        monkeypatch.setenv(name, value)
    with platform_resources() as (ready, missing):
        assert list(ready) == ["meta"] and ready["meta"].account() == "meta:act_5"
        assert set(missing) == {"google_ads", "tiktok", "microsoft_ads"}
        assert not any(s in repr(ready) + repr(missing) for s in secrets.values())
