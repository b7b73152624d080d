"""The demo bid platform: plans applied to the demo world with `DemoWorld.push`, never to a real account."""

from __future__ import annotations

import pytest

from orchestration.resources.platforms import BidPlatform, DemoBidPlatform, GoogleAdsBidPlatform
from rl.bidding.plan import PlanError, demo_targets
from rl.world.world import DemoWorld
from tests.conftest import scaled
from tests.orchestration.resources.platforms.conftest import plan_row


@pytest.fixture
def demo(tmp_path, reference_params) -> DemoBidPlatform:
    world_file = tmp_path / "small.yaml"
    world_file.write_text(scaled(reference_params, 0.05).to_yaml())
    return DemoBidPlatform(world_dir=str(tmp_path / "state"), world_file=str(world_file), seed=3)


def demo_row(campaign_id: int, platform: str, **kwargs):
    budget_target, bid_targets = demo_targets(campaign_id)
    return plan_row(platform, campaign_id, budget_target=budget_target, bid_targets=bid_targets, **kwargs)


def test_demo_targets_are_derived_from_the_campaign_id():
    assert demo_targets(101) == ("10100", ("10101",))


def test_validate_only_checks_without_pushing(demo, audit):
    rows = [demo_row(101, "google_ads", daily_budget=40.0, bid=2.5), demo_row(201, "meta", bid=9.0)]
    results = demo.push(rows, live=False, audit=audit)
    assert {r.status for r in results} == {"validated_by_platform"} and {r.mode for r in results} == {"validate_only"}
    assert demo.world().pushes() == []


def test_push_applies_to_the_world_once_per_partition(demo, audit):
    rows = [demo_row(101, "google_ads", daily_budget=40.0, bid=2.5), demo_row(201, "meta", bid=9.0)]
    results = demo.push(rows, live=True, audit=audit)
    assert {r.status for r in results} == {"applied"} and {r.mode for r in results} == {"demo"}
    assert results[0].request_id == "demo-push-0" and results[2].request_id == "demo-push-1"
    reopened = DemoWorld.open(demo.world_dir, demo.world_file, demo.seed)
    assert reopened.settings[101] == (40.0, 2.5) and reopened.settings[201][1] == 9.0
    assert [(p.campaign_id, p.daily_budget, p.bid) for p in reopened.pushes()] == [(101, 40.0, 2.5), (201, None, 9.0)]
    assert "bid_push 2025-03-02 policy policy-7" == reopened.pushes()[0].source

    again = demo.push(rows, live=True, audit=audit)
    assert {r.status for r in again} == {"skipped_unchanged"}
    assert len(DemoWorld.open(demo.world_dir, demo.world_file, demo.seed).pushes()) == 2  # nothing pushed again


def test_wrong_ids_platforms_and_bids_are_refused_per_change(demo, audit):
    rows = [
        plan_row("google_ads", 102, daily_budget=20.0, budget_target="999"),
        demo_row(103, "meta", bid=1.0),
        demo_row(104, "google_ads", bid=1000.0),
    ]
    results = demo.push(rows, live=True, audit=audit)
    assert [r.status for r in results] == ["refused", "refused", "refused"]
    assert "'999' does not exist in the demo world; campaign 102's is '10200'" in results[0].response
    assert "is on 'google_ads' in the demo world, not 'meta'" in results[1].response
    assert "above the campaign's max bid" in results[2].response
    assert demo.world().pushes() == []


