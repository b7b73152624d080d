"""Google Ads call outcomes: what a failed gRPC call or a partial failure means for each operation (refused or
unknown, `transport`'s policy), and the request ids the API returns in its metadata."""

from __future__ import annotations

from typing import Any

import grpc

from orchestration.resources.ads import _error_code, _field_path
from rl.bidding.push import Outcome

QUOTA_ERRORS = {"quota_error.RESOURCE_EXHAUSTED", "quota_error.RESOURCE_TEMPORARILY_EXHAUSTED"}
# gRPC codes that mean the request was refused as a whole (nothing applied); any other code leaves the outcome
# unknown (DEADLINE_EXCEEDED, UNAVAILABLE, INTERNAL, UNKNOWN, ABORTED, CANCELLED...).
REFUSED_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.ALREADY_EXISTS,
}


class RequestIds(grpc.UnaryUnaryClientInterceptor):
    """Keeps the request id of the last successful call. It is added in front of the SDK's own interceptors
    (`GoogleAdsClient.get_service(interceptors=...)`), so it sees the call through grpc's and the SDK's wrappers,
    and the SDK's wrapper answers `trailing_metadata()` with the initial metadata: the wrapped calls (`_call`,
    `_underlay_call`) are searched too, trailing metadata first."""

    def __init__(self):
        self.last: str | None = None

    def intercept_unary_unary(self, continuation, client_call_details, request):
        self.last = None
        outcome = continuation(client_call_details, request)
        self.last = request_id(outcome)
        return outcome


def request_id(call: Any, depth: int = 0) -> str | None:
    if call is None or depth > 6:
        return None
    for read in ("trailing_metadata", "initial_metadata"):
        try:
            metadata = getattr(call, read)() if hasattr(call, read) else ()
        except Exception:  # a wrapper without that metadata: look further in
            metadata = ()
        for key, value in metadata or ():
            if key == "request-id" and value:
                return value
    for attribute in ("_call", "_underlay_call"):
        found = request_id(getattr(call, attribute, None), depth + 1)
        if found:
            return found
    return None


def failure_errors(exc_or_failure: Any) -> list[tuple[int | None, str]]:
    """(operation index or None, "code: message (field: path)") for each error of a GoogleAdsFailure."""
    out = []
    for error in exc_or_failure.errors:
        index = None
        for element in error.location.field_path_elements:
            if element.field_name == "operations" and type(element).pb(element).HasField("index"):
                index = element.index
                break
        path = _field_path(error.location)
        out.append((index, f"{_error_code(error)}: {error.message}" + (f" (field: {path})" if path else "")))
    return out


def _grpc_code(e: BaseException) -> grpc.StatusCode | None:
    """The gRPC status code of a failed call, however the SDK wrapped it."""
    from google.ads.googleads.errors import GoogleAdsException  # deferred: a prod SDK, loaded on first use
    from google.api_core.exceptions import GoogleAPICallError  # deferred: a prod SDK, loaded on first use

    if isinstance(e, GoogleAdsException):
        return e.error.code() if isinstance(e.error, grpc.Call) else None
    if isinstance(e, GoogleAPICallError):
        return e.grpc_status_code
    if isinstance(e, grpc.RpcError) and isinstance(e, grpc.Call):
        return e.code()
    return None


def _is_quota_error(e: BaseException) -> bool:
    from google.ads.googleads.errors import GoogleAdsException  # deferred: a prod SDK, loaded on first use

    if isinstance(e, GoogleAdsException) and any(_error_code(err) in QUOTA_ERRORS for err in e.failure.errors):
        return True
    return _grpc_code(e) == grpc.StatusCode.RESOURCE_EXHAUSTED


def is_ambiguous(e: BaseException) -> bool:
    """A failed attempt that may have been processed: any code but the refusals (UNAVAILABLE, DEADLINE_EXCEEDED...)."""
    return _grpc_code(e) not in REFUSED_CODES


def is_retryable(e: BaseException) -> bool:
    """A quota error, or UNAVAILABLE ("come back later"): worth another attempt inside the call."""
    return _is_quota_error(e) or _grpc_code(e) == grpc.StatusCode.UNAVAILABLE


def for_operation(errors: list[tuple[int | None, str]], index: int) -> str | None:
    mine = [m for i, m in errors if i == index]
    return "; ".join(mine) if mine else None


def failed_call(e: BaseException, what: str, n: int) -> list[Outcome]:
    """One outcome per operation of a call that raised: refused (the request as a whole was refused, e.g.
    INVALID_ARGUMENT with a GoogleAdsFailure naming operations, a quota error after the retries, a refused OAuth
    refresh) or unknown (UNAVAILABLE after the retries, DEADLINE_EXCEEDED, INTERNAL, any other fault)."""
    from google.ads.googleads.errors import GoogleAdsException  # deferred: a prod SDK, loaded on first use
    from google.api_core.exceptions import GoogleAPICallError  # deferred: a prod SDK, loaded on first use
    from google.auth.exceptions import RefreshError  # deferred: a prod SDK, loaded on first use

    if isinstance(e, RefreshError):  # no request was sent
        text = f"{what}: the OAuth refresh token was refused ({e}); check the Google Ads OAuth credentials"
        return [Outcome.refused(text, None, i) for i in range(n)]
    code = _grpc_code(e)
    name = code.name if code is not None else type(e).__name__
    earlier = getattr(e, "earlier_unknown", None)  # a retried attempt that may have been applied
    refused = code in REFUSED_CODES and earlier is None
    if earlier is not None:
        name += f" after an earlier attempt without an answer ({type(earlier).__name__})"
    if isinstance(e, GoogleAdsException):
        errors = failure_errors(e.failure)
        summary = "; ".join(m for _, m in errors) or "no error details"
        kind = Outcome.refused if refused else Outcome.unknown
        verb = "refused" if refused else "failed on the server, outcome unknown"
        return [
            kind(f"{what} {verb} ({name}): {for_operation(errors, i) or summary}", e.request_id, i) for i in range(n)
        ]
    if isinstance(e, GoogleAPICallError | grpc.RpcError) and refused:
        detail = e.message if isinstance(e, GoogleAPICallError) else e.details()
        return [Outcome.refused(f"{what} refused: {name}: {detail}", None, i) for i in range(n)]
    text = f"{what}: no usable answer ({name}: {e}); the platform may or may not have applied it"
    return [Outcome.unknown(text, None, i) for i in range(n)]


def read_failure(e: BaseException, what: str) -> str:
    """A failed read call in one line (the platform's errors, never the request's credentials)."""
    from google.ads.googleads.errors import GoogleAdsException  # deferred: a prod SDK, loaded on first use
    from google.api_core.exceptions import GoogleAPICallError  # deferred: a prod SDK, loaded on first use
    from google.auth.exceptions import RefreshError  # deferred: a prod SDK, loaded on first use

    if isinstance(e, RefreshError):
        return f"{what}: the OAuth refresh token was refused ({e}); check the Google Ads OAuth credentials"
    code = _grpc_code(e)
    name = code.name if code is not None else type(e).__name__
    if isinstance(e, GoogleAdsException):
        errors = "; ".join(m for _, m in failure_errors(e.failure)) or "no error details"
        return f"{what} failed ({name}, request id {e.request_id}): {errors}"
    if isinstance(e, GoogleAPICallError):
        return f"{what} failed ({name}): {e.message}"
    if isinstance(e, grpc.RpcError) and isinstance(e, grpc.Call):
        return f"{what} failed ({name}): {e.details()}"
    return f"{what} failed: {type(e).__name__}: {e}"
