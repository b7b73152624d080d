"""Google Ads bid pushes with the official SDK (API v26, gRPC): budgets with CampaignBudgetService, max CPC bids
with AdGroupService, each as one request object (`MutateCampaignBudgetsRequest`, `MutateAdGroupsRequest`) per
push with `validate_only` and `partial_failure=True`, so one refused operation does not block the others.

Partial-failure errors name their operation in the error's field path (`operations[i]...`), which maps them back to
plan rows. Quota errors (gRPC RESOURCE_EXHAUSTED, QuotaError.RESOURCE_[TEMPORARILY_]EXHAUSTED) are retried with
exponential backoff; after the last attempt they fail the call's changes.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import grpc
from pydantic import PrivateAttr

from orchestration.resources.ads import (
    _error_code,
    _field_path,
    customer_id_digits,
    google_ads_client,
)
from orchestration.resources.platforms.base import BidPlatform
from rl.bidding.plan import Change, PlanError, to_cents
from rl.bidding.push import Batch, Outcome, with_backoff

log = logging.getLogger(__name__)

MICROS_PER_CENT = 10_000
QUOTA_ERRORS = {"quota_error.RESOURCE_EXHAUSTED", "quota_error.RESOURCE_TEMPORARILY_EXHAUSTED"}
# gRPC codes that mean the request was refused as a whole (nothing applied); any other error leaves the outcome
# unknown (DEADLINE_EXCEEDED, UNAVAILABLE, INTERNAL...) and interrupts the push with its rows left 'intended'.
REFUSED_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNIMPLEMENTED,
}


def micros(value: float) -> int:
    """Currency -> micros, rounded to the cent (Google Ads wants amounts in multiples of the currency's unit)."""
    return to_cents(value) * MICROS_PER_CENT


class _RequestIds(grpc.UnaryUnaryClientInterceptor):
    """Keeps the request id of the last successful call. It is added in front of the SDK's own interceptors
    (`GoogleAdsClient.get_service(interceptors=...)`), so it sees the call through grpc's and the SDK's wrappers,
    and the SDK's wrapper answers `trailing_metadata()` with the initial metadata: the wrapped calls (`_call`,
    `_underlay_call`) are searched too, trailing metadata first."""

    def __init__(self):
        self.last: str | None = None

    def intercept_unary_unary(self, continuation, client_call_details, request):
        self.last = None
        outcome = continuation(client_call_details, request)
        self.last = _request_id(outcome)
        return outcome


def _request_id(call: Any, depth: int = 0) -> str | None:
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
        found = _request_id(getattr(call, attribute, None), depth + 1)
        if found:
            return found
    return None


def _failure_errors(exc_or_failure: Any) -> list[tuple[int | None, str]]:
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


def _is_quota_error(e: BaseException) -> bool:
    from google.ads.googleads.errors import GoogleAdsException
    from google.api_core.exceptions import ResourceExhausted

    if isinstance(e, ResourceExhausted):
        return True
    if isinstance(e, grpc.RpcError) and isinstance(e, grpc.Call):
        return e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    if isinstance(e, GoogleAdsException):
        return any(_error_code(err) in QUOTA_ERRORS for err in e.failure.errors)
    return False


class GoogleAdsBidPlatform(BidPlatform):
    """A Google Ads account (customer) that budgets and max CPC bids are pushed to. Credentials as for
    `GoogleAdsReportingResource` (`dg.EnvVar` in production); no token is fetched until the first call."""

    developer_token: str
    client_id: str
    client_secret: str
    refresh_token: str
    login_customer_id: str | None = None
    customer_id: str

    SECRET_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"developer_token", "client_id", "client_secret", "refresh_token"}
    )

    _ads_client: Any = PrivateAttr(default=None)
    _services: dict = PrivateAttr(default_factory=dict)
    _request_ids: Any = PrivateAttr(default_factory=_RequestIds)

    def platforms(self) -> tuple[str, ...]:
        return ("google_ads",)

    def _check_target(self, change: Change) -> None:
        _digits(change)

    def account(self) -> str:
        return f"google_ads:{customer_id_digits(self.customer_id)}"

    def with_client(self, client: Any) -> GoogleAdsBidPlatform:
        """Use an already built `GoogleAdsClient` (tests, notebooks) instead of building one from the credentials."""
        self._ads_client, self._services = client, {}
        return self

    def _client(self) -> Any:
        if self._ads_client is None:
            self._ads_client = google_ads_client(self)
        return self._ads_client

    def _service(self, name: str) -> Any:
        if name not in self._services:
            self._services[name] = self._client().get_service(name, interceptors=[self._request_ids])
        return self._services[name]

    # -- building the requests ----------------------------------------------------------------------------------
    def _build(self, changes: list[Change], validate_only: bool) -> list[Batch]:
        from google.ads.googleads.v26.resources.types.ad_group import AdGroup
        from google.ads.googleads.v26.resources.types.campaign_budget import CampaignBudget
        from google.ads.googleads.v26.services.types.ad_group_service import AdGroupOperation, MutateAdGroupsRequest
        from google.ads.googleads.v26.services.types.campaign_budget_service import (
            CampaignBudgetOperation,
            MutateCampaignBudgetsRequest,
        )
        from google.api_core import protobuf_helpers

        customer_id = customer_id_digits(self.customer_id)
        client = self._client()
        budgets = [c for c in changes if c.field == "budget"]
        bids = [c for c in changes if c.field == "bid"]
        batches = []
        if budgets:
            operations = []
            for change in budgets:
                path = self._service("CampaignBudgetService").campaign_budget_path(customer_id, _digits(change))
                budget = CampaignBudget(resource_name=path, amount_micros=micros(change.new_value))
                operation = CampaignBudgetOperation(update=budget)
                mask = protobuf_helpers.field_mask(CampaignBudget.pb(CampaignBudget(resource_name=path)), budget._pb)
                client.copy_from(operation.update_mask, mask)
                operations.append(operation)
            request = MutateCampaignBudgetsRequest(
                customer_id=customer_id, operations=operations, partial_failure=True, validate_only=validate_only
            )
            batches.append(self._batch("CampaignBudgetService.MutateCampaignBudgets", budgets, request))
        if bids:
            operations = []
            for change in bids:
                path = self._service("AdGroupService").ad_group_path(customer_id, _digits(change))
                ad_group = AdGroup(resource_name=path, cpc_bid_micros=micros(change.new_value))
                operation = AdGroupOperation(update=ad_group)
                mask = protobuf_helpers.field_mask(AdGroup.pb(AdGroup(resource_name=path)), ad_group._pb)
                client.copy_from(operation.update_mask, mask)
                operations.append(operation)
            request = MutateAdGroupsRequest(
                customer_id=customer_id, operations=operations, partial_failure=True, validate_only=validate_only
            )
            batches.append(self._batch("AdGroupService.MutateAdGroups", bids, request))
        return batches

    @staticmethod
    def _batch(method: str, changes: list[Change], request: Any) -> Batch:
        envelope = {
            "method": method,
            "customer_id": request.customer_id,
            "partial_failure": request.partial_failure,
            "validate_only": request.validate_only,
        }
        described = [
            {
                **envelope,
                "operation_index": i,
                "operation": type(op).to_dict(
                    op, use_integers_for_enums=False, always_print_fields_with_no_presence=False
                ),
            }
            for i, op in enumerate(request.operations)
        ]
        return Batch(changes, described, payload=(method, request))

    # -- sending -----------------------------------------------------------------------------------------------
    def _send(self, batch: Batch, validate_only: bool) -> list[Outcome]:
        from google.ads.googleads.errors import GoogleAdsException
        from google.api_core.exceptions import GoogleAPICallError
        from google.auth.exceptions import RefreshError

        method, request = batch.payload
        if method.startswith("CampaignBudgetService"):
            service = self._service("CampaignBudgetService")
            call = lambda: service.mutate_campaign_budgets(request=request)  # noqa: E731
        else:
            service = self._service("AdGroupService")
            call = lambda: service.mutate_ad_groups(request=request)  # noqa: E731
        n = len(batch.changes)
        what = f"Google Ads {method} for customer {request.customer_id}"
        try:
            response = with_backoff(
                call,
                retryable=_is_quota_error,
                attempts=self.retry_attempts,
                base_seconds=self.retry_base_seconds,
                what=what,
            )
        except GoogleAdsException as e:  # the whole request was refused: nothing applied
            errors = _failure_errors(e.failure)
            status = e.error.code().name if hasattr(e.error, "code") else "error"
            summary = "; ".join(m for _, m in errors) or "no error details"
            return [
                Outcome(False, f"{what} refused ({status}): {_for_operation(errors, i) or summary}", e.request_id, i)
                for i in range(n)
            ]
        except RefreshError as e:  # no request was sent
            text = f"{what}: the OAuth refresh token was refused ({e}); check the Google Ads OAuth credentials"
            return [Outcome(False, text, None, i) for i in range(n)]
        except GoogleAPICallError as e:
            code = getattr(e, "grpc_status_code", None)
            if code not in REFUSED_CODES:
                raise
            return [Outcome(False, f"{what} refused: {code.name}: {e.message}", None, i) for i in range(n)]
        return self._outcomes(response, n, validate_only, what)

    def _outcomes(self, response: Any, n: int, validate_only: bool, what: str) -> list[Outcome]:
        from google.ads.googleads.v26.errors.types.errors import GoogleAdsFailure

        request_id = self._request_ids.last
        errors: list[tuple[int | None, str]] = []
        status = response.partial_failure_error
        if status.code != 0:
            for detail in status.details:
                if detail.type_url.endswith("GoogleAdsFailure"):
                    errors.extend(_failure_errors(GoogleAdsFailure.deserialize(detail.value)))
            if not errors:
                errors.append((None, f"partial failure {status.code}: {status.message}"))
        unplaced = [m for i, m in errors if i is None or not 0 <= i < n]
        results = list(response.results)
        outcomes = []
        for i in range(n):
            failed = [m for j, m in errors if j == i] + unplaced
            if failed:
                outcomes.append(Outcome(False, f"{what}: " + "; ".join(failed), request_id, i))
            elif validate_only:
                outcomes.append(Outcome(True, "validated: no errors", request_id, i))
            else:
                name = results[i].resource_name if i < len(results) else ""
                outcomes.append(Outcome(True, f"updated {name}".strip(), request_id, i))
        return outcomes


def _for_operation(errors: list[tuple[int | None, str]], index: int) -> str | None:
    mine = [m for i, m in errors if i == index]
    return "; ".join(mine) if mine else None


def _digits(change: Change) -> str:
    target = change.target.rsplit("/", 1)[-1]
    if not target.isdigit():
        raise PlanError(f"{change.describe()}: Google Ads ids are digits (or a resource name), got {change.target!r}")
    return target
