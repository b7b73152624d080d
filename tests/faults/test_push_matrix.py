"""Every platform × every fault of the issue's matrix, injected at the SDK's network layer on the first update call
of a live push: the audit status of each change, how often the call was made (the retry behaviour), and that a
plain second run converges — the server then holds the plan, and every audit row of both runs is the truth about
its attempt (`benchmarks.fakes.judge`)."""

from __future__ import annotations

import pytest

from benchmarks.fakes.judge import wrong_rows
from benchmarks.fakes.rig import PLATFORMS, SECRETS, make_rig
from benchmarks.fakes.server import FAULTS, fault, on_op

PARTITION = "2025-03-02"
EITHER_WAY = ("500", "502_html", "504_html", "read_timeout")  # the server may or may not have applied it
CASES = [(p, k, a) for p in PLATFORMS for k in FAULTS for a in ((True, False) if k in EITHER_WAY else (None,))]
# Google Ads answers a gateway error and a reset connection as gRPC UNAVAILABLE, which is retried
GOOGLE_RETRIED = {"502_html", "504_html", "reset_after_send"}


def plan(rig):
    budgets = {c.campaign_id: round(c.budget * 1.1, 2) for c in rig.campaigns}
    bids = {c.campaign_id: round(c.bid * 1.1, 2) for c in rig.campaigns}
    return rig.rows(PARTITION, budgets, bids)


def expected(platform: str, kind: str, first_call: list, change) -> tuple[str, int]:
    """(status of a change sent in the faulted call, update calls that call took)."""
    if kind in ("429", "503") or (platform == "google_ads" and kind in GOOGLE_RETRIED):
        return "applied", 2
    if kind == "auth":
        return "refused", 1
    if kind == "partial_failure":
        if platform in ("google_ads", "microsoft_ads"):  # one operation of the batch is refused
            return ("refused" if change.target == first_call[0] else "applied"), 1
        return "refused", 1  # one object per call: the whole call is refused
    return "unknown", 1


def first_update_targets(rig) -> list[str]:
    """The targets of the first update call (the one the fault hits), in operation order."""
    first = next(e for e in rig.server.log if e.op == "update")
    return [t for _, t, _ in first.writes]


@pytest.mark.parametrize(("platform", "kind", "applies"), CASES)
def test_a_fault_is_audited_truthfully_and_a_second_run_converges(platform, kind, applies, audit, caplog):
    rig = make_rig(platform)
    rig.server.faults = on_op("update", [fault(kind, applies)])
    rows = plan(rig)
    first = rig.resource.push(rows, live=True, audit=audit)
    first_log = list(rig.server.log)
    faulted = first_update_targets(rig)
    update_calls = [e for e in first_log if e.op == "update"]

    for result in first:
        if result.target in faulted:
            status, calls = expected(platform, kind, faulted, result)
            assert result.status == status, (result.target, result.field, result.response)
        else:
            assert result.status == "applied", (result.target, result.response)
    assert (
        sum(e.writes == update_calls[0].writes for e in update_calls) == expected(platform, kind, faulted, first[0])[1]
    )
    assert wrong_rows(audit.rows(), first_log, rig.server) == []

    second = rig.resource.push(rows, live=True, audit=audit)  # the platform answers normally again
    assert wrong_rows(audit.rows()[len(first) :], rig.server.log[len(first_log) :], rig.server) == []
    assert all(r.ok for r in second), [(r.target, r.status, r.response) for r in second]
    for change in (c for row in rows for c in row.changes()):
        assert rig.server.holds(change.field, change.target, change.new_value), change.describe()
    assert len(audit.rows()) == 2 * len(first)  # one row per change and attempt
    for before, after in zip(first, second, strict=True):
        if before.status == "applied":
            assert after.status == "skipped_unchanged"
        if before.status == "unknown" and applies:  # read back: it had been applied, so it is not sent again
            assert after.status == "skipped_unchanged" and "earlier attempt" in after.response
    text = repr(audit.rows()) + caplog.text
    assert not any(secret in text for secret in SECRETS)


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("kind", ["429", "502_html", "auth", "read_timeout"])
def test_validate_only_under_a_fault_says_what_was_checked(platform, kind, audit):
    rig = make_rig(platform, live=False)
    op = "validate" if platform in ("google_ads", "meta") else "read"
    if platform == "meta" and kind != "429":
        op = "validate"
    rig.server.faults = on_op(op, [fault(kind, True)])
    results = rig.resource.push(plan(rig), live=False, audit=audit)
    validation = "validated_by_platform" if platform in ("google_ads", "meta") else "checked_exists"
    statuses = {r.status for r in results}
    retried = kind == "429" or (platform == "google_ads" and kind == "502_html")
    if retried:
        assert statuses == {validation}
    else:
        assert statuses - {validation} == {"refused" if kind == "auth" else "unknown"}
    assert wrong_rows(audit.rows(), rig.server.log, rig.server) == []
    assert rig.state() == make_rig(platform).state()  # validating changed nothing
