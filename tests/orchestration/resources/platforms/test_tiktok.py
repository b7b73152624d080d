"""TikTok pushes through the official TikTok Business API SDK, with only urllib3's `urlopen` (under the SDK's
REST client and urllib3's own request encoding) faked."""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs, urlsplit

import pytest
import urllib3

from orchestration.resources.platforms.base import LivePushRefused
from orchestration.resources.platforms.tiktok import TikTokBidPlatform
from tests.orchestration.resources.platforms.conftest import audit_text, plan_row

TOKEN = "tiktok-access-token-DO-NOT-LOG"


class FakeUrlopen:
    def __init__(self, answer):
        self.answer, self.sent, self.timeouts = answer, [], []

    def __call__(self, method, url, body=None, headers=None, **kwargs):
        self.timeouts.append(kwargs.get("timeout"))
        split = urlsplit(url)
        sent = {
            "method": method,
            "path": split.path,
            "query": {k: v[0] for k, v in parse_qs(split.query).items()},
            "headers": {
                k: ", ".join(str(v) for v in headers.getlist(k)) if hasattr(headers, "getlist") else str(headers[k])
                for k in headers or {}
            },
            "body": json.loads(body) if body else None,
        }
        self.sent.append(sent)
        status, payload = self.answer(sent)
        return urllib3.HTTPResponse(body=json.dumps(payload).encode(), status=status, preload_content=True)


def ok(sent):
    return 200, {"code": 0, "message": "OK", "request_id": f"rid-{len(sent)}-{sent['path']}", "data": {}}


def make(live=False, answer=ok) -> tuple[TikTokBidPlatform, FakeUrlopen]:
    resource = TikTokBidPlatform(
        advertiser_id="7000", access_token=TOKEN, live_pushing_enabled=live, retry_base_seconds=0.0
    )
    fake = FakeUrlopen(answer)
    resource.api_client().rest_client.pool_manager.urlopen = fake
    return resource, fake


def rows():
    return [
        plan_row("tiktok", 301, daily_budget=60.004, bid=9.5, budget_target="3301", bid_targets=("3301",)),
        plan_row("tiktok", 302, daily_budget=20.0, budget_target="3302"),
    ]


def test_live_push_updates_each_ad_group_with_budget_and_bid_price(audit, caplog):
    resource, fake = make(live=True)
    with caplog.at_level(logging.DEBUG):
        results = resource.push(rows(), live=True, audit=audit)
    first, second = fake.sent
    assert first["method"] == "POST" and first["path"] == "/open_api/v1.3/adgroup/update/"
    assert first["headers"]["Access-Token"] == TOKEN
    # only the changed fields: the SDK model's defaults (exclude_age_under_eighteen=False...) are not sent
    assert first["body"] == {"advertiser_id": "7000", "adgroup_id": "3301", "budget": 60.0, "bid_price": 9.5}
    assert second["body"]["adgroup_id"] == "3302" and second["body"]["budget"] == 20.0
    assert "bid_price" not in second["body"]
    assert [(r.target, r.field, r.status) for r in results] == [
        ("3301", "budget", "applied"),
        ("3301", "bid", "applied"),
        ("3302", "budget", "applied"),
    ]
    assert results[0].request_id == "rid-5-/open_api/v1.3/adgroup/update/"
    assert TOKEN not in audit_text(audit) + caplog.text + repr(resource)


def test_live_push_needs_the_switch(audit):
    resource, fake = make(live=False)
    with pytest.raises(LivePushRefused, match="TikTokBidPlatform"):
        resource.push(rows(), live=True, audit=audit)
    assert fake.sent == []


def test_validate_only_reads_the_ad_groups_and_checks_them(audit):
    def answer(sent):
        listed = [
            {
                "adgroup_id": "3301",
                "budget": 50.0,
                "budget_mode": "BUDGET_MODE_DAY",
                "billing_event": "CPM",
                "bid_type": "BID_TYPE_CUSTOM",
                "bid_price": 9.0,
            },
            {
                "adgroup_id": "3302",
                "budget": 500.0,
                "budget_mode": "BUDGET_MODE_TOTAL",
                "billing_event": "CPM",
                "bid_type": "BID_TYPE_CUSTOM",
                "bid_price": 9.0,
            },
        ]
        return 200, {"code": 0, "message": "OK", "request_id": "rid-get", "data": {"list": listed}}

    resource, fake = make(answer=answer)
    results = resource.push(rows(), live=False, audit=audit)
    (sent,) = fake.sent
    assert sent["method"] == "GET" and sent["path"] == "/open_api/v1.3/adgroup/get/"
    assert sent["query"]["advertiser_id"] == "7000"
    assert json.loads(sent["query"]["filtering"]) == {"adgroup_ids": ["3301", "3302"]}
    assert [(r.target, r.field, r.status) for r in results] == [
        ("3301", "budget", "checked_exists"),
        ("3301", "bid", "checked_exists"),
        ("3302", "budget", "refused"),
    ]
    assert "BUDGET_MODE_TOTAL, not a daily budget" in results[2].response
    assert {r.request_id for r in results} == {"rid-get"}


def test_refusals_are_failed_with_code_and_request_id_and_rate_limits_retried(audit):
    calls = []

    def answer(sent):
        calls.append(sent)
        if len(calls) == 1:
            return 200, {"code": 40100, "message": "Too many requests", "request_id": "rid-slow", "data": {}}
        if sent["body"]["adgroup_id"] == "3302":
            return 200, {"code": 40002, "message": "Budget is too low", "request_id": "rid-bad", "data": {}}
        return ok(sent)

    resource, fake = make(live=True, answer=answer)
    results = resource.push(rows(), live=True, audit=audit)
    assert len(fake.sent) == 3
    assert [r.status for r in results] == ["applied", "applied", "refused"]
    assert results[2].request_id == "rid-bad" and "code 40002: Budget is too low" in results[2].response


def test_a_timeout_is_unknown_and_the_next_push_reads_the_ad_group_back(audit):
    def answer(sent):
        if sent["body"]["adgroup_id"] == "3302":
            raise urllib3.exceptions.ReadTimeoutError(None, sent["path"], "read timed out")
        return ok(sent)

    resource, fake = make(live=True, answer=answer)
    results = resource.push(rows(), live=True, audit=audit)
    assert [(r.target, r.status) for r in results] == [("3301", "applied"), ("3301", "applied"), ("3302", "unknown")]
    assert fake.timeouts[-1] is not None  # every call carries a client-side timeout

    def answer_after(sent):  # TikTok had applied the budget before the answer was lost
        if sent["method"] == "GET":
            listed = [{"adgroup_id": "3302", "budget": 20.0, "budget_mode": "BUDGET_MODE_DAY"}]
            return 200, {"code": 0, "message": "OK", "request_id": "rid-get", "data": {"list": listed}}
        return ok(sent)

    fake.answer = answer_after
    again = resource.push(rows(), live=True, audit=audit)
    assert [s["method"] for s in fake.sent[2:]] == ["GET"]  # read back, nothing sent again
    assert [r.status for r in again] == ["skipped_unchanged", "skipped_unchanged", "skipped_unchanged"]
    assert "read back from the platform: 20.00 is in force" in again[2].response
