"""The push audit table and the push protocol, with an in-memory adapter (the SDK adapters have their own tests)."""

from __future__ import annotations

import logging

import duckdb
import pytest

from rl.bidding.audit import PushAudit, RedactingFilter, install_redacting_filter, redact
from rl.bidding.plan import PlanRow
from rl.bidding.push import Batch, Outcome, PushInterrupted, execute_push, with_backoff


def rows(partition="2025-03-02"):
    def one(campaign_id, budget, bid):
        return PlanRow(
            "meta", campaign_id, budget, bid, 10.0, 1.0, "p1", partition, str(campaign_id), (str(campaign_id),)
        )

    return [one(201, 20.0, 2.0), one(202, 12.0, 3.0), one(203, 30.0, 1.0)]  # 203's bid is unchanged


class Adapter:
    """One call per change; `fail_at` refuses a change, `crash_at` loses the call (unknown outcome)."""

    def __init__(self, audit_reader=None, fail_at=None, crash_at=None):
        self.calls, self.fail_at, self.crash_at, self.audit_reader = [], fail_at, crash_at, audit_reader

    def build(self, changes, validate_only):
        return [Batch([c], [{"node": c.target, "token": "tok-SECRET"}], payload=c) for c in changes]

    def send(self, batch, validate_only):
        if self.audit_reader is not None:  # what another connection sees while the call is in flight
            self.seen = self.audit_reader.execute("SELECT status FROM bid_push_audit ORDER BY audit_id").fetchall()
        self.calls.append(batch.payload)
        if len(self.calls) == self.crash_at:
            raise ConnectionError("connection reset (access_token=tok-SECRET)")
        if len(self.calls) == self.fail_at:
            return [Outcome(False, "refused: bad value", "rid-bad", 0)]
        return [Outcome(True, "ok", f"rid-{len(self.calls)}", 0)]


def push(audit, adapter, mode="live", partition="2025-03-02"):
    return execute_push(
        audit,
        rows(partition),
        mode=mode,
        account="meta:act_1",
        build=adapter.build,
        send=adapter.send,
        secrets=["tok-SECRET"],
    )


@pytest.fixture
def db(tmp_path):
    path = str(tmp_path / "audit.duckdb")
    connection = duckdb.connect(path)
    yield connection, path
    connection.close()


def test_intended_is_committed_before_the_call_and_outcomes_after(db):
    connection, _ = db
    audit = PushAudit(connection)
    adapter = Adapter(audit_reader=connection.cursor())
    results = push(audit, adapter)
    assert adapter.seen[-1] == ("intended",)  # visible to another connection during the call: committed
    assert [(r.campaign_id, r.field, r.status) for r in results] == [
        (201, "budget", "applied"),
        (201, "bid", "applied"),
        (202, "budget", "applied"),
        (202, "bid", "applied"),
        (203, "budget", "applied"),
        (203, "bid", "skipped_unchanged"),
    ]
    stored = audit.rows("2025-03-02")
    assert all(r["finished_at_utc"] >= r["intended_at_utc"] for r in stored)
    assert {r["account"] for r in stored} == {"meta:act_1"} and stored[1]["request_id"] == "rid-1"


def test_second_push_of_the_partition_makes_no_call_and_another_partition_does(db):
    audit = PushAudit(db[0])
    first = Adapter()
    push(audit, first)
    second = Adapter()
    results = push(audit, second)
    assert second.calls == [] and {r.status for r in results} == {"skipped_unchanged"}
    other = Adapter()
    push(audit, other, partition="2025-03-03")
    assert len(other.calls) == 5
    validate = Adapter()
    push(audit, validate, mode="validate_only")  # validating again is always allowed: it changes nothing
    assert len(validate.calls) == 5


