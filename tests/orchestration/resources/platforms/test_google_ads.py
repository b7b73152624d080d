"""Google Ads pushes through the real SDK (API v26), with only the gRPC channel under its interceptors faked."""

from __future__ import annotations

import logging

import grpc
import pytest
from google.ads.googleads.v26.errors.types.errors import ErrorCode, ErrorLocation, GoogleAdsError, GoogleAdsFailure
from google.ads.googleads.v26.errors.types.quota_error import QuotaErrorEnum
from google.ads.googleads.v26.errors.types.range_error import RangeErrorEnum
from google.ads.googleads.v26.resources.types.ad_group import AdGroup
from google.ads.googleads.v26.services.services.ad_group_service.transports.grpc import AdGroupServiceGrpcTransport
from google.ads.googleads.v26.services.services.campaign_budget_service.transports.grpc import (
    CampaignBudgetServiceGrpcTransport,
)
from google.ads.googleads.v26.services.services.google_ads_service.transports.grpc import (
    GoogleAdsServiceGrpcTransport,
)
from google.ads.googleads.v26.services.types.ad_group_service import MutateAdGroupResult, MutateAdGroupsResponse
from google.ads.googleads.v26.services.types.campaign_budget_service import (
    MutateCampaignBudgetResult,
    MutateCampaignBudgetsResponse,
)
from google.ads.googleads.v26.services.types.google_ads_service import GoogleAdsRow, SearchGoogleAdsResponse
from google.protobuf import any_pb2
from google.rpc import status_pb2

from orchestration.resources.platforms.base import LivePushRefused
from orchestration.resources.platforms.google_ads import GoogleAdsBidPlatform
from tests.orchestration.resources.fake_google_ads import DEV_TOKEN, sdk_client
from tests.orchestration.resources.platforms.conftest import PARTITION, audit_text, plan_row
from tests.orchestration.resources.platforms.fake_google_ads_mutate import (
    MUTATE_AD_GROUPS,
    MUTATE_BUDGETS,
    SEARCH,
    FakeMutateChannel,
    ads_error,
)

SECRETS = ("client-secret-DO-NOT-LOG", "refresh-token-DO-NOT-LOG", DEV_TOKEN)


def ok_answer(method, request):
    if method == MUTATE_BUDGETS:
        results = [MutateCampaignBudgetResult(resource_name=op.update.resource_name) for op in request.operations]
        return MutateCampaignBudgetsResponse(results=[] if request.validate_only else results)
    results = [MutateAdGroupResult(resource_name=op.update.resource_name) for op in request.operations]
    return MutateAdGroupsResponse(results=[] if request.validate_only else results)


def make(monkeypatch, live: bool = False) -> tuple[GoogleAdsBidPlatform, FakeMutateChannel]:
    channel = FakeMutateChannel(answer=ok_answer)
    for transport in (CampaignBudgetServiceGrpcTransport, AdGroupServiceGrpcTransport, GoogleAdsServiceGrpcTransport):
        monkeypatch.setattr(transport, "create_channel", classmethod(lambda cls, *a, **k: channel))
    resource = GoogleAdsBidPlatform(
        developer_token=DEV_TOKEN,
        client_id="client-id.apps.googleusercontent.com",
        client_secret=SECRETS[0],
        refresh_token=SECRETS[1],
        customer_id="123-456-7890",
        live_pushing_enabled=live,
        retry_base_seconds=0.0,
    ).with_client(sdk_client())
    return resource, channel


def rows():
    return [
        plan_row("google_ads", 101, daily_budget=12.34, bid=1.555, budget_target="9001", bid_targets=("7001", "7002")),
        plan_row("google_ads", 102, daily_budget=80.0, budget_target="9002"),
    ]


