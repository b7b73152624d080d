"""account_structure and the push's drift guard on a copy of the session's demo warehouse and world: the demo
accounts as the platforms list them (no drift, no proposal), and a managed campaign removed on Google Ads since it
was reviewed — its push is not sent, the others are, the run fails naming it, and the check fails on it."""

from __future__ import annotations

import dagster as dg
from google.ads.googleads.v26.services.services.ad_group_service.transports.grpc import AdGroupServiceGrpcTransport
from google.ads.googleads.v26.services.services.campaign_budget_service.transports.grpc import (
    CampaignBudgetServiceGrpcTransport,
)
from google.ads.googleads.v26.services.services.google_ads_service.transports.grpc import (
    GoogleAdsServiceGrpcTransport,
)
from google.ads.googleads.v26.services.types.google_ads_service import GoogleAdsRow

from assets.accounts import ACCOUNT_ASSETS, DRIFT_CHECK
from assets.bidding import BIDDING_ASSETS
from orchestration.accounts import proposal_file
from orchestration.resources.platforms.google_ads import GoogleAdsBidPlatform
from rl.accounts.review import read_review
from rl.bidding.audit import TABLE as AUDIT_TABLE
from tests.assets.conftest import LAST
from tests.orchestration.resources.fake_google_ads import DEV_TOKEN, sdk_client
from tests.orchestration.resources.platforms import discovery_answers as answers
from tests.orchestration.resources.platforms.fake_google_ads_mutate import SEARCH, FakeMutateChannel
from tests.orchestration.resources.platforms.test_google_ads import ok_answer

PROPORTIONAL = {"ops": {"daily_bid_plan": {"config": {"policy": "proportional"}}}}


def _materialize(copy, assets, resources=None, selection=None, run_config=None):
    partitioned = any(a.partitions_def for a in assets) and selection != ["account_structure"]
    return dg.materialize(
        assets,
        selection=selection,
        partition_key=LAST if partitioned else None,
        resources=resources or copy["resources"],
        run_config=run_config or {},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def test_account_structure_lists_the_demo_accounts_without_drift_or_proposal(copy):
    result = _materialize(copy, ACCOUNT_ASSETS)
    assert result.success
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == DRIFT_CHECK and check.passed, check.metadata
    meta = result.asset_materializations_for_node("account_structure")[0].metadata
    assert len(meta["campaigns"].value.records) == 8
    assert meta["proposals"].value.startswith("no new campaign") and meta["drift"].value.startswith("no drift")
    proposal = read_review(proposal_file())
    assert [r.campaign_id for r in proposal] == [101, 102, 103, 104, 201, 202, 301, 401]
    assert not any(r.managed for r in proposal)  # no review file yet: the proposal manages nothing


def _google_with_102_removed(monkeypatch) -> tuple[GoogleAdsBidPlatform, FakeMutateChannel]:
    """The demo's Google Ads account (ids of `demo_targets`) behind the real SDK, campaign 102 removed since."""
    structure: dict[str, list[GoogleAdsRow]] = {"campaign": [], "campaign_budget": [], "ad_group": []}
    for cid in (101, 102, 103, 104):
        status = "REMOVED" if cid == 102 else "ENABLED"
        structure["campaign"].append(answers.google_campaign(cid, f"c{cid}", status, "MANUAL_CPC", cid * 100))
        row = GoogleAdsRow()
        row.campaign_budget.id, row.campaign_budget.amount_micros = cid * 100, 50_000_000
        row.campaign_budget.reference_count, row.campaign_budget.status = 1, "ENABLED"
        structure["campaign_budget"].append(row)
        group = GoogleAdsRow()
        group.campaign.id, group.ad_group.id, group.ad_group.status = cid, cid * 100 + 1, "ENABLED"
        structure["ad_group"].append(group)
    search = answers.google_search(structure, page_size=10)
    channel = FakeMutateChannel(answer=lambda m, r: search(m, r) if m == SEARCH else ok_answer(m, r))
    for transport in (CampaignBudgetServiceGrpcTransport, AdGroupServiceGrpcTransport, GoogleAdsServiceGrpcTransport):
        monkeypatch.setattr(transport, "create_channel", classmethod(lambda cls, *a, **k: channel))
    resource = GoogleAdsBidPlatform(
        developer_token=DEV_TOKEN,
        client_id="client-id.apps.googleusercontent.com",
        client_secret="client-secret-DO-NOT-LOG",
        refresh_token="refresh-token-DO-NOT-LOG",
        customer_id="1234567890",
        live_pushing_enabled=True,
        retry_base_seconds=0.0,
    ).with_client(sdk_client())
    return resource, channel


def test_drift_blocks_the_push_of_a_removed_campaign(copy, monkeypatch):
    assert _materialize(copy, BIDDING_ASSETS, selection=["daily_bid_plan"], run_config=PROPORTIONAL).success
    monkeypatch.setenv("GAELP_ENV", "prod")  # a real Google Ads account (its gRPC channel faked); the rest demo
    google, channel = _google_with_102_removed(monkeypatch)
    resources = {**copy["resources"], "bid_google_ads": google}
    result = _materialize(copy, BIDDING_ASSETS, resources, ["bid_push"])
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error.message
    assert "102" in failure and "removed on google_ads" in failure
    with copy["resources"]["duckdb"].get_connection() as con:
        rows = con.execute(f"SELECT campaign_id, status, response FROM {AUDIT_TABLE} WHERE platform = 'google_ads'")
        audit = rows.fetchall()
    blocked = [(s, r) for c, s, r in audit if c == 102]
    assert blocked and all(s == "not_sent" and "removed on google_ads" in r for s, r in blocked)
    assert {s for c, s, _ in audit if c != 102} <= {"applied", "skipped_unchanged"}
    assert {c for c, s, _ in audit if s == "applied"}  # the other campaigns were pushed
    mutated = [op.update.resource_name for s in channel.sent if s.method != SEARCH for op in s.request.operations]
    assert mutated and not any(name.endswith(("/10200", "/10201")) for name in mutated)

    structure = _materialize(copy, ACCOUNT_ASSETS, {**copy["resources"], "bid_google_ads": google})
    (check,) = structure.get_asset_check_evaluations()
    assert not check.passed and "google_ads/102: removed on google_ads" in check.metadata["failures"].value