def test_failed_changes_are_retried_on_the_next_push(db):
    audit = PushAudit(db[0])
    push(audit, Adapter(fail_at=2))
    retry = Adapter()
    results = push(audit, retry)
    assert [c.field for c in retry.calls] == ["bid"] and [c.row.campaign_id for c in retry.calls] == [201]
    assert [r.status for r in results if r.campaign_id == 201] == ["skipped_unchanged", "applied"]


def test_a_crash_after_k_calls_survives_in_the_file(db):
    connection, path = db
    audit = PushAudit(connection)
    with pytest.raises(PushInterrupted) as info:
        push(audit, Adapter(crash_at=3))
    assert "tok-SECRET" not in str(info.value)
    connection.close()
    reopened = PushAudit(duckdb.connect(path))  # what the next run (or an operator) sees
    assert [(r["campaign_id"], r["field"], r["status"]) for r in reopened.rows()] == [
        (203, "bid", "skipped_unchanged"),  # written first: it needs no call
        (201, "budget", "applied"),
        (201, "bid", "applied"),
        (202, "budget", "intended"),  # the call in flight: it may or may not have reached the platform
    ]  # 202's bid and 203's budget were never attempted
    reopened.connection.close()


def test_secrets_are_redacted_in_the_table_and_logs(db, caplog):
    audit = PushAudit(db[0])
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(PushInterrupted):
            push(audit, Adapter(crash_at=1))
    text = repr(audit.rows())
    assert "tok-SECRET" not in text and "tok-SECRET" not in caplog.text
    assert '"token": "***"' in audit.rows()[1]["request_json"]


def test_redact():
    value = {
        "developer_token": "d",
        "nested": [{"Access-Token": "a", "amount": 5}],
        "url": "https://x/y?access_token=abc123&fields=id",
        "xml": "<tns:DeveloperToken>DEV</tns:DeveloperToken><tns:AuthenticationToken>AT</tns:AuthenticationToken>",
        "header": "Authorization: Bearer ya29.abc",
        "text": "client_secret='s3cr3t', refresh_token: r3fr3sh, password=pw, app_secret=as",
        "known": "the value MY-KNOWN-SECRET appears",
    }
    out = redact(value, secrets=["MY-KNOWN-SECRET"])
    assert out["developer_token"] == "***" and out["nested"] == [{"Access-Token": "***", "amount": 5}]
    flat = repr(out)
    for secret in ("abc123", "DEV<", "AT<", "ya29", "s3cr3t", "r3fr3sh", "pw,", "as'", "MY-KNOWN-SECRET"):
        assert secret not in flat
    assert "fields=id" in out["url"] and "amount" in flat


def test_redacting_filter_on_sdk_loggers(caplog):
    install_redacting_filter(["fake_sdk"], ["SDK-SECRET-VALUE"])
    logger = logging.getLogger("fake_sdk")
    assert any(isinstance(f, RedactingFilter) for f in logger.filters)
    with caplog.at_level(logging.DEBUG, logger="fake_sdk"):
        logger.debug("sending %s with <DeveloperToken>%s</DeveloperToken>", "SDK-SECRET-VALUE", "t0k")
    assert "SDK-SECRET-VALUE" not in caplog.text and "t0k" not in caplog.text and "sending" in caplog.text


def test_with_backoff_retries_only_retryable_errors():
    sleeps, attempts = [], []

    def flaky():
        attempts.append(1)
        if len(attempts) < 3:
            raise TimeoutError("busy")
        return "done"

    assert (
        with_backoff(
            flaky,
            retryable=lambda e: isinstance(e, TimeoutError),
            attempts=5,
            base_seconds=1.0,
            what="t",
            sleep=sleeps.append,
        )
        == "done"
    )
    assert sleeps == [1.0, 2.0]
    with pytest.raises(ValueError):
        with_backoff(
            lambda: (_ for _ in ()).throw(ValueError("no")),
            retryable=lambda e: False,
            attempts=5,
            base_seconds=1.0,
            what="t",
            sleep=sleeps.append,
        )
