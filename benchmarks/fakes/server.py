"""What every fake platform server shares: the objects it holds, the faults it is told to answer with, and a log
of every call (what was asked, what was applied) to judge the audit against."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rl.bidding.plan import to_cents

# The faults of the matrix. `applies`: the server processes the request before the fault hits the answer
# (None: the schedule decides per call).
FAULTS = (
    "429",
    "500",
    "502_html",
    "504_html",
    "503",
    "read_timeout",
    "reset_after_send",
    "malformed_json",
    "auth",
    "partial_failure",
)
# Not a platform answer: the process running the push is stopped while the call is in flight (before or after the
# server applied it). The fakes raise KeyboardInterrupt, as a SIGINT would.
KILLED = "process_killed"
NEVER_APPLIED = {"429", "503", "auth"}  # answered before any processing
# processed; the answer is what got lost (a partial failure: processed, one operation refused)
ALWAYS_APPLIED = {"reset_after_send", "malformed_json", "partial_failure"}


@dataclass(frozen=True)
class Fault:
    """One injected fault: its kind (one of FAULTS) and whether the server applied the request first."""

    kind: str
    applies: bool = False

    def __post_init__(self) -> None:
        if self.kind not in (*FAULTS, KILLED):
            raise ValueError(f"fault {self.kind!r} is not one of {FAULTS} or {KILLED!r}")


def fault(kind: str, applies: bool | None = None) -> Fault:
    """A fault with its natural `applies` (500, 502, 504 and timeouts may go either way: default applied)."""
    if kind in NEVER_APPLIED:
        return Fault(kind, False)
    if kind in ALWAYS_APPLIED:
        return Fault(kind, True)
    return Fault(kind, True if applies is None else applies)


@dataclass
class Event:
    """One call as the server saw it: `op` is "update", "validate" or "read"; `writes` the (field, target, value)
    it asked for, `applied` those it applied, `refused` those it refused (invalid value, unknown object); `fault`
    what it answered instead of a plain answer."""

    call: int
    op: str
    writes: list[tuple[str, str, float]]
    applied: list[tuple[str, str, float]]
    fault: str | None
    refused: list[tuple[str, str, float]] = field(default_factory=list)


@dataclass
class FakeServer:
    """Objects keyed (field, target) -> value (account currency), the account each target belongs to, the fault
    schedule (`faults(call_number, op) -> Fault | None`) and the call log."""

    values: dict[tuple[str, str], float]
    owners: dict[str, str] = field(default_factory=dict)  # target -> account (default: the configured one)
    faults: Callable[[int, str], Fault | None] = lambda call, op: None
    log: list[Event] = field(default_factory=list)

    def next_fault(self, op: str) -> Fault | None:
        return self.faults(len(self.log), op)

    def record(self, op: str, writes, applied, fault: Fault | None, refused=()) -> Event:
        event = Event(len(self.log), op, list(writes), list(applied), fault.kind if fault else None, list(refused))
        self.log.append(event)
        return event

    def apply(self, writes: list[tuple[str, str, float]]) -> None:
        for field_, target, value in writes:
            self.values[(field_, target)] = value

    def holds(self, field_: str, target: str, value: float) -> bool:
        held = self.values.get((field_, target))
        return held is not None and to_cents(held) == to_cents(value)


def scheduled(plan: dict[int, Fault]) -> Callable[[int, str], Fault | None]:
    """A schedule from {call number: fault} (calls of any op counted from 0)."""
    return lambda call, op: plan.get(call)


def on_op(op: str, faults: list[Fault]) -> Callable[[int, str], Fault | None]:
    """A schedule answering the first calls of one op with `faults`, in order."""
    queue = list(faults)

    def pick(call: int, asked: str) -> Fault | None:
        if asked == op and queue:
            return queue.pop(0)
        return None

    return pick
