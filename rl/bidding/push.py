"""How a plan is pushed, whatever the platform: decide which changes need a call, audit them before and after each
call, and hand back one `PushResult` per change.

An adapter supplies two things: `build(changes, validate_only) -> list[Batch]` (its SDK request objects, with a
JSON-able description of each change's part of the request for the audit) and `send(batch, validate_only) ->
list[Outcome]` (one outcome per change of the batch, in order). `send` returns a failed `Outcome` when the platform
definitively refused a change (an API error), and raises when the outcome is unknown (timeout, connection lost,
crash): then the batch's rows stay `intended` and `PushInterrupted` is raised.
"""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from rl.bidding.audit import MODES, PushAudit, redact, utc_now
from rl.bidding.plan import Change, PlanRow, to_cents

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Outcome:
    """The platform's answer for one change: accepted (`ok`) or refused, with the response or error text."""

    ok: bool
    response: str
    request_id: str | None = None
    operation_index: int | None = None


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
        return self.status != "failed"


class PushInterrupted(RuntimeError):
    """A platform call ended without a known outcome; the audit rows named in the message stay `intended`."""


def with_backoff(
    call: Callable[[], T],
    *,
    retryable: Callable[[BaseException], bool],
    attempts: int,
    base_seconds: float,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`call()`, retried with exponential backoff (base, 2*base, 4*base...) while it raises a `retryable` error,
    at most `attempts` times in all; the last error is raised as it is."""
    for attempt in range(max(1, attempts)):
        try:
            return call()
        except Exception as e:
            if attempt + 1 >= attempts or not retryable(e):
                raise
            delay = base_seconds * 2**attempt
            log.warning("%s: rate limited (attempt %d of %d), retrying in %.1fs", what, attempt + 1, attempts, delay)
            sleep(delay)
    raise AssertionError("unreachable")


def execute_push(
    audit: PushAudit,
    rows: Sequence[PlanRow],
    *,
    mode: str,
    account: str,
    build: Callable[[list[Change], bool], list[Batch]],
    send: Callable[[Batch, bool], list[Outcome]],
    secrets: Sequence[str] = (),
) -> list[PushResult]:
    """Push `rows` through an adapter's `build`/`send`, auditing every change; results in the rows' change order.

    Idempotent per partition: outside validate-only, a change whose value was already applied for the same
    partition, platform, object and mode is recorded `skipped_unchanged` and not sent; so is a change equal to the
    value in force."""
    if mode not in MODES:
        raise ValueError(f"push mode {mode!r} is not one of {MODES}")
    validate_only = mode == "validate_only"
    push_id = uuid.uuid4().hex
    audit.secrets.update(secrets)
    applied: dict[tuple[str, str], dict] = {}
    results: dict[int, PushResult] = {}
    changes = [c for row in rows for c in row.changes()]
    position = {id(c): i for i, c in enumerate(changes)}
    slots: list[int | None] = [None] * len(changes)  # audit ids in change order
    skipped, to_send = [], []
    for change in changes:
        row = change.row
        key = (row.data_partition, row.platform)
        if key not in applied and not validate_only:
            applied[key] = audit.applied(row.data_partition, row.platform, mode)
        done = applied.get(key, {}).get((row.campaign_id, change.field, change.target))
        if change.unchanged:
            skipped.append((change, f"unchanged: {change.new_value:.2f} is already in force"))
        elif done is not None and to_cents(done[0]) == to_cents(change.new_value):
            skipped.append(
                (change, f"already applied for partition {row.data_partition} (audit id {done[1]}); not sent again")
            )
        else:
            to_send.append(change)

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

    if skipped:
        ids = audit.insert([entry(c, "skipped_unchanged", None, why) for c, why in skipped])
        for audit_id, (change, why) in zip(ids, skipped, strict=True):
            results[audit_id] = result(audit_id, change, "skipped_unchanged", None, why)
            slots[position[id(change)]] = audit_id

    for batch in build(to_send, validate_only) if to_send else []:
        ids = audit.insert([entry(c, "intended", r, None) for c, r in zip(batch.changes, batch.requests, strict=True)])
        for audit_id, change in zip(ids, batch.changes, strict=True):
            slots[position[id(change)]] = audit_id
        try:
            outcomes = send(batch, validate_only)
        except (KeyboardInterrupt, SystemExit):  # the process is being stopped: the rows stay 'intended'
            raise
        except Exception as e:
            trace = redact("".join(traceback.format_exception(e)), audit.secrets)
            log.error("%s: push call interrupted, audit rows %s stay 'intended':\n%s", account, ids, trace)
            raise PushInterrupted(
                f"{account}: a {mode} push call for {len(batch.changes)} change(s) "
                f"({', '.join(c.describe() for c in batch.changes)}) ended without a known outcome "
                f"({type(e).__name__}: {redact(str(e), audit.secrets)}); audit rows {ids} stay 'intended'. "
                "Pushing the partition again is safe: values are absolute and applied changes are skipped."
            ) from None
        if len(outcomes) != len(batch.changes):
            raise PushInterrupted(
                f"{account}: the adapter returned {len(outcomes)} outcomes for {len(batch.changes)} changes; "
                f"audit rows {ids} stay 'intended'"
            )
        finished = []
        for audit_id, change, outcome in zip(ids, batch.changes, outcomes, strict=True):
            status = ("validated" if validate_only else "applied") if outcome.ok else "failed"
            finished.append((audit_id, status, outcome.response, outcome.request_id, outcome.operation_index))
            results[audit_id] = result(audit_id, change, status, outcome, outcome.response)
        audit.finish(finished)
        log.info(
            "%s: %s push of %d change(s): %d ok, %d failed (request ids: %s)",
            account,
            mode,
            len(outcomes),
            sum(o.ok for o in outcomes),
            sum(not o.ok for o in outcomes),
            ", ".join(sorted({o.request_id for o in outcomes if o.request_id})) or "none",
        )
    return [results[i] for i in slots if i is not None]
