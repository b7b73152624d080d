"""How a plan is pushed, whatever the platform: decide which changes need a call, read back what an earlier call
left unknown, audit every attempt before and after its call, and hand back one `PushResult` per change.

An adapter (`PushAdapter`) supplies:
  * `build(changes, validate_only) -> list[Batch]`: its SDK request objects, with a JSON-able description of each
    change's part of the request for the audit;
  * `send(batch, validate_only) -> list[Outcome]`: one outcome per change of the batch, in order. An `Outcome` is
    `done` (applied / validated), `refused` (the platform answered no: nothing applied) or `unknown` (the request
    left and no usable answer came back). `send` may also raise: the outcome is then unknown for the whole batch;
  * `read(changes) -> list[Reading]`: the platform's current value of each change's object and field (and whether
    the object may be pushed to at all: it exists and belongs to the configured account);
  * `must_read(change) -> bool`: whether a change must be read before it is sent (an ownership check the platform
    itself would not make); and `validation`: the audit status a validate-only `done` means on this platform
    (`validated_by_platform` or `checked_exists`, see `rl.bidding.audit`).

Convergence. A change whose latest audit row for the partition is `unknown` (or a stale `intended`, which the push
first records as `unknown`) is read back before anything is sent: if the platform already holds the planned value
the change is recorded `skipped_unchanged` (nothing sent), otherwise it is sent again. Pushes set absolute values,
so sending again is always safe. After `MAX_SILENT_CALLS` calls in a row that ended without any answer, the
remaining calls of the push are not made (`not_sent`): a dead platform costs a few timeouts, not one per change.
"""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from rl.bidding.audit import MODES, OK_STATUSES, VALIDATION_STATUSES, PushAudit, redact, utc_now
from rl.bidding.plan import Change, PlanRow, to_cents

log = logging.getLogger(__name__)
T = TypeVar("T")
OUTCOME_KINDS = ("done", "refused", "unknown")
MAX_SILENT_CALLS = 2  # calls in a row without any answer before the rest of a push is given up


@dataclass(frozen=True)
class Outcome:
    """How one change's call ended: `done` (applied, or validated in validate-only mode), `refused` (the platform
    said no: nothing applied) or `unknown` (sent, no usable answer), with the response or error text."""

    kind: str
    response: str
    request_id: str | None = None
    operation_index: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in OUTCOME_KINDS:
            raise ValueError(f"outcome kind {self.kind!r} is not one of {OUTCOME_KINDS}")

    @classmethod
    def done(cls, response: str, request_id: str | None = None, index: int | None = None) -> Outcome:
        return cls("done", response, request_id, index)

    @classmethod
    def refused(cls, response: str, request_id: str | None = None, index: int | None = None) -> Outcome:
        return cls("refused", response, request_id, index)

    @classmethod
    def unknown(cls, response: str, request_id: str | None = None, index: int | None = None) -> Outcome:
        return cls("unknown", response, request_id, index)


@dataclass(frozen=True)
class Reading:
    """A change's object as the platform holds it now: the field's current `value` (account currency; None when
    the platform did not report one), the `problem` that forbids pushing to it (missing, another account's), or the
    `error` that kept it from being read (timeout, server error)."""

    value: float | None
    problem: str | None = None
    error: str | None = None


@dataclass
class Batch:
    """Changes sent in one platform call. `requests[i]` describes change i's part of the call (audited, redacted);
    `payload` is the adapter's own request object(s)."""

    changes: list[Change]
    requests: list[dict[str, Any]]
    payload: Any = None

    def __post_init__(self) -> None:
        if len(self.requests) != len(self.changes):
            raise ValueError(f"batch of {len(self.changes)} changes with {len(self.requests)} request descriptions")


class PushAdapter(Protocol):
    validation: str

    def build(self, changes: list[Change], validate_only: bool) -> list[Batch]: ...

    def send(self, batch: Batch, validate_only: bool) -> list[Outcome]: ...

    def read(self, changes: list[Change]) -> list[Reading]: ...

    def must_read(self, change: Change) -> bool: ...


@dataclass(frozen=True)
class PushResult:
    """What happened to one intended change (one audit row)."""

    audit_id: int
    data_partition: str
    platform: str
    campaign_id: int
    field: str
    target: str
    old_value: float | None
    new_value: float
    mode: str
    status: str
    response: str | None = None
    request_id: str | None = None
    operation_index: int | None = None

    @property
    def ok(self) -> bool:
        """True when the change is (or, validating, would be) in force; False for refused, unknown, not sent."""
        return self.status in OK_STATUSES