def test_a_crash_after_k_pushes_leaves_the_rest_intended(demo, audit, monkeypatch):
    rows = [demo_row(cid, "google_ads", bid=2.3) for cid in (101, 102, 103)]
    world, real_push = demo.world(), DemoWorld.push
    calls = []

    def crashing_push(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the process is stopped in the middle of the third push
        return real_push(self, *args, **kwargs)

    monkeypatch.setattr(DemoWorld, "push", crashing_push)
    with pytest.raises(KeyboardInterrupt):
        demo.push(rows, live=True, audit=audit)
    assert [(r["campaign_id"], r["status"]) for r in audit.rows()] == [
        (101, "applied"),
        (102, "applied"),
        (103, "intended"),
    ]
    assert [p.campaign_id for p in world.pushes()] == [101, 102]
    monkeypatch.setattr(DemoWorld, "push", real_push)
    again = demo.push(rows, live=True, audit=audit)  # the next run pushes only what was not confirmed
    assert [r.status for r in again] == ["skipped_unchanged", "skipped_unchanged", "applied"]
    assert "push stopped before it recorded an answer" in audit.rows()[2]["response"]  # 103's first row: unknown
    assert audit.rows()[2]["status"] == "unknown"
    assert [p.campaign_id for p in world.pushes()] == [101, 102, 103]


def test_an_error_after_the_call_left_is_an_unknown_outcome_read_back_next_time(demo, audit, monkeypatch):
    world, real_push = demo.world(), DemoWorld.push

    def applied_then_failed(self, *args, **kwargs):
        real_push(self, *args, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(DemoWorld, "push", applied_then_failed)
    (result,) = demo.push([demo_row(101, "google_ads", bid=2.3)], live=True, audit=audit)
    assert result.status == "unknown" and "OSError: disk full" in result.response
    monkeypatch.setattr(DemoWorld, "push", real_push)
    (again,) = demo.push([demo_row(101, "google_ads", bid=2.3)], live=True, audit=audit)
    assert again.status == "skipped_unchanged" and "read back from the platform: 2.30 is in force" in again.response
    assert len(world.pushes()) == 1


def test_the_demo_can_never_push_live_to_a_real_account(demo, audit):
    """Demo pushes are recorded as mode 'demo'; a real adapter needs its own switch, which is off by default."""
    assert isinstance(demo, BidPlatform) and demo.account().startswith("demo-world")
    assert GoogleAdsBidPlatform.model_fields["live_pushing_enabled"].default is False
    results = demo.push([demo_row(101, "google_ads", bid=2.2)], live=True, audit=audit)
    assert {r["mode"] for r in audit.rows()} == {"demo"} and results[0].status == "applied"


def test_modifiers_reach_the_world_once_and_are_read_back(demo, audit):
    world = DemoWorld.open(demo.world_dir, demo.world_file, demo.seed)
    before = world.modifiers[101]
    row = demo_row(
        101,
        "google_ads",
        bid=2.0,
        device_modifiers=(1.2, before.device[1], before.device[2]),
        current_device_modifiers=before.device,
        hour_modifiers=(0.9,) + before.hours[1:],
        current_hour_modifiers=before.hours,
    )
    results = demo.push([row], live=True, audit=audit)
    sent = {r.target: r.status for r in results if r.field in ("device_modifier", "hour_modifier")}
    assert sent["101:mobile"] == "applied" and sent["101:h00_04"] == "applied"
    assert sent["101:desktop"] == "skipped_unchanged" and sent["101:h20_24"] == "skipped_unchanged"
    after = DemoWorld.open(demo.world_dir, demo.world_file, demo.seed).modifiers[101]
    assert after.device == (1.2,) + before.device[1:] and after.hours == (0.9,) + before.hours[1:]
    again = demo.push([row], live=True, audit=audit)  # idempotent: nothing sent twice
    assert {r.status for r in again} == {"skipped_unchanged"}
    assert len(DemoWorld.open(demo.world_dir, demo.world_file, demo.seed).pushes()) == 1
    changes = row.changes()
    readings = demo._read([c for c in changes if c.target in ("101:mobile", "101:h00_04")])
    assert [r.value for r in readings] == [1.2, 0.9]


def test_modifiers_the_world_refuses_are_refused_per_change(demo, audit):
    out_of_range = demo_row(101, "google_ads", bid=2.0, hour_modifiers=(0.05, 1, 1, 1, 1, 1))
    results = demo.push([out_of_range], live=True, audit=audit)
    assert {r.status for r in results if r.target == "101:h00_04"} == {"refused"}
    assert {r.status for r in results} <= {"refused", "skipped_unchanged"}
    assert any("outside google_ads's range [0.1, 10]" in r.response for r in results)
    wrong_blocks = demo_row(101, "google_ads", bid=2.0, hour_modifiers=(1.0, 1.2, 1.0, 1.0))  # 4 blocks, world has 6
    results = demo.push([wrong_blocks], live=True, audit=audit)
    assert any(r.status == "refused" and "does not exist in the demo world" in r.response for r in results)
    with pytest.raises(PlanError, match="meta has no device or hour-of-day bid modifiers"):
        demo_row(201, "meta", bid=2.0, device_modifiers=(1.0, 1.0, 1.0))


def test_the_base_resource_is_abstract():
    with pytest.raises(TypeError, match="abstract"):
        BidPlatform()
