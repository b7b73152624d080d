"""Microsoft Advertising call outcomes: SOAP faults and partial errors read into (index, message) pairs, and what a
failed suds call means (`transport`'s policy: rate limits retried then refused, internal errors and HTTP error pages
unknown, other faults refusals)."""

from __future__ import annotations

from typing import Any

from orchestration.resources.platforms.transport import PlatformFault, http_fault, unreadable

RATE_LIMIT_ERRORS = {"CallRateExceeded", "117"}
INTERNAL_ERRORS = {"InternalError", "0"}  # Microsoft failed internally: the request may have been processed


def as_list(value: Any, name: str) -> list:
    """A suds array (`ArrayOfX` with a list under `name`, or '' / None when empty) as a Python list."""
    if value is None or isinstance(value, str):
        return []
    items = getattr(value, name, None)
    if items is None:
        return []
    return list(items) if isinstance(items, list) else [items]


def fault_errors(fault: Any) -> tuple[list[tuple[int | None, str]], str | None]:
    """(index or None, "ErrorCode (Code): Message") for each error of a SOAP fault, and its tracking id."""
    detail = getattr(getattr(fault, "fault", None), "detail", None)
    errors: list[tuple[int | None, str]] = []
    tracking = None
    for kind in ("ApiFaultDetail", "AdApiFaultDetail", "EditorialApiFaultDetail"):
        body = getattr(detail, kind, None)
        if body is None:
            continue
        tracking = getattr(body, "TrackingId", None) or tracking
        for error in as_list(getattr(body, "BatchErrors", None), "BatchError"):
            errors.append((int(error.Index), f"{error.ErrorCode} ({error.Code}): {error.Message}"))
        for name, item in (("OperationErrors", "OperationError"), ("Errors", "AdApiError")):
            for error in as_list(getattr(body, name, None), item):
                errors.append((None, f"{error.ErrorCode} ({error.Code}): {error.Message}"))
    if not errors:
        errors.append((None, str(getattr(getattr(fault, "fault", None), "faultstring", fault))))
    return errors, tracking


def _has_code(errors: list[tuple[int | None, str]], codes: set[str]) -> bool:
    return any(any(f"{code} (" in text or f"({code})" in text for code in codes) for _, text in errors)


def classify(e: BaseException, what: str) -> PlatformFault:
    """A failed suds call classified (`transport`'s policy); `errors` per index are kept for refusals."""
    from suds import WebFault  # deferred: a prod SDK, loaded on first use

    if isinstance(e, WebFault):
        errors, tracking = fault_errors(e)
        detailed = any("(" in text for _, text in errors)
        if _has_code(errors, RATE_LIMIT_ERRORS):
            fault = PlatformFault("refused", f"{what} refused (rate limited)", tracking, retryable=True)
        elif _has_code(errors, INTERNAL_ERRORS) or not detailed:
            text = "; ".join(t for _, t in errors)
            fault = PlatformFault("unknown", f"{what}: Microsoft failed internally ({text}); outcome unknown", tracking)
        else:
            fault = PlatformFault("refused", f"{what} refused", tracking)
        fault.errors = errors
        return fault
    status = e.args[0] if e.args and isinstance(e.args[0], tuple) and len(e.args[0]) == 2 else None
    if status is not None and isinstance(status[0], int):  # suds: an HTTP error without a SOAP fault
        return http_fault(status[0], status[1], what) or unreadable(what, status[0], status[1])
    return PlatformFault("unknown", f"{what}: no usable answer ({type(e).__name__}: {e}); outcome unknown")


def partial_errors(response: Any) -> dict[int, list[str]]:
    """index -> "ErrorCode (Code): Message" of a response's partial errors. suds unwraps a response with a single
    element (UpdateCampaigns: PartialErrors) into that element."""
    errors = response if hasattr(response, "BatchError") else getattr(response, "PartialErrors", None)
    partial: dict[int, list[str]] = {}
    for error in as_list(errors, "BatchError"):
        partial.setdefault(int(error.Index), []).append(f"{error.ErrorCode} ({error.Code}): {error.Message}")
    return partial


def number(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
