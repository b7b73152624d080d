"""The push audit table and the push protocol, with an in-memory adapter (the SDK adapters have their own tests)."""

from __future__ import annotations

import logging

import duckdb
import pytest

from rl.bidding.audit import STATUSES, PushAudit, RedactingFilter, install_redacting_filter, redact
from rl.bidding.plan import PlanRow
from rl.bidding.push import MAX_SILENT_CALLS, Batch, Outcome, Reading, execute_push, with_backoff


def rows(partition="2025-03-02"):
    def one(campaign_id, budget, bid):
        return PlanRow(
            "meta", campaign_id, budget, bid, 10.0, 1.0, "p1", partition, str(campaign_id), (str(campaign_id),)
        )

    return [one(201, 20.0, 2.0), one(202, 12.0, 3.0), one(203, 30.0, 1.0)]  # 203's bid is unchanged


class Adapter:
    """A platform in memory: one call per change, `state` holds what it applied. `fail_at` refuses the n-th call,
    `crash_at` applies it and then loses the answer (`lost_before=True`: loses it before applying), `kill_at`
    stops the process during the call; `owners` maps an object to another account (a must-read check)."""

    validation = "validated_by_platform"

    def __init__(self, audit_reader=None, fail_at=None, crash_at=(), lost_before=False, kill_at=None, state=None):
        self.calls, self.reads, self.fail_at, self.crash_at = [], [], fail_at, set(crash_at or ())
        self.lost_before, self.kill_at, self.audit_reader = lost_before, kill_at, audit_reader
        self.state = {} if state is None else state
        self.owners: dict[str, str] = {}
        self.read_error = None

    def build(self, changes, validate_only):
        return [Batch([c], [{"node": c.target, "token": "tok-SECRET"}], payload=c) for c in changes]

    def send(self, batch, validate_only):
        if self.audit_reader is not None:  # what another connection sees while the call is in flight
            self.seen = self.audit_reader.execute("SELECT status FROM bid_push_audit ORDER BY audit_id").fetchall()
        change = batch.payload
        self.calls.append(change)
        n = len(self.calls)
        if n == self.kill_at:
            raise KeyboardInterrupt
        if n == self.fail_at:
            return [Outcome.refused("refused: bad value", "rid-bad", 0)]
        if n in self.crash_at and self.lost_before:
            raise ConnectionError("connection reset (access_token=tok-SECRET)")
        if not validate_only:
            self.state[(change.field, change.target)] = change.new_value
        if n in self.crash_at:
            raise ConnectionError("connection reset after send (access_token=tok-SECRET)")
        return [Outcome.done("ok", f"rid-{n}", 0)]

    def read(self, changes):
        if self.read_error:
            raise TimeoutError(self.read_error)
        self.reads.append([(c.field, c.target) for c in changes])
        out = []
        for c in changes:
            if c.target in self.owners:
                out.append(Reading(None, problem=f"{c.target} belongs to {self.owners[c.target]}"))
            else:
                out.append(Reading(self.state.get((c.field, c.target))))
        return out

    def must_read(self, change):
        return bool(self.owners) or self.read_error == "ownership"


def push(audit, adapter, mode="live", partition="2025-03-02"):
    return execute_push(
        audit, rows(partition), mode=mode, account="meta:act_1", adapter=adapter, secrets=["tok-SECRET"]
    )


def statuses(audit):
    return [(r["campaign_id"], r["field"], r["status"]) for r in audit.rows()]


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
    results = push(audit, validate, mode="validate_only")  # validating again is always allowed: it changes nothing
    assert len(validate.calls) == 5 and {r.status for r in results} == {"validated_by_platform", "skipped_unchanged"}


def test_refused_changes_are_sent_again_on_the_next_push(db):
    audit = PushAudit(db[0])
    push(audit, Adapter(fail_at=2))
    retry = Adapter()
    results = push(audit, retry)
    assert [c.field for c in retry.calls] == ["bid"] and [c.row.campaign_id for c in retry.calls] == [201]
    assert [r.status for r in results if r.campaign_id == 201] == ["skipped_unchanged", "applied"]
    assert retry.reads == []  # a refusal is known: nothing to read back


def test_a_lost_answer_is_unknown_the_push_goes_on_and_the_next_push_reads_it_back(db):
    connection, path = db
    audit = PushAudit(connection)
    platform = Adapter(crash_at={3})  # 202's budget is applied, then the connection drops
    results = push(audit, platform)
    assert [r.status for r in results] == ["applied", "applied", "unknown", "applied", "applied", "skipped_unchanged"]
    assert "tok-SECRET" not in repr(results) and "may or may not have applied" in results[2].response
    connection.close()
    reopened = PushAudit(duckdb.connect(path))  # what the next run (or an operator) sees
    assert (202, "budget", "unknown") in statuses(reopened)
    again = Adapter(state=platform.state)
    results = push(reopened, again)
    assert again.reads == [[("budget", "202")]] and again.calls == []  # read back: 12.00 is in force, not re-sent
    assert results[2].status == "skipped_unchanged" and "earlier attempt, audit id 4," in results[2].response
    assert {r.status for r in push(reopened, Adapter(state=platform.state))} == {"skipped_unchanged"}
    reopened.connection.close()