def with_backoff(
    call: Callable[[], T],
    *,
    retryable: Callable[[BaseException], bool],
    attempts: int,
    base_seconds: float,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
    ambiguous: Callable[[BaseException], bool] = lambda e: False,
) -> T:
    """`call()`, retried with exponential backoff (base, 2*base, 4*base...) while it raises a `retryable` error,
    at most `attempts` times in all; the last error is raised as it is. When an earlier attempt failed in an
    `ambiguous` way (the request may have been processed), the raised error carries it as `earlier_unknown`: a
    refusal on a later attempt does not mean nothing was applied."""
    earlier: BaseException | None = None
    for attempt in range(max(1, attempts)):
        try:
            return call()
        except Exception as e:
            if attempt + 1 >= attempts or not retryable(e):
                if earlier is not None:
                    e.earlier_unknown = earlier  # type: ignore[attr-defined]
                raise
            if ambiguous(e):
                earlier = e
            delay = base_seconds * 2**attempt
            log.warning(
                "%s: %s (attempt %d of %d), retrying in %.1fs", what, type(e).__name__, attempt + 1, attempts, delay
            )
            sleep(delay)
    raise AssertionError("unreachable")


@dataclass
class _Plan:
    """What a push does with each change, decided before any call."""

    rows: list[tuple[Change, str, str]]  # changes recorded without a call: (change, status, why)
    to_send: list[Change]
    notes: dict[int, str]  # id(change) -> what the read-back said, added to the audited response


def _decide(audit: PushAudit, changes: list[Change], adapter: PushAdapter, mode: str) -> _Plan:
    validate_only = mode == "validate_only"
    latest: dict[tuple[str, str], dict] = {}
    rows, candidates, reconcile = [], [], {}
    for change in changes:
        row = change.row
        key = (row.data_partition, row.platform)
        if key not in latest and not validate_only:
            latest[key] = audit.latest(row.data_partition, row.platform, mode)
        last = latest.get(key, {}).get((row.campaign_id, change.field, change.target))
        if change.unchanged:
            rows.append((change, "skipped_unchanged", f"unchanged: {change.new_value:.2f} is already in force"))
        elif last and last["status"] in ("applied", "skipped_unchanged") and _same(last["new_value"], change):
            why = f"already in force for partition {row.data_partition} (audit id {last['audit_id']}); not sent again"
            rows.append((change, "skipped_unchanged", why))
        else:
            if last and last["status"] in ("unknown", "intended"):
                reconcile[id(change)] = last["audit_id"]
            candidates.append(change)
    reads = [c for c in candidates if id(c) in reconcile or adapter.must_read(c)]
    readings: list[Reading] | None = None
    failure = ""
    if reads:
        try:
            readings = adapter.read(reads)
            if len(readings) != len(reads):
                raise RuntimeError(f"the adapter read {len(readings)} values for {len(reads)} changes")
        except Exception as e:  # the read failed: ownership cannot be checked, a read-back cannot be made
            failure = f"{type(e).__name__}: {e}"
            log.warning("reading the current values before the push failed: %s", failure)
    by_change = dict(zip(map(id, reads), readings or [], strict=False))
    blocked, notes = set(), {}
    for change in reads:
        reading = by_change.get(id(change))
        earlier = reconcile.get(id(change))
        if reading is None or reading.error:
            error = failure if reading is None else reading.error
            if adapter.must_read(change):
                why = f"not sent: the check before sending could not read {change.target} ({error})"
                rows.append((change, "not_sent", why))
                blocked.add(id(change))
            else:
                notes[id(change)] = f"read-back after unknown audit id {earlier} failed ({error}); sent again"
        elif reading.problem:
            rows.append((change, "not_sent", f"not sent: {reading.problem}"))
            blocked.add(id(change))
        elif earlier is not None and reading.value is not None and _same(reading.value, change):
            why = (
                f"read back from the platform: {reading.value:.2f} is in force (the earlier attempt, audit id "
                f"{earlier}, whose outcome was unknown, took effect, or the same value was set since); not sent again"
            )
            rows.append((change, "skipped_unchanged", why))
            blocked.add(id(change))
        elif earlier is not None:
            held = "no value" if reading.value is None else f"{reading.value:.2f}"
            notes[id(change)] = f"read back after unknown audit id {earlier}: the platform held {held}; sent again"
    to_send = [c for c in candidates if id(c) not in blocked]
    return _Plan(rows, to_send, notes)


def _same(value: float, change: Change) -> bool:
    return to_cents(value) == to_cents(change.new_value)