def test_validate_only_sends_request_objects_in_micros_with_field_masks(monkeypatch, audit):
    resource, channel = make(monkeypatch)
    results = resource.push(rows(), live=False, audit=audit)

    budgets, bids = channel.sent
    assert budgets.method == MUTATE_BUDGETS and bids.method == MUTATE_AD_GROUPS
    for sent in (budgets, bids):
        assert sent.request.customer_id == "1234567890"
        assert sent.request.validate_only is True and sent.request.partial_failure is True
        assert sent.metadata["developer-token"] == DEV_TOKEN
    assert [op.update.amount_micros for op in budgets.request.operations] == [12_340_000, 80_000_000]
    assert [op.update.resource_name for op in budgets.request.operations] == [
        "customers/1234567890/campaignBudgets/9001",
        "customers/1234567890/campaignBudgets/9002",
    ]
    assert all(list(op.update_mask.paths) == ["amount_micros"] for op in budgets.request.operations)
    assert [op.update.cpc_bid_micros for op in bids.request.operations] == [1_560_000, 1_560_000]  # to the cent
    assert [op.update.resource_name for op in bids.request.operations] == [
        "customers/1234567890/adGroups/7001",
        "customers/1234567890/adGroups/7002",
    ]
    assert all(list(op.update_mask.paths) == ["cpc_bid_micros"] for op in bids.request.operations)

    assert [(r.campaign_id, r.field, r.target, r.status) for r in results] == [
        (101, "budget", "9001", "validated_by_platform"),
        (101, "bid", "7001", "validated_by_platform"),
        (101, "bid", "7002", "validated_by_platform"),
        (102, "budget", "9002", "validated_by_platform"),
    ]
    assert [(r.request_id, r.operation_index) for r in results] == [
        ("req-1", 0),
        ("req-2", 0),
        ("req-2", 1),
        ("req-1", 1),
    ]
    stored = audit.rows(PARTITION)
    assert {r["mode"] for r in stored} == {"validate_only"} and {r["status"] for r in stored} == {
        "validated_by_platform"
    }
    assert (
        '"amount_micros": "12340000"' in stored[0]["request_json"]
        and '"validate_only": true' in stored[0]["request_json"]
    )


def test_live_push_is_refused_unless_switched_on(monkeypatch, audit):
    resource, channel = make(monkeypatch, live=False)
    with pytest.raises(LivePushRefused, match="live_pushing_enabled"):
        resource.push(rows(), live=True, audit=audit)
    assert channel.sent == [] and audit.rows() == []


def failure_at(index: int, message: str) -> GoogleAdsFailure:
    element = ErrorLocation.FieldPathElement
    return GoogleAdsFailure(
        errors=[
            GoogleAdsError(
                error_code=ErrorCode(range_error=RangeErrorEnum.RangeError.TOO_HIGH),
                message=message,
                location=ErrorLocation(
                    field_path_elements=[
                        element(field_name="operations", index=index),
                        element(field_name="update"),
                        element(field_name="amount_micros"),
                    ]
                ),
            )
        ]
    )


def test_partial_failure_is_mapped_to_the_right_plan_row(monkeypatch, audit):
    resource, channel = make(monkeypatch, live=True)

    def answer(method, request):
        if method != MUTATE_BUDGETS:
            return ok_answer(method, request)
        detail = any_pb2.Any(
            type_url="type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
            value=GoogleAdsFailure.serialize(failure_at(1, "Budget too high")),
        )
        results = [MutateCampaignBudgetResult(resource_name=request.operations[0].update.resource_name), {}]
        status = status_pb2.Status(code=3, message="partial failure", details=[detail])
        return MutateCampaignBudgetsResponse(results=results, partial_failure_error=status)

    channel.answer = answer
    results = resource.push(rows(), live=True, audit=audit)
    by_key = {(r.campaign_id, r.field, r.target): r for r in results}
    assert by_key[(101, "budget", "9001")].status == "applied"
    failed = by_key[(102, "budget", "9002")]
    assert failed.status == "refused" and failed.operation_index == 1 and failed.request_id == "req-1"
    assert "range_error.TOO_HIGH: Budget too high (field: operations[1].update.amount_micros)" in failed.response
    assert by_key[(101, "bid", "7001")].status == "applied"
    assert {r["status"] for r in audit.rows() if r["target"] == "9002"} == {"refused"}


def test_a_refused_request_fails_every_operation_with_the_request_id(monkeypatch, audit):
    resource, channel = make(monkeypatch, live=True)
    channel.answer = lambda method, request: ads_error(
        grpc.StatusCode.INVALID_ARGUMENT, failure_at(0, "first budget refused"), "REQ-BAD"
    )
    results = resource.push(rows()[1:], live=True, audit=audit)
    (result,) = results
    assert result.status == "refused" and result.request_id == "REQ-BAD"
    assert "INVALID_ARGUMENT" in result.response and "first budget refused" in result.response


