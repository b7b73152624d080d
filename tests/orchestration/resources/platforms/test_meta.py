"""Meta pushes through the real facebook-business SDK, with only the `requests` transport adapter faked."""

from __future__ import annotations

import logging

import pytest
import requests

from orchestration.resources.platforms.base import LivePushRefused
from orchestration.resources.platforms.meta import MetaBidPlatform
from rl.bidding.plan import PlanError
from rl.bidding.push import PushInterrupted
from tests.orchestration.resources.platforms.conftest import audit_text, plan_row
from tests.orchestration.resources.platforms.fake_http import FakeHttp

APP_SECRET, ACCESS_TOKEN = "app-secret-DO-NOT-LOG", "access-token-DO-NOT-LOG"


def ok(wire):
    return 200, {"success": True}, {"x-fb-trace-id": f"trace-{wire.path.strip('/').split('/')[-1]}"}


def make(live=False, answer=ok) -> tuple[MetaBidPlatform, FakeHttp]:
    resource = MetaBidPlatform(
        app_id="1234",
        app_secret=APP_SECRET,
        access_token=ACCESS_TOKEN,
        ad_account_id="act_555",
        live_pushing_enabled=live,
        retry_base_seconds=0.0,
    )
    http = FakeHttp(answer)
    resource.http_session().mount("https://", http)
    return resource, http


def rows():
    return [
        plan_row("meta", 201, daily_budget=45.5, bid=12.345, budget_target="2201", bid_targets=("2201",)),
        plan_row("meta", 202, bid=8.0, bid_targets=("2202",)),
    ]


def test_validate_only_posts_minor_units_with_execution_options(audit):
    resource, http = make()
    results = resource.push(rows(), live=False, audit=audit)
    first, second = http.sent
    assert first.method == "POST" and first.path == "/v26.0/2201"
    assert first.form["daily_budget"] == "4550" and first.form["bid_amount"] == "1235"  # cents
    assert first.form["execution_options"] == '["validate_only"]'
    assert second.path == "/v26.0/2202" and second.form["bid_amount"] == "800" and "daily_budget" not in second.form
    assert first.query["access_token"] == [ACCESS_TOKEN]  # the SDK authenticates the call...
    assert [(r.target, r.field, r.status, r.request_id) for r in results] == [
        ("2201", "budget", "validated", "trace-2201"),
        ("2201", "bid", "validated", "trace-2201"),
        ("2202", "bid", "validated", "trace-2202"),
    ]
    text = audit_text(audit)
    assert ACCESS_TOKEN not in text and APP_SECRET not in text and "appsecret_proof" not in text  # ...not the audit
    assert '"daily_budget": 4550' in audit.rows()[0]["request_json"]


def test_live_push_applies_without_validate_only_once_switched_on(audit):
    resource, http = make(live=False)
    with pytest.raises(LivePushRefused):
        resource.push(rows(), live=True, audit=audit)
    assert http.sent == []
    resource, http = make(live=True)
    results = resource.push(rows(), live=True, audit=audit)
    assert all("execution_options" not in w.form for w in http.sent)
    assert {r.status for r in results} == {"applied"} and {r.mode for r in results} == {"live"}
    again = resource.push(rows(), live=True, audit=audit)
    assert len(http.sent) == 2 and {r.status for r in again} == {"skipped_unchanged"}


def test_an_error_fails_the_ad_set_with_the_trace_id_and_rate_limits_are_retried(audit, caplog):
    calls = []

    def answer(wire):
        calls.append(wire)
        if len(calls) == 1:
            return 400, {"error": {"message": "User request limit reached", "code": 17, "fbtrace_id": "T1"}}, {}
        if wire.path.endswith("/2202"):
            error = {
                "message": "Invalid parameter",
                "code": 100,
                "error_subcode": 1487901,
                "error_user_msg": "The bid amount is too low",
                "fbtrace_id": "T-BAD",
            }
            return 400, {"error": error}, {}
        return ok(wire)

    resource, http = make(live=True, answer=answer)
    with caplog.at_level(logging.DEBUG):
        results = resource.push(rows(), live=True, audit=audit)
    assert len(http.sent) == 3  # the rate-limited call was sent again
    assert [r.status for r in results] == ["applied", "applied", "failed"]
    failed = results[2]
    assert failed.request_id == "T-BAD" and "code 100, subcode 1487901" in failed.response
    assert "The bid amount is too low" in failed.response
    assert ACCESS_TOKEN not in caplog.text + audit_text(audit) + repr(resource)
    assert APP_SECRET not in caplog.text + audit_text(audit) + repr(resource)


def test_a_lost_connection_after_k_calls_leaves_the_rest_intended(audit, caplog):
    def answer(wire):
        if wire.path.endswith("/2202"):
            raise requests.ConnectionError(f"connection reset while sending {wire.url}")  # url has the token
        return ok(wire)

    resource, http = make(live=True, answer=answer)
    with caplog.at_level(logging.DEBUG), pytest.raises(PushInterrupted) as info:
        resource.push(rows(), live=True, audit=audit)
    assert "connection reset" in caplog.text  # the redacted traceback is logged
    assert ACCESS_TOKEN not in str(info.value) + caplog.text and APP_SECRET not in caplog.text
    assert [(r["target"], r["field"], r["status"]) for r in audit.rows()] == [
        ("2201", "budget", "applied"),
        ("2201", "bid", "applied"),
        ("2202", "bid", "intended"),
    ]


def test_ids_must_be_ad_set_ids():
    resource, _ = make()
    with pytest.raises(PlanError, match="ad set id is digits"):
        resource.check_rows([plan_row("meta", 201, bid=3.0, bid_targets=("act_1",))])
