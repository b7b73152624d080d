"""Judging an audit against what a fake server did: is each row's status the truth about its attempt?

A push's rows are compared with the server's calls made during that push (its slice of the log):
  * applied — a call of the push applied that value to that object;
  * validated_by_platform — a validate-only call of the push carried it and the server found nothing wrong, and
    nothing was applied;
  * checked_exists — a read of the push answered (the object exists), and nothing was applied;
  * refused, not_sent — no call of the push applied anything to that object's field;
  * skipped_unchanged — no call of the push wrote that field, and the server held the value after the push;
  * unknown — anything (that is what it says); intended — wrong once the push has returned.
"""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks.fakes.server import Event, FakeServer
from rl.bidding.plan import to_cents


def _has(items: Sequence[tuple[str, str, float]], field_: str, target: str, value: float | None = None) -> bool:
    return any(f == field_ and t == target and (value is None or to_cents(v) == to_cents(value)) for f, t, v in items)


def wrong_rows(rows: Sequence[dict], events: Sequence[Event], server: FakeServer) -> list[str]:
    """Why each row of one push (audit rows as dicts) is not the truth, given the server calls made during it."""
    out = []
    for row in rows:
        status, field_, target, value = row["status"], row["field"], row["target"], row["new_value"]
        applied = any(_has(e.applied, field_, target) for e in events)
        ok = {
            "applied": any(_has(e.applied, field_, target, value) for e in events),
            "validated_by_platform": not applied
            and any(
                e.op == "validate"
                and e.fault in (None, "partial_failure")  # a partial failure validates the other operations
                and _has(e.writes, field_, target, value)
                and not _has(e.refused, field_, target)
                for e in events
            ),
            "checked_exists": not applied and any(e.op == "read" and e.fault is None for e in events),
            "refused": not applied,
            "not_sent": not applied,
            "skipped_unchanged": not any(_has(e.writes, field_, target) for e in events if e.op == "update")
            and (row["mode"] == "validate_only" or server.holds(field_, target, value)),
            "unknown": True,
            "intended": False,
        }.get(status, False)
        if not ok:
            out.append(f"audit row {row['audit_id']} ({row['platform']} {field_} of {target} -> {value}): {status}")
    return out