def test_quota_errors_are_retried_with_backoff(monkeypatch, audit):
    resource, channel = make(monkeypatch, live=True)
    quota = GoogleAdsFailure(
        errors=[
            GoogleAdsError(
                error_code=ErrorCode(quota_error=QuotaErrorEnum.QuotaError.RESOURCE_TEMPORARILY_EXHAUSTED),
                message="Too many requests",
            )
        ]
    )
    answers = [
        ads_error(grpc.StatusCode.RESOURCE_EXHAUSTED, None, "REQ-Q1"),  # the SDK passes this one through as gRPC
        ads_error(grpc.StatusCode.PERMISSION_DENIED, quota, "REQ-Q2"),  # a GoogleAdsException with a QuotaError
    ]
    channel.answer = lambda method, request: answers.pop(0) if answers else ok_answer(method, request)
    (result,) = resource.push(rows()[1:], live=True, audit=audit)
    assert len(channel.sent) == 3 and result.status == "applied" and result.request_id == "req-3"


def test_quota_errors_fail_the_changes_after_the_last_attempt(monkeypatch, audit):
    resource, channel = make(monkeypatch, live=True)
    resource = resource.model_copy(update={"retry_attempts": 2}).with_client(sdk_client())
    channel.answer = lambda method, request: ads_error(grpc.StatusCode.RESOURCE_EXHAUSTED, None, "REQ-Q")
    (result,) = resource.push(rows()[1:], live=True, audit=audit)
    assert len(channel.sent) == 2 and result.status == "refused" and "RESOURCE_EXHAUSTED" in result.response


def test_second_push_of_a_partition_makes_no_call(monkeypatch, audit):
    resource, channel = make(monkeypatch, live=True)
    first = resource.push(rows(), live=True, audit=audit)
    assert {r.status for r in first} == {"applied"} and len(channel.sent) == 2
    second = resource.push(rows(), live=True, audit=audit)
    assert len(channel.sent) == 2  # no SDK call the second time
    assert {r.status for r in second} == {"skipped_unchanged"}
    assert all("already in force for partition 2025-03-02" in r.response for r in second)
    assert len(audit.rows()) == 8


def test_a_lost_call_is_unknown_and_the_next_push_reads_it_back_before_sending(monkeypatch, audit):
    resource, channel = make(monkeypatch, live=True)
    channel.answer = lambda method, request: (
        ok_answer(method, request)
        if method == MUTATE_BUDGETS
        else ads_error(grpc.StatusCode.DEADLINE_EXCEEDED, None, "REQ-LOST")
    )
    resource.push(rows(), live=True, audit=audit)
    assert [(r["target"], r["status"]) for r in audit.rows()] == [
        ("9001", "applied"),
        ("9002", "applied"),
        ("7001", "unknown"),
        ("7002", "unknown"),
    ]
    assert "DEADLINE_EXCEEDED" in audit.rows()[2]["response"]

    def answer(method, request):  # the network is back; the server had not applied the bids
        if method == SEARCH:
            ids = [7001, 7002]
            return SearchGoogleAdsResponse(
                results=[GoogleAdsRow(ad_group=AdGroup(id=i, cpc_bid_micros=2_000_000)) for i in ids]
            )
        return ok_answer(method, request)

    channel.answer = answer
    again = resource.push(rows(), live=True, audit=audit)
    assert [m.method for m in channel.sent[2:]] == [SEARCH, MUTATE_AD_GROUPS]
    assert "FROM ad_group WHERE ad_group.id IN (7001, 7002)" in channel.sent[2].request.query
    assert [(r.target, r.status) for r in again] == [
        ("9001", "skipped_unchanged"),
        ("7001", "applied"),
        ("7002", "applied"),
        ("9002", "skipped_unchanged"),
    ]
    assert "the platform held 2.00; sent again" in again[1].response


def test_secrets_stay_out_of_the_audit_table_results_and_logs(monkeypatch, audit, caplog):
    resource, channel = make(monkeypatch, live=True)
    channel.answer = lambda method, request: ads_error(grpc.StatusCode.INVALID_ARGUMENT, failure_at(0, "no"), "R")
    with caplog.at_level(logging.DEBUG):
        results = resource.push(rows(), live=True, audit=audit)
        resource.push(rows(), live=False, audit=audit)
    text = audit_text(audit) + repr(results) + caplog.text + repr(resource)
    for secret in SECRETS:
        assert secret not in text
    assert "google_ads:1234567890" in caplog.text
