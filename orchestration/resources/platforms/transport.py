"""One policy for how a platform call ended, shared by every push adapter (REST, SOAP and gRPC alike).

A call ends in one of three ways, and the audit records which (`rl.bidding.push.Outcome`):
  * done — the platform answered with a well-formed success;
  * refused — the platform answered that it did not do it: a client error (HTTP 4xx, gRPC INVALID_ARGUMENT,
    PERMISSION_DENIED, UNAUTHENTICATED..., a SOAP fault naming the operation's errors), or a rate limit that outlasted
    the retries. Nothing was applied;
  * unknown — the request left and no usable answer came back: a timeout, a connection lost after sending, a
    server error (HTTP 5xx, gRPC UNAVAILABLE / DEADLINE_EXCEEDED / INTERNAL, a SOAP internal error), a success
    status with a body that is not the API's (an HTML error page from a proxy, malformed JSON, an empty reply). The
    platform may or may not have applied it; the next push reads the value back before sending again.

Retries inside one call are for the answers that mean "not processed, come back later": a rate limit (HTTP 429,
the platforms' rate-limit codes, gRPC RESOURCE_EXHAUSTED) and HTTP 503 / gRPC UNAVAILABLE. Other server errors and
timeouts are not retried inside the call: retrying cannot make the audit truer, and a stalled server would multiply
the wait. Every call has a client-side timeout (`BidPlatform.timeout_seconds`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_TIMEOUT_SECONDS = 60.0
CONNECT_TIMEOUT_SECONDS = 10.0
BODY_SNIPPET = 200  # characters of an unexpected body kept in the audit


@dataclass
class PlatformFault(Exception):
    """A call that did not end in a well-formed success, classified: `kind` "refused" or "unknown" (see the module
    docstring); `retryable` when the answer asks to come back later; `errors` the platform's errors per operation."""

    kind: str
    text: str
    request_id: str | None = None
    retryable: bool = False
    errors: list[tuple[int | None, str]] = field(default_factory=list)  # per operation index (None: the call's)

    def __post_init__(self) -> None:
        if self.kind not in ("refused", "unknown"):
            raise ValueError(f"fault kind {self.kind!r} is not 'refused' or 'unknown'")
        super().__init__(self.text)

    def __str__(self) -> str:
        return self.text


def is_retryable(e: BaseException) -> bool:
    return isinstance(e, PlatformFault) and e.retryable


def http_fault(status: int, body: object, what: str, request_id: str | None = None) -> PlatformFault | None:
    """The fault an HTTP status means (None for 2xx): 429 is a rate limit (retried, then refused), 503 asks to come
    back later (retried, then unknown), other 4xx are refusals, anything else (5xx, 1xx, 3xx) is unknown."""
    if 200 <= status < 300:
        return None
    text = f"{what}: HTTP {status}: {snippet(body)}"
    if status == 429:
        return PlatformFault("refused", f"{text} (rate limited; not applied)", request_id, retryable=True)
    if status == 503:
        return PlatformFault("unknown", text, request_id, retryable=True)
    if 400 <= status < 500:
        return PlatformFault("refused", text, request_id)
    return PlatformFault("unknown", text, request_id)


def unreadable(what: str, status: int | None, body: object, request_id: str | None = None) -> PlatformFault:
    """A success status whose body is not the API's answer: the call's outcome is unknown."""
    where = f"HTTP {status}" if status is not None else "the reply"
    return PlatformFault("unknown", f"{what}: {where} with a body that is not the API's answer: {snippet(body)}")


def snippet(body: object) -> str:
    """The start of a body, on one line, for the audit."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    text = " ".join(str(body).split())
    return text if len(text) <= BODY_SNIPPET else text[:BODY_SNIPPET] + "..."


def http_timeouts(total: float) -> tuple[float, float]:
    """(connect, read) timeouts for an HTTP client, from one configured limit."""
    return min(CONNECT_TIMEOUT_SECONDS, total), total


def is_ambiguous(e: BaseException) -> bool:
    """A failed attempt that may have been processed (its outcome is unknown)."""
    return not isinstance(e, PlatformFault) or e.kind == "unknown"


def settled(fault: PlatformFault) -> PlatformFault:
    """The fault a call ended with, as the audit must see it: a refusal after an earlier attempt whose outcome was
    unknown (a retried 503, say) does not prove that nothing was applied, so the call's outcome is unknown."""
    earlier = getattr(fault, "earlier_unknown", None)
    if fault.kind != "refused" or earlier is None:
        return fault
    text = f"{fault.text}; but an earlier attempt ended without an answer ({earlier}), so the outcome is unknown"
    return PlatformFault("unknown", text, fault.request_id, errors=fault.errors)


class Attempts:
    """The `ambiguous` predicate of `with_backoff` that also remembers the last attempt whose outcome was unknown
    (`unknown`): a refusal in an answer that came after such an attempt does not prove nothing was applied."""

    def __init__(self, ambiguous=is_ambiguous):
        self.unknown: BaseException | None = None
        self._ambiguous = ambiguous

    def __call__(self, e: BaseException) -> bool:
        if self._ambiguous(e):
            self.unknown = e
            return True
        return False
