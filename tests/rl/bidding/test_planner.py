"""The planner: marts → observation → policy → guardrails → a plan that passes the checks, whatever the policy says."""

from __future__ import annotations

import dataclasses
import datetime as dt

import duckdb
import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rl.account import AccountSettings
from rl.bidding import history as mart_history
from rl.bidding import planner, policy_choice
from rl.bidding.checks import passes, run_checks
from rl.bidding.plan import PlanError
from rl.bidding.reference_store import ReferenceStore
from rl.campaign_registry import CampaignRegistry
from rl.env.guardrails import ActionCodec
from rl.env.schema import ObservationSchema

LAST = dt.date(2025, 3, 1)
SCHEMA = ObservationSchema.from_registry()
REGISTRY = CampaignRegistry.load()
DIM = pl.DataFrame(
    [
        {"platform": c.platform, "campaign_id": c.campaign_id, "campaign_name": c.campaign_name, "status": c.status}
        for c in REGISTRY.campaigns
    ]
)
REF_BUDGETS = np.array([60.0, 110.0, 80.0, 40.0, 80.0, 30.0, 50.0, 50.0])
REF_BIDS = np.array([2.0, 4.0, 5.0, 3.0, 18.0, 25.0, 12.0, 2.5])
ACCOUNT = planner.PlanSettings(AccountSettings())