def execute_push(
    audit: PushAudit,
    rows: Sequence[PlanRow],
    *,
    mode: str,
    account: str,
    adapter: PushAdapter,
    secrets: Sequence[str] = (),
    blocked: Mapping[tuple[str, int], str] | None = None,
) -> list[PushResult]:
    """Push `rows` through an adapter, auditing every attempt; results in the rows' change order.

    Idempotent per partition: outside validate-only, a change already in force for the same partition, platform,
    object and mode (an earlier `applied` or `skipped_unchanged` row with the same value) is recorded
    `skipped_unchanged` and not sent; so is a change equal to the value in force; a change whose last attempt is
    `unknown` is read back first (see the module docstring). The changes of a campaign in `blocked` ((platform,
    campaign id) -> why, e.g. removed on the platform since it was reviewed) are recorded `not_sent`."""
    if mode not in MODES:
        raise ValueError(f"push mode {mode!r} is not one of {MODES}")
    if adapter.validation not in VALIDATION_STATUSES:
        raise ValueError(f"adapter validation status {adapter.validation!r} is not one of {VALIDATION_STATUSES}")
    validate_only = mode == "validate_only"
    push_id = uuid.uuid4().hex
    audit.secrets.update(secrets)
    expired = audit.expire_intended(account)
    if expired:
        log.warning("%s: audit rows %s were left 'intended' by a push that stopped; now 'unknown'", account, expired)
    changes = [c for row in rows for c in row.changes()]
    position = {id(c): i for i, c in enumerate(changes)}
    slots: list[int | None] = [None] * len(changes)  # audit ids in change order
    results: dict[int, PushResult] = {}

    def entry(change: Change, status: str, request: Any, response: str | None) -> dict[str, Any]:
        row = change.row
        return {
            "push_id": push_id,
            "data_partition": row.data_partition,
            "policy_version": row.policy_version,
            "platform": row.platform,
            "account": account,
            "campaign_id": row.campaign_id,
            "field": change.field,
            "target": change.target,
            "old_value": change.old_value,
            "new_value": change.new_value,
            "mode": mode,
            "status": status,
            "request_json": request,
            "response": response,
            "intended_at_utc": utc_now(),
            "finished_at_utc": utc_now() if status != "intended" else None,
        }

    def result(audit_id: int, change: Change, status: str, outcome: Outcome | None, text: str | None) -> PushResult:
        row = change.row
        return PushResult(
            audit_id,
            row.data_partition,
            row.platform,
            row.campaign_id,
            change.field,
            change.target,
            change.old_value,
            change.new_value,
            mode,
            status,
            redact(text, audit.secrets),
            outcome.request_id if outcome else None,
            outcome.operation_index if outcome else None,
        )

    def record(decided: list[tuple[Change, str, str]]) -> None:
        ids = audit.insert([entry(c, status, None, why) for c, status, why in decided])
        for audit_id, (change, status, why) in zip(ids, decided, strict=True):
            results[audit_id] = result(audit_id, change, status, None, why)
            slots[position[id(change)]] = audit_id

    blocked = blocked or {}
    held = [c for c in changes if (c.row.platform, c.row.campaign_id) in blocked]
    if held:
        record([(c, "not_sent", f"not sent: {blocked[(c.row.platform, c.row.campaign_id)]}") for c in held])
    plan = _decide(audit, [c for c in changes if (c.row.platform, c.row.campaign_id) not in blocked], adapter, mode)
    if plan.rows:
        record(plan.rows)
    batches = adapter.build(plan.to_send, validate_only) if plan.to_send else []
    silent = 0  # calls in a row that ended without any answer
    for number, batch in enumerate(batches):
        if silent >= MAX_SILENT_CALLS:
            why = f"not sent: the platform did not answer the last {silent} calls of this push; the next push sends it"
            record([(c, "not_sent", why) for b in batches[number:] for c in b.changes])
            break
        ids = audit.insert([entry(c, "intended", r, None) for c, r in zip(batch.changes, batch.requests, strict=True)])
        for audit_id, change in zip(ids, batch.changes, strict=True):
            slots[position[id(change)]] = audit_id
        outcomes, error = _call(adapter, batch, validate_only, account, audit.secrets)
        silent = silent + 1 if error else 0
        if error:
            outcomes = [Outcome.unknown(error) for _ in batch.changes]
        finished = []
        for audit_id, change, outcome in zip(ids, batch.changes, outcomes, strict=True):
            status = {"done": adapter.validation if validate_only else "applied"}.get(outcome.kind, outcome.kind)
            text = outcome.response
            if id(change) in plan.notes:
                text = f"{text} [{plan.notes[id(change)]}]"
            finished.append((audit_id, status, text, outcome.request_id, outcome.operation_index))
            results[audit_id] = result(audit_id, change, status, outcome, text)
        audit.finish(finished)
        log.info(
            "%s: %s call %d/%d for %d change(s): %s (request ids: %s)",
            account,
            mode,
            number + 1,
            len(batches),
            len(outcomes),
            ", ".join(f"{k} {sum(o.kind == k for o in outcomes)}" for k in OUTCOME_KINDS),
            ", ".join(sorted({o.request_id for o in outcomes if o.request_id})) or "none",
        )
    return [results[i] for i in slots if i is not None]


def _call(
    adapter: PushAdapter, batch: Batch, validate_only: bool, account: str, secrets: set[str]
) -> tuple[list[Outcome], str | None]:
    """(the adapter's outcomes for the batch, None), or ([], why) when the call raised: no answer at all, so the
    outcome is unknown. The process being stopped is not caught: the rows stay `intended` and the next push
    records them `unknown`."""
    try:
        outcomes = adapter.send(batch, validate_only)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:
        trace = redact("".join(traceback.format_exception(e)), secrets)
        log.error("%s: a push call ended without an answer; its changes are recorded 'unknown':\n%s", account, trace)
        return [], (
            f"no answer: {type(e).__name__}: {redact(str(e), secrets)}; the platform may or may not have applied "
            "it (the next push reads the value back before sending again)"
        )
    if len(outcomes) != len(batch.changes):
        error = f"the adapter returned {len(outcomes)} outcomes for {len(batch.changes)} changes"
        log.error("%s: %s", account, error)
        return [], error
    return outcomes, None
