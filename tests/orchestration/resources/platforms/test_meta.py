"""Meta pushes through the real facebook-business SDK, with only the `requests` transport adapter faked."""

from __future__ import annotations

import logging

import pytest
import requests

from orchestration.resources.platforms.base import LivePushRefused
from orchestration.resources.platforms.meta import MetaBidPlatform
from rl.bidding.plan import PlanError
from tests.orchestration.resources.platforms.conftest import audit_text, plan_row
from tests.orchestration.resources.platforms.fake_http import FakeHttp

APP_SECRET, ACCESS_TOKEN = "app-secret-DO-NOT-LOG", "access-token-DO-NOT-LOG"


def ok(wire):
    node = wire.path.strip("/").split("/")[-1]
    if wire.method == "GET":  # the ad set read before every update: ownership (and values for a read-back)
        body = {"id": node, "account_id": "555", "daily_budget": "5000", "bid_amount": 200}
        return 200, body, {"x-fb-trace-id": f"read-{node}"}
    return 200, {"success": True}, {"x-fb-trace-id": f"trace-{node}"}


def posts(http):
    return [w for w in http.sent if w.method == "POST"]


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
    assert [(w.method, w.path) for w in http.sent[:2]] == [("GET", "/v26.0/2201"), ("GET", "/v26.0/2202")]
    assert http.sent[0].query["fields"] == ["account_id,daily_budget,bid_amount"]
    first, second = posts(http)
    assert first.method == "POST" and first.path == "/v26.0/2201"
    assert first.form["daily_budget"] == "4550" and first.form["bid_amount"] == "1235"  # cents
    assert first.form["execution_options"] == '["validate_only"]'
    assert second.path == "/v26.0/2202" and second.form["bid_amount"] == "800" and "daily_budget" not in second.form
    assert first.query["access_token"] == [ACCESS_TOKEN]  # the SDK authenticates the call...
    assert [(r.target, r.field, r.status, r.request_id) for r in results] == [
        ("2201", "budget", "validated_by_platform", "trace-2201"),
        ("2201", "bid", "validated_by_platform", "trace-2201"),
        ("2202", "bid", "validated_by_platform", "trace-2202"),
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
    assert all("execution_options" not in w.form for w in posts(http))
    assert {r.status for r in results} == {"applied"} and {r.mode for r in results} == {"live"}
    again = resource.push(rows(), live=True, audit=audit)
    assert len(http.sent) == 4 and {r.status for r in again} == {"skipped_unchanged"}


def test_an_error_fails_the_ad_set_with_the_trace_id_and_rate_limits_are_retried(audit, caplog):
    calls = []

    def answer(wire):
        if wire.method == "GET":
            return ok(wire)
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
    assert len(posts(http)) == 3  # the rate-limited call was sent again
    assert [r.status for r in results] == ["applied", "applied", "refused"]
    failed = results[2]
    assert failed.response.startswith("Meta ad set 2202 (meta:act_555) refused (HTTP 400, code 100")
    assert failed.request_id == "T-BAD" and "code 100, subcode 1487901" in failed.response
    assert "The bid amount is too low" in failed.response
    assert ACCESS_TOKEN not in caplog.text + audit_text(audit) + repr(resource)
    assert APP_SECRET not in caplog.text + audit_text(audit) + repr(resource)


def test_a_lost_connection_is_unknown_and_the_next_push_reads_it_back(audit, caplog):
    def answer(wire):
        if wire.path.endswith("/2202") and wire.method == "POST":
            raise requests.ConnectionError(f"connection reset while sending {wire.url}")  # url has the token
        return ok(wire)

    resource, http = make(live=True, answer=answer)
    with caplog.at_level(logging.DEBUG):
        results = resource.push(rows(), live=True, audit=audit)
    assert "connection reset" in caplog.text  # the redacted error is logged
    assert ACCESS_TOKEN not in audit_text(audit) + caplog.text and APP_SECRET not in caplog.text
    assert [(r.target, r.field, r.status) for r in results] == [
        ("2201", "budget", "applied"),
        ("2201", "bid", "applied"),
        ("2202", "bid", "unknown"),
    ]
    http.answer = ok  # the server holds bid 2.00 (200 cents), not the planned 8.00: sent again
    again = resource.push(rows(), live=True, audit=audit)
    assert [r.status for r in again] == ["skipped_unchanged", "skipped_unchanged", "applied"]
    assert posts(http)[-1].form["bid_amount"] == "800"


def test_an_ad_set_of_another_ad_account_is_never_sent(audit):
    def answer(wire):
        if wire.method == "GET" and wire.path.endswith("/2202"):
            return 200, {"id": "2202", "account_id": "999", "bid_amount": 200}, {}
        return ok(wire)

    resource, http = make(live=True, answer=answer)
    results = resource.push(rows(), live=True, audit=audit)
    assert [w.path for w in posts(http)] == ["/v26.0/2201"]
    assert results[2].status == "not_sent"
    assert "ad set 2202 belongs to ad account act_999, not act_555" in results[2].response


def test_ids_must_be_ad_set_ids():
    resource, _ = make()
    with pytest.raises(PlanError, match="ad set id is digits"):
        resource.check_rows([plan_row("meta", 201, bid=3.0, bid_targets=("act_1",))])
