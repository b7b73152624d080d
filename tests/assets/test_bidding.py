"""daily_bid_plan and bid_push on a copy of the session's demo warehouse and world (tests/assets/conftest.py)."""

from __future__ import annotations

import dagster as dg
import pytest

from assets.bidding import BIDDING_ASSETS, PLAN_TABLE, BidPushConfig
from orchestration.environment import Environment
from orchestration.resources.account import AccountResource
from orchestration.resources.platforms import GoogleAdsBidPlatform, LivePushRefused
from rl.account import AccountSettings
from rl.bidding.audit import TABLE as AUDIT_TABLE
from rl.bidding.checks import CHECKS
from tests.assets.conftest import LAST


def _pushes(copy) -> str:
    return (copy["tmp"] / "world" / "pushes.jsonl").read_text()


def _query(copy, sql: str):
    # through the resource (same connection configuration as the assets': a step that failed may hold one open)
    with copy["resources"]["duckdb"].get_connection() as con:
        return con.execute(sql).fetchall()


def _materialize(copy, run_config=None, resources=None, selection=None):
    return dg.materialize(
        BIDDING_ASSETS,
        selection=selection,
        partition_key=LAST,
        resources=resources or copy["resources"],
        run_config=run_config or {},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def test_plan_passes_checks_pushes_to_the_demo_world_and_a_second_push_changes_nothing(copy):
    result = _materialize(copy, {"ops": {"daily_bid_plan": {"config": {"policy": "proportional"}}}})
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert len(checks) == len(CHECKS) and all(c.passed for c in checks), [(c.check_name, c.metadata) for c in checks]
    rows = _query(copy, f"SELECT campaign_id, daily_budget, bid, policy_version, data_partition FROM {PLAN_TABLE}")
    assert len(rows) == 8 and {r[3] for r in rows} == {"baseline:proportional"} and {r[4] for r in rows} == {LAST}
    assert sum(r[1] for r in rows) <= 500.0
    meta = result.asset_materializations_for_node("daily_bid_plan")[0].metadata
    assert "budget plan" in meta["plan"].value and meta["policy_source"].value == "override"
    assert "modifiers Δ" in meta["plan"].value and "none on meta" in meta["plan"].value
    pushed = _pushes(copy)
    assert pushed.count("\n") > 0
    statuses = _query(copy, f"SELECT DISTINCT mode FROM {AUDIT_TABLE}")
    assert statuses == [("demo",)]  # the demo market: never "live"

    again = _materialize(copy, selection=["bid_push"])
    assert again.success
    assert _pushes(copy) == pushed  # idempotent: nothing sent twice
    last_push = _query(
        copy,
        f"SELECT DISTINCT status FROM {AUDIT_TABLE} WHERE push_id = "
        f"(SELECT push_id FROM {AUDIT_TABLE} ORDER BY audit_id DESC LIMIT 1)",
    )
    assert last_push == [("skipped_unchanged",)]

    # re-planning the same partition replaces its rows (idempotent per partition)
    assert _materialize(
        copy, {"ops": {"daily_bid_plan": {"config": {"policy": "proportional"}}}}, selection=["daily_bid_plan"]
    ).success
    assert _query(copy, f"SELECT count(*) FROM {PLAN_TABLE}") == [(8,)]


def test_fallback_without_a_promoted_model_is_said(copy):
    result = _materialize(copy, selection=["daily_bid_plan"])
    assert result.success
    meta = result.asset_materializations_for_node("daily_bid_plan")[0].metadata
    assert meta["policy_source"].value in ("fallback", "kill_switch")
    assert meta["fallback"].value != "none (the promoted model)"
    reasons = _query(copy, f"SELECT DISTINCT policy_source, fallback_reason FROM {PLAN_TABLE}")
    assert len(reasons) == 1 and reasons[0][1]


def test_a_failing_plan_check_blocks_the_push(copy):
    # an account budget far below the budgets in force: the total wins over the daily step, the step check fails
    before = _pushes(copy)
    small = AccountResource.from_settings(AccountSettings(daily_budget=100.0))
    result = _materialize(copy, resources={**copy["resources"], "account": small})
    assert not result.success
    failed = {c.check_name for c in result.get_asset_check_evaluations() if not c.passed}
    assert "changes_within_daily_step" in failed
    assert not result.asset_materializations_for_node("bid_push")
    assert _pushes(copy) == before
    assert _query(copy, f"SELECT count(*) FROM information_schema.tables WHERE table_name = '{AUDIT_TABLE}'") == [(0,)]
    # and a push run on its own refuses the stored failing plan too
    alone = _materialize(copy, selection=["bid_push"])
    assert not alone.success and _pushes(copy) == before


def test_live_push_is_impossible_in_demo_mode(copy):
    assert _materialize(copy, selection=["daily_bid_plan"]).success
    before = _pushes(copy)
    real = GoogleAdsBidPlatform(
        developer_token="dev-token-xyz",
        client_id="cid",
        client_secret="cs",
        refresh_token="rt",
        customer_id="1234567890",
        live_pushing_enabled=True,
    )
    resources = {**copy["resources"], "bid_google_ads": real}
    result = _materialize(copy, {"ops": {"bid_push": {"config": {"live_google_ads": True}}}}, resources, ["bid_push"])
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    error = failure.step_failure_data.error
    assert LivePushRefused.__name__ in (error.cls_name, error.cause.cls_name if error.cause else None)
    assert "demo environment pushes to the demo market only" in (error.cause or error).message
    assert "dev-token-xyz" not in str(error)
    assert _pushes(copy) == before


def test_a_lost_call_fails_the_push_as_unknown_and_a_rerun_completes(copy, monkeypatch):
    from orchestration.resources.platforms.demo import DemoBidPlatform

    assert _materialize(
        copy, {"ops": {"daily_bid_plan": {"config": {"policy": "proportional"}}}}, selection=["daily_bid_plan"]
    ).success
    original = DemoBidPlatform._send
    calls = {"n": 0}

    def flaky(self, batch, validate_only):
        calls["n"] += 1
        if calls["n"] == 2:
            raise ConnectionError("connection reset")
        return original(self, batch, validate_only)

    monkeypatch.setattr(DemoBidPlatform, "_send", flaky)
    assert not _materialize(copy, selection=["bid_push"]).success
    assert _query(copy, f"SELECT count(*) FROM {AUDIT_TABLE} WHERE status = 'unknown'")[0][0] >= 1
    assert _query(copy, f"SELECT count(*) FROM {AUDIT_TABLE} WHERE status = 'intended'")[0][0] == 0
    monkeypatch.setattr(DemoBidPlatform, "_send", original)
    assert _materialize(copy, selection=["bid_push"]).success
    applied = _query(copy, f"SELECT count(*) FROM {AUDIT_TABLE} WHERE status = 'applied'")[0][0]
    n_lines = _pushes(copy).count("\n")
    assert applied >= 1 and n_lines >= 1
    assert _materialize(copy, selection=["bid_push"]).success
    assert _pushes(copy).count("\n") == n_lines


@pytest.mark.parametrize(
    ("asked", "environment", "armed", "live"),
    [
        (None, Environment.DEMO, False, True),  # the demo market takes every push
        (None, Environment.PROD, False, False),  # prod: validate-only until the platform's switch is on ...
        (None, Environment.PROD, True, True),  # ... and live where it is, so the schedule goes live by the switch
        (False, Environment.PROD, True, False),  # a run can always ask for validate-only
        (True, Environment.PROD, False, True),  # asked but unarmed: the resource refuses it (and the audit says so)
    ],
)
def test_live_pushing_is_per_platform_and_off_until_its_switch(asked, environment, armed, live):
    config = BidPushConfig(live_meta=asked)
    assert config.live("meta", environment, armed=armed) is live
    assert BidPushConfig().live("tiktok", Environment.PROD, armed=False) is False


def test_the_planner_observes_the_breakdowns_the_simulator_would(copy):
    """The plan's observation (marts → MartHistory → Reports) holds the same device and hour-block figures and
    modifiers as the simulator's path (the world's reports → Reports, `rl.evaluation.world`) for the same days."""
    import datetime as dt

    import numpy as np

    from assets.bidding import _marts
    from rl.bidding import history as mart_history
    from rl.bidding import planner
    from rl.env.observation import build_observation, decode
    from rl.env.schema import ObservationSchema
    from rl.evaluation.world import world_reports
    from rl.world.world import DemoWorld

    settings = planner.PlanSettings(AccountSettings())
    last = dt.date.fromisoformat(LAST)
    first = last - dt.timedelta(days=settings.history_days - 1)
    schema = ObservationSchema.from_registry()
    with copy["resources"]["duckdb"].get_connection() as con:
        marts, dim, breakdowns = _marts(con, first, last)
    campaigns = mart_history.campaigns_in_schema_order(schema, dim)
    history = mart_history.history_from_marts(marts, campaigns, last, settings.history_days, **breakdowns)
    world = DemoWorld.open(copy["world"]["world_dir"], copy["world"]["world_file"], copy["world"]["seed"])
    assert world.today == last + dt.timedelta(days=1)
    reference = planner.Reference(history.current_budgets, history.current_bids, "test")
    ours = planner.reports_for(history, reference, settings)
    theirs = world_reports(
        world,
        world.params,
        schema,
        first,
        settings.history_days,
        warmup_days=ours.warmup_days,
        episode_days=settings.episode_days,
        ref_bids=reference.bids,
        bid_range=settings.bid_range,
        daily_budget=settings.daily_budget,
        target_cpa=settings.target_cpa,
        budgets_now=ours.budgets_now,
        bids_now=ours.bids_now,
    )
    np.testing.assert_allclose(ours.spend_by, theirs.spend_by, atol=1e-5)
    np.testing.assert_array_equal(ours.clicks_by, theirs.clicks_by)
    np.testing.assert_array_equal(ours.reported_breakdown(28), theirs.reported_breakdown(28))
    np.testing.assert_array_equal(ours.modifiers_now, theirs.modifiers_now)
    assert ours.clicks_by.sum() > 0 and ours.reported_breakdown(28).sum() > 0
    a, b = decode(schema, build_observation(schema, ours)), decode(schema, build_observation(schema, theirs))
    keys = [f for f in schema.campaign_features if f.startswith("mod_") or f.split("_")[-1] == "28d" and "_h" in f]
    keys += [f"{m}_{d}_28d" for m in ("spend", "clicks", "conversions") for d in ("mobile", "desktop", "tablet")]
    for f in keys:
        np.testing.assert_allclose(a[f], b[f], atol=1e-5, err_msg=f)