def test_an_unknown_outcome_that_did_not_take_effect_is_sent_again(db):
    audit = PushAudit(db[0])
    platform = Adapter(crash_at={1}, lost_before=True)
    assert push(audit, platform)[0].status == "unknown"
    again = Adapter(state=platform.state)
    results = push(audit, again)
    assert [(c.field, c.target) for c in again.calls] == [("budget", "201")] and results[0].status == "applied"
    assert "read back after unknown audit id 2: the platform held no value; sent again" in results[0].response


def test_a_killed_push_leaves_intended_which_the_next_push_records_unknown_and_reconciles(db):
    audit = PushAudit(db[0])
    platform = Adapter(kill_at=2)
    with pytest.raises(KeyboardInterrupt):
        push(audit, platform)
    assert statuses(audit)[-1] == (201, "bid", "intended")
    again = Adapter(state=platform.state)
    results = push(audit, again)
    assert statuses(audit)[2] == (201, "bid", "unknown")  # the stale row now says what is known about it
    assert again.reads == [[("bid", "201")]] and results[1].status == "applied"  # not applied before: sent


def test_after_calls_without_any_answer_the_rest_is_not_sent(db):
    audit = PushAudit(db[0])
    platform = Adapter(crash_at={1, 2, 3, 4, 5}, lost_before=True)
    results = push(audit, platform)
    assert len(platform.calls) == MAX_SILENT_CALLS
    assert [r.status for r in results] == [
        "unknown",
        "unknown",
        "not_sent",
        "not_sent",
        "not_sent",
        "skipped_unchanged",
    ]
    assert "did not answer the last 2 calls" in results[2].response


def test_an_object_of_another_account_is_not_sent(db):
    audit = PushAudit(db[0])
    platform = Adapter()
    platform.owners = {"202": "act_999"}
    results = push(audit, platform)
    assert [c.target for c in platform.calls] == ["201", "201", "203"]
    assert [r.status for r in results if r.campaign_id == 202] == ["not_sent", "not_sent"]
    assert "202 belongs to act_999" in results[2].response
    checking = Adapter()
    checking.read_error = "ownership"  # the check cannot be made: nothing is sent
    results = push(audit, checking, partition="2025-03-04")
    assert checking.calls == [] and {r.status for r in results} == {"not_sent", "skipped_unchanged"}


def test_a_table_of_the_first_statuses_is_migrated(db):
    connection, _ = db
    legacy = """
        CREATE SEQUENCE bid_push_audit_seq;
        CREATE TABLE bid_push_audit (
            audit_id BIGINT NOT NULL DEFAULT nextval('bid_push_audit_seq'), push_id VARCHAR NOT NULL,
            data_partition VARCHAR NOT NULL, policy_version VARCHAR NOT NULL, platform VARCHAR NOT NULL,
            account VARCHAR NOT NULL, campaign_id BIGINT NOT NULL,
            field VARCHAR NOT NULL CHECK (field IN ('budget', 'bid')), target VARCHAR NOT NULL, old_value DOUBLE,
            new_value DOUBLE NOT NULL, mode VARCHAR NOT NULL CHECK (mode IN ('validate_only', 'live', 'demo')),
            status VARCHAR NOT NULL
                CHECK (status IN ('intended', 'applied', 'validated', 'failed', 'skipped_unchanged')),
            request_json VARCHAR, response VARCHAR, request_id VARCHAR, operation_index INTEGER,
            intended_at_utc TIMESTAMP NOT NULL, finished_at_utc TIMESTAMP);
    """
    connection.execute(legacy)
    for account, status in [("tiktok:7", "validated"), ("meta:act_1", "validated"), ("meta:act_1", "failed")]:
        connection.execute(
            "INSERT INTO bid_push_audit (push_id, data_partition, policy_version, platform, account, campaign_id, "
            "field, target, new_value, mode, status, intended_at_utc) VALUES ('p', 'd', 'v', ?, ?, 1, 'bid', '1', "
            "2.0, 'validate_only', ?, now())",
            [account.split(":")[0], account, status],
        )
    audit = PushAudit(connection)
    assert [r["status"] for r in audit.rows()] == ["checked_exists", "validated_by_platform", "refused"]
    push(audit, Adapter())  # the new statuses are accepted, and the ids go on from the old ones
    assert audit.rows()[-1]["audit_id"] > 3 and set(STATUSES) >= {r["status"] for r in audit.rows()}


def test_secrets_are_redacted_in_the_table_and_logs(db, caplog):
    audit = PushAudit(db[0])
    with caplog.at_level(logging.DEBUG):
        push(audit, Adapter(crash_at={1}))
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