def marts(days=60, budgets=REF_BUDGETS, bids=REF_BIDS, key_events=1.0, seed=0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(days):
        date = LAST - dt.timedelta(days=days - 1 - i)
        for j, c in enumerate(REGISTRY.campaigns):
            search = c.platform in ("google_ads", "microsoft_ads")
            impressions = float(rng.integers(200, 2000))
            rows.append(
                {
                    "date": date,
                    "platform": c.platform,
                    "campaign_id": c.campaign_id,
                    "spend": float(budgets[j] * rng.uniform(0.6, 1.0)),
                    "impressions": impressions,
                    "clicks": float(rng.integers(5, 60)),
                    "conversions": float(rng.poisson(1.0)),
                    "key_events": key_events,
                    "impression_share": 0.5 if search else None,
                    "daily_budget": float(budgets[j]),
                    "bid": float(bids[j]),
                    "bid_kind": "max_cpc" if search else "cpm_cap",
                }
            )
    return pl.DataFrame(rows)


def history(frame: pl.DataFrame | None = None) -> mart_history.MartHistory:
    campaigns = mart_history.campaigns_in_schema_order(SCHEMA, DIM)
    return mart_history.history_from_marts(marts() if frame is None else frame, campaigns, LAST, ACCOUNT.history_days)


REFERENCE = planner.Reference(REF_BUDGETS, REF_BIDS, "test")


def choice(name="static_reference"):
    codec = ActionCodec.for_schema(SCHEMA, ACCOUNT.bid_range)
    return policy_choice.choose_policy(
        SCHEMA, codec, REFERENCE, 500.0, policy_choice.PromotedPolicy(reason="none"), override=name
    )


class FixedPolicy:
    name = "fixed"

    def __init__(self, action):
        self.action = np.asarray(action, dtype=float)

    def reset(self, n_envs):
        pass

    def act(self, obs):
        assert obs.shape == (1, SCHEMA.obs_size) and np.isfinite(obs).all()
        return self.action[None]


def check(plan: planner.Plan) -> dict:
    status = {(c.platform, c.campaign_id): c.status for c in REGISTRY.campaigns}
    return run_checks(plan.entries, plan.limits, status)


def test_history_reads_the_marts_like_the_platforms_report_them():
    h = history()
    assert h.spend.shape == (ACCOUNT.history_days, 8) and h.last_date == LAST
    google = [j for j, c in enumerate(h.campaigns) if c.platform == "google_ads"][0]
    meta = [j for j, c in enumerate(h.campaigns) if c.platform == "meta"][0]
    assert np.allclose(h.opportunities[:, google], h.impressions[:, google] / 0.5)
    assert (h.opportunities[:, meta] == 0).all()  # social platforms report no eligible impressions
    assert np.allclose(h.current_bids, REF_BIDS)


def test_the_static_reference_plan_holds_the_reference_settings_and_passes_the_checks():
    plan = planner.make_plan(history(), REFERENCE, ACCOUNT, SCHEMA, choice(), LAST.isoformat())
    assert len(plan.entries) == 8 and passes(check(plan))
    assert np.allclose([e.daily_budget for e in plan.entries], REF_BUDGETS, atol=0.011)
    assert np.allclose([e.bid for e in plan.entries], REF_BIDS)
    e = plan.entries[0]
    assert e.data_partition == LAST.isoformat() and e.plan_date == (LAST + dt.timedelta(days=1)).isoformat()
    assert e.policy_version == "baseline:static_reference" and (e.budget_target, e.bid_targets) == ("10100", ("10101",))


@pytest.mark.parametrize("name", ["proportional", "pacer", "response_curve", "online_lp"])
def test_every_baseline_plans_within_the_guardrails(name):
    plan = planner.make_plan(history(), REFERENCE, ACCOUNT, SCHEMA, choice(name), LAST.isoformat())
    assert passes(check(plan)), check(plan)
    assert plan.total_budget <= 500.0


@settings(max_examples=60, deadline=None)
@given(
    action=arrays(np.float64, SCHEMA.action_size, elements=st.floats(allow_nan=True, allow_infinity=True)),
    budget_mult=st.floats(0.0, 1.0),
    bid_mult=st.floats(0.3, 3.0),
)
def test_whatever_the_policy_answers_the_plan_passes_the_checks(action, budget_mult, bid_mult):
    h = history(marts(days=56, budgets=REF_BUDGETS * budget_mult, bids=np.round(REF_BIDS * bid_mult, 2)))
    pick = policy_choice.PolicyChoice(FixedPolicy(action), "test:1", "promoted")
    plan = planner.make_plan(h, REFERENCE, ACCOUNT, SCHEMA, pick, LAST.isoformat())
    assert passes(check(plan)), check(plan)


def test_unknown_campaigns_and_unknown_settings_are_errors():
    frame = marts()
    bad = pl.concat([frame, frame.tail(1).with_columns(pl.lit(999, dtype=pl.Int64).alias("campaign_id"))])
    with pytest.raises(PlanError, match="/999 on 2025-03-01, unknown to the registry"):
        history(bad)
    no_settings = frame.with_columns(pl.when(pl.col("date") == LAST).then(None).otherwise(pl.col("bid")).alias("bid"))
    with pytest.raises(PlanError, match="no daily_budget/bid"):
        history(no_settings)
    with pytest.raises(PlanError, match="disagree"):
        mart_history.campaigns_in_schema_order(SCHEMA, DIM.head(7))


def test_paused_campaigns_are_not_planned():
    dim = DIM.with_columns(
        pl.when(pl.col("campaign_id") == 301).then(pl.lit("paused")).otherwise("status").alias("status")
    )
    campaigns = mart_history.campaigns_in_schema_order(SCHEMA, dim)
    h = mart_history.history_from_marts(marts(), campaigns, LAST, ACCOUNT.history_days)
    plan = planner.make_plan(h, REFERENCE, ACCOUNT, SCHEMA, choice(), LAST.isoformat())
    assert 301 not in {e.campaign_id for e in plan.entries} and len(plan.entries) == 7


def test_without_a_promoted_model_the_plan_falls_back_and_says_why():
    codec = ActionCodec.for_schema(SCHEMA, ACCOUNT.bid_range)
    promoted = policy_choice.promoted_policy(None, "/nonexistent")
    assert promoted.policy is None and promoted.reason
    assert promoted[3] is promoted.best_baseline and tuple(promoted) == (None, None, promoted.reason, None)
    picked = policy_choice.choose_policy(SCHEMA, codec, REFERENCE, 500.0, promoted)
    assert picked.source == "fallback" and picked.version == "baseline:static_reference" and picked.reason
    picked = policy_choice.choose_policy(
        SCHEMA, codec, REFERENCE, 500.0, policy_choice.PromotedPolicy(reason="no promoted model", best_baseline="pacer")
    )
    assert picked.version == "baseline:pacer" and picked.reason == "no promoted model"
    gate = policy_choice.choose_policy(
        SCHEMA,
        codec,
        REFERENCE,
        500.0,
        policy_choice.PromotedPolicy(FixedPolicy(np.zeros(SCHEMA.action_size)), "v3"),
        "gate",
    )
    assert gate.source == "fallback" and gate.reason == "gate"
    assert (
        policy_choice.choose_policy(
            SCHEMA,
            codec,
            REFERENCE,
            500.0,
            policy_choice.PromotedPolicy(FixedPolicy(np.zeros(SCHEMA.action_size)), "v3"),
        ).version
        == "v3"
    )
    with pytest.raises(PlanError, match="unknown baseline"):
        policy_choice.make_baseline("nope", SCHEMA, codec, REF_BUDGETS / 500)


def test_the_kill_switch_reverts_the_plan_to_the_reference_settings():
    h = history(marts(budgets=REF_BUDGETS * 0.8, bids=REF_BIDS * 1.1, key_events=0.0))
    pick = policy_choice.PolicyChoice(FixedPolicy(np.ones(SCHEMA.action_size)), "v9", "promoted")
    plan = planner.make_plan(h, REFERENCE, ACCOUNT, SCHEMA, pick, LAST.isoformat())
    assert plan.kill_switch.fire and plan.choice_source == "kill_switch"
    assert all(e.policy_version == "baseline:static_reference" for e in plan.entries)
    assert all(e.bid <= e.current_bid for e in plan.entries)  # back towards the reference bids
    assert passes(check(plan))


def with_modifiers(h: mart_history.MartHistory, device=(1.0, 1.0, 1.0), hours=(1.0,) * 6) -> mart_history.MartHistory:
    """The history with these modifiers in force on every search campaign (1 on the social ones)."""
    mods = np.ones((h.n_days, len(h.campaigns), 9))
    search = [j for j, c in enumerate(h.campaigns) if c.platform in ("google_ads", "microsoft_ads")]
    mods[:, search] = np.array([*device, *hours])
    return dataclasses.replace(h, modifiers=mods)


def test_a_policy_moves_search_modifiers_a_step_in_whole_points_and_the_plan_passes_the_checks():
    codec = ActionCodec.for_schema(SCHEMA, ACCOUNT.bid_range)
    up = codec.encode(REF_BUDGETS / 500.0, np.ones(8), np.full((8, 3), 5.0), np.full((8, 6), 0.2))
    h = with_modifiers(history(), device=(1.0, 1.0, 0.0), hours=(1.0, 1.0, 1.0, 1.0, 1.0, 0.5))
    plan = planner.make_plan(
        h, REFERENCE, ACCOUNT, SCHEMA, policy_choice.PolicyChoice(FixedPolicy(up), "t:1", "promoted"), LAST.isoformat()
    )
    assert passes(check(plan)), check(plan)
    for e in plan.entries:
        if e.platform in ("meta", "tiktok"):
            assert e.device_modifiers is None and e.hour_modifiers is None
            continue
        assert e.device_modifiers == (1.2, 1.2, 0.02)  # +20%; an excluded device comes back by 20% of 0.1
        assert e.hour_modifiers == (0.8, 0.8, 0.8, 0.8, 0.8, 0.4)  # the action asks 0.2: -20% a day
        assert e.current_device_modifiers == (1.0, 1.0, 0.0) and e.current_hour_modifiers[-1] == 0.5
        assert e.bid * 1.2 * 0.8 <= e.max_bid + 1e-9


def test_the_safe_plan_moves_modifiers_back_towards_those_in_force_when_gaelp_took_over():
    c = len(REF_BIDS)
    reference = planner.Reference(REF_BUDGETS, REF_BIDS, "test", device=np.ones((c, 3)), hours=np.ones((c, 6)))
    h = with_modifiers(history(), device=(2.0, 1.0, 1.0), hours=(1.0, 1.0, 1.0, 1.0, 1.0, 0.5))
    plan = planner.make_plan(h, reference, ACCOUNT, SCHEMA, choice(), LAST.isoformat())
    assert passes(check(plan)), check(plan)
    search = [e for e in plan.entries if e.platform in ("google_ads", "microsoft_ads")]
    assert search and all(e.device_modifiers == (1.6, 1.0, 1.0) for e in search)
    assert all(e.hour_modifiers == (1.0, 1.0, 1.0, 1.0, 1.0, 0.6) for e in search)


def test_the_plan_keeps_its_modifiers_through_the_plan_table(tmp_path):
    import duckdb

    from rl.bidding.plan_store import read_plan, write_plan

    h = with_modifiers(history(), device=(1.1, 1.0, 0.9))
    plan = planner.make_plan(h, REFERENCE, ACCOUNT, SCHEMA, choice(), LAST.isoformat())
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        write_plan(conn, LAST.isoformat(), plan)
        stored, _ = read_plan(conn, LAST.isoformat())
    assert [e.device_modifiers for e in stored] == [
        e.device_modifiers for e in sorted(plan.entries, key=lambda e: (e.platform, e.campaign_id))
    ]
    assert stored[0].to_plan_row().changes()[-1].field == "hour_modifier"


def test_the_kill_switch_steps_the_modifiers_back_to_those_recorded_when_gaelp_took_over():
    c = len(REF_BIDS)
    reference = planner.Reference(REF_BUDGETS, REF_BIDS, "test", device=np.ones((c, 3)), hours=np.ones((c, 6)))
    codec = ActionCodec.for_schema(SCHEMA, ACCOUNT.bid_range)
    further = codec.encode(REF_BUDGETS / 500.0, np.ones(8), np.full((8, 3), 5.0), np.full((8, 6), 5.0))
    promoted = policy_choice.PolicyChoice(FixedPolicy(further), "model:3", "promoted")
    # the CPA far above 1.5 x target on the last days (almost no key events): the switch fires
    h = with_modifiers(history(marts(key_events=0.001)), device=(1.5, 1.0, 1.0), hours=(1.0, 1.0, 1.0, 1.0, 1.0, 2.0))
    plan = planner.make_plan(h, reference, ACCOUNT, SCHEMA, promoted, LAST.isoformat())
    assert plan.kill_switch is not None and plan.kill_switch.fire
    assert plan.choice_source == "kill_switch" and passes(check(plan)), check(plan)
    search = [e for e in plan.entries if e.platform in ("google_ads", "microsoft_ads")]
    assert all(e.device_modifiers == (1.2, 1.0, 1.0) and e.hour_modifiers[-1] == 1.6 for e in search)


class _Recorder:
    """A policy that keeps what it was shown and holds every setting (action 0 is NaN-free: the reference)."""

    name = "recorder"

    def __init__(self):
        self.seen: list[np.ndarray] = []

    def reset(self, n_envs: int) -> None:
        pass

    def act(self, obs: np.ndarray) -> np.ndarray:
        self.seen.append(np.array(obs))
        return np.zeros((len(obs), SCHEMA.action_size))


def test_a_promoted_model_sees_the_episode_features_of_its_own_episode_length():
    """The plan cuts the days into cycles of the promoted model's episode length (the episodes it was gated on),
    not the planner's default, so its episode features run over the range it was trained on; a plan config that
    sets the length explicitly wins, and a length the history cannot cover is a clear error."""
    codec = ActionCodec.for_schema(SCHEMA, ACCOUNT.bid_range)
    plan_day = LAST + dt.timedelta(days=1)
    progress = SCHEMA.global_index("episode_progress")
    for days, plan_settings in ((14, ACCOUNT), (28, ACCOUNT), (14, dataclasses.replace(ACCOUNT, episode_days=21))):
        recorder = _Recorder()
        promoted = policy_choice.PromotedPolicy(recorder, "v1", episode_days=days)
        picked = policy_choice.choose_policy(SCHEMA, codec, REFERENCE, 500.0, promoted)
        assert picked.episode_days == days and tuple(promoted) == (recorder, "v1", None, None)
        planner.make_plan(history(), REFERENCE, plan_settings, SCHEMA, picked, LAST.isoformat())
        assert recorder.seen[-1][0, progress] == pytest.approx(plan_day.toordinal() % days / days)
    picked = dataclasses.replace(picked, episode_days=None)  # the asset's explicit `episode_days` clears the model's
    planner.make_plan(
        history(), REFERENCE, dataclasses.replace(ACCOUNT, episode_days=21), SCHEMA, picked, LAST.isoformat()
    )
    assert recorder.seen[-1][0, progress] == pytest.approx(plan_day.toordinal() % 21 / 21)
    too_long = dataclasses.replace(picked, episode_days=40)
    with pytest.raises(PlanError, match="history_days"):
        planner.make_plan(history(), REFERENCE, ACCOUNT, SCHEMA, too_long, LAST.isoformat())


def test_the_recorded_reference_bids_are_what_the_plan_decodes_from(tmp_path):
    """`ReferenceStore.recorded_bids` (what the calibration reads, so training decodes bids as the plan does) is
    empty before the first plan and then holds the bids recorded then, unchanged by later plans."""
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        store = ReferenceStore(con)
        assert store.recorded_bids() == {}
        first = store.reference(history(), 6)
        later = store.reference(history(marts(bids=REF_BIDS * 1.5)), 6)
        assert store.recorded_bids() == dict(zip(SCHEMA.campaign_ids, first.bids.tolist(), strict=True))
        np.testing.assert_allclose(later.bids, first.bids)
        np.testing.assert_allclose(first.bids, REF_BIDS)
