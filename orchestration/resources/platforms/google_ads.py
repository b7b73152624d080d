"""Google Ads bid pushes with the official SDK (API v26, gRPC): budgets with CampaignBudgetService, max CPC bids
with AdGroupService, each as one request object (`MutateCampaignBudgetsRequest`, `MutateAdGroupsRequest`) per
push with `validate_only` and `partial_failure=True`, so one refused operation does not block the others. Device
and hour-block bid modifiers are campaign criteria (`MutateCampaignCriteriaRequest`, `google_ads_criteria`): the
campaign's criteria are read (GAQL `campaign_criterion`) before every such change is built.

Partial-failure errors name their operation in the error's field path (`operations[i]...`), which maps them back to
plan rows. Quota errors (gRPC RESOURCE_EXHAUSTED, QuotaError.RESOURCE_[TEMPORARILY_]EXHAUSTED) and UNAVAILABLE are
retried with exponential backoff; after the last attempt a quota error is a refusal and UNAVAILABLE an unknown
outcome, as are DEADLINE_EXCEEDED, INTERNAL and every other server-side code (`transport`'s policy). Every call has
the resource's timeout and no SDK retry of its own.

Targets are ids or resource names of the right kind in the configured customer (a budget is set on
`customers/<id>/campaignBudgets/<id>`, a bid on `customers/<id>/adGroups/<id>`); anything else is a `PlanError`
before any call. An update mask names the field explicitly, so a budget of 0 is sent as 0, not dropped as a default.
Current values are read with `GoogleAdsService.Search` (GAQL), to reconcile an unknown outcome; the account's structure
too (`discover`, `rl.accounts.google_ads`).
"""

from __future__ import annotations

import logging
import re
from typing import Any, ClassVar

from pydantic import PrivateAttr

from orchestration.resources.ads import customer_id_digits, google_ads_client
from orchestration.resources.platforms import google_ads_criteria as criteria
from orchestration.resources.platforms import modifiers
from orchestration.resources.platforms.base import BidPlatform
from orchestration.resources.platforms.google_ads_errors import (
    RequestIds,
    failed_call,
    failure_errors,
    is_ambiguous,
    is_retryable,
    read_failure,
)
from orchestration.resources.platforms.transport import Attempts
from rl.accounts import google_ads as discovery
from rl.accounts.model import DiscoveredAccount, DiscoveryError
from rl.bidding.plan import MODIFIER_FIELDS, Change, PlanError, parse_modifier_target, to_cents
from rl.bidding.push import Batch, Outcome, Reading, with_backoff

log = logging.getLogger(__name__)

MICROS_PER_CENT = 10_000
RESOURCE_KINDS = {"budget": "campaignBudgets", "bid": "adGroups"}
CRITERIA_METHOD = "CampaignCriterionService.MutateCampaignCriteria"
READ_QUERIES = {
    "budget": "SELECT campaign_budget.id, campaign_budget.amount_micros FROM campaign_budget "
    "WHERE campaign_budget.id IN ({ids})",
    "bid": "SELECT ad_group.id, ad_group.cpc_bid_micros FROM ad_group WHERE ad_group.id IN ({ids})",
}


def micros(value: float) -> int:
    """Currency -> micros, rounded to the cent (Google Ads wants amounts in multiples of the currency's unit)."""
    return to_cents(value) * MICROS_PER_CENT


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
    PUSHES_MODIFIERS: ClassVar[bool] = True

    _ads_client: Any = PrivateAttr(default=None)
    _services: dict = PrivateAttr(default_factory=dict)
    _request_ids: Any = PrivateAttr(default_factory=RequestIds)
    _criteria: dict = PrivateAttr(default_factory=dict)  # campaign id -> CampaignCriteria read by this push

    def platforms(self) -> tuple[str, ...]:
        return ("google_ads",)

    def _check_target(self, change: Change) -> None:
        if change.field in MODIFIER_FIELDS:
            criteria.check_modifier(change)
        else:
            _object_id(change, customer_id_digits(self.customer_id))

    def _must_read(self, change: Change) -> bool:
        """A modifier change is built from the campaign's criteria as they are now (which exist, the schedule)."""
        return change.field in MODIFIER_FIELDS

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
        # deferred: a prod SDK, loaded on first use
        from google.ads.googleads.v26.resources.types.ad_group import AdGroup

        # deferred: a prod SDK, loaded on first use
        from google.ads.googleads.v26.resources.types.campaign_budget import CampaignBudget

        # deferred: a prod SDK, loaded on first use
        from google.ads.googleads.v26.services.types.ad_group_service import AdGroupOperation, MutateAdGroupsRequest

        # deferred: a prod SDK, loaded on first use
        from google.ads.googleads.v26.services.types.campaign_budget_service import (
            CampaignBudgetOperation,
            MutateCampaignBudgetsRequest,
        )
        from google.protobuf.field_mask_pb2 import FieldMask  # deferred: a prod SDK, loaded on first use

        customer_id = customer_id_digits(self.customer_id)
        client = self._client()
        budgets = [c for c in changes if c.field == "budget"]
        bids = [c for c in changes if c.field == "bid"]
        batches = self._criteria_batches([c for c in changes if c.field in MODIFIER_FIELDS], validate_only)
        if budgets:
            operations = []
            for change in budgets:
                path = self._service("CampaignBudgetService").campaign_budget_path(
                    customer_id, _object_id(change, customer_id)
                )
                budget = CampaignBudget(resource_name=path, amount_micros=micros(change.new_value))
                operation = CampaignBudgetOperation(update=budget)
                # named, not derived from the message: a diff against the defaults would drop an amount of 0
                client.copy_from(operation.update_mask, FieldMask(paths=["amount_micros"]))
                operations.append(operation)
            request = MutateCampaignBudgetsRequest(
                customer_id=customer_id, operations=operations, partial_failure=True, validate_only=validate_only
            )
            batches.append(self._batch("CampaignBudgetService.MutateCampaignBudgets", budgets, request))
        if bids:
            operations = []
            for change in bids:
                path = self._service("AdGroupService").ad_group_path(customer_id, _object_id(change, customer_id))
                ad_group = AdGroup(resource_name=path, cpc_bid_micros=micros(change.new_value))
                operation = AdGroupOperation(update=ad_group)
                client.copy_from(operation.update_mask, FieldMask(paths=["cpc_bid_micros"]))
                operations.append(operation)
            request = MutateAdGroupsRequest(
                customer_id=customer_id, operations=operations, partial_failure=True, validate_only=validate_only
            )
            batches.append(self._batch("AdGroupService.MutateAdGroups", bids, request))
        return batches

    def _criteria_batches(self, changes: list[Change], validate_only: bool) -> list[Batch]:
        """The criteria updates of every campaign in one request (partial failure), then each campaign's new ad
        schedule in its own atomic request."""
        # deferred: a prod SDK, loaded on first use
        from google.ads.googleads.v26.services.types.campaign_criterion_service import MutateCampaignCriteriaRequest

        if not changes:
            return []
        customer_id = customer_id_digits(self.customer_id)
        service = self._service("CampaignCriterionService")
        updates, creations = criteria.operations(changes, self._criteria, self._client(), service, customer_id)
        batches = []
        for ops, atomic in [(updates, False)] + [(c, True) for c in creations]:
            if not ops.operations:
                continue
            request = MutateCampaignCriteriaRequest(
                customer_id=customer_id,
                operations=ops.operations,
                partial_failure=not atomic,
                validate_only=validate_only,
            )
            envelope, described = self._describe(CRITERIA_METHOD, request)
            requests = [
                {**envelope, "operation_indexes": group, "operations": [described[i] for i in group]}
                for group in ops.groups
            ]
            batches.append(Batch(ops.changes, requests, payload=(CRITERIA_METHOD, request, ops)))
        return batches

    @staticmethod
    def _describe(method: str, request: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """(the request's envelope, each operation as JSON-able dict) for the audit."""
        envelope = {
            "method": method,
            "customer_id": request.customer_id,
            "partial_failure": request.partial_failure,
            "validate_only": request.validate_only,
        }
        operations = [
            type(op).to_dict(op, use_integers_for_enums=False, always_print_fields_with_no_presence=False)
            for op in request.operations
        ]
        return envelope, operations

    @classmethod
    def _batch(cls, method: str, changes: list[Change], request: Any) -> Batch:
        envelope, operations = cls._describe(method, request)
        described = [{**envelope, "operation_index": i, "operation": op} for i, op in enumerate(operations)]
        return Batch(changes, described, payload=(method, request))

    # -- sending ------------------------------------------------------------------------------------------------
    def _send(self, batch: Batch, validate_only: bool) -> list[Outcome]:
        method, request, ops = (*batch.payload, None)[:3]
        options = {"timeout": self.timeout_seconds, "retry": None}  # one retry layer: ours
        if ops is not None:
            service = self._service("CampaignCriterionService")
            call = lambda: service.mutate_campaign_criteria(request=request, **options)  # noqa: E731
        elif method.startswith("CampaignBudgetService"):
            service = self._service("CampaignBudgetService")
            call = lambda: service.mutate_campaign_budgets(request=request, **options)  # noqa: E731
        else:
            service = self._service("AdGroupService")
            call = lambda: service.mutate_ad_groups(request=request, **options)  # noqa: E731
        n = len(request.operations)
        what = f"Google Ads {method} for customer {request.customer_id}" + (
            f" ({ops.note})" if ops and ops.note else ""
        )
        attempts = Attempts(is_ambiguous)
        try:
            response = with_backoff(
                call,
                retryable=is_retryable,
                ambiguous=attempts,
                attempts=self.retry_attempts,
                base_seconds=self.retry_base_seconds,
                what=what,
            )
        except Exception as e:
            outcomes = failed_call(e, what, n)
        else:
            outcomes = self._outcomes(response, n, validate_only, what, attempts.unknown)
        if ops is None:
            return outcomes
        return [
            modifiers.fold(change, group, outcomes, ops.labels, validate_only)
            for change, group in zip(ops.changes, ops.groups, strict=True)
        ]

    def discover(self, platform: str) -> DiscoveredAccount:
        """The customer's campaigns, budgets and ad groups: GAQL `GoogleAdsService.Search`, page by page, each page
        one call with this resource's timeout and backoff."""
        self._check_platform(platform)
        customer_id = customer_id_digits(self.customer_id)
        service = self._service("GoogleAdsService")

        def page(request: Any) -> Any:
            what = f"Google Ads discovery for customer {customer_id} ({request.query.split(' FROM ')[-1].split()[0]})"
            try:
                return with_backoff(
                    lambda: service.search(request=request, timeout=self.timeout_seconds, retry=None),
                    retryable=is_retryable,
                    attempts=self.retry_attempts,
                    base_seconds=self.retry_base_seconds,
                    what=what,
                )
            except Exception as e:
                raise DiscoveryError(read_failure(e, what)) from None

        return discovery.discover(page, customer_id)

    def _search(self, query: str, what: str) -> list[Any]:
        # deferred: a prod SDK, loaded on first use
        from google.ads.googleads.v26.services.types.google_ads_service import SearchGoogleAdsRequest

        service = self._service("GoogleAdsService")
        request = SearchGoogleAdsRequest(customer_id=customer_id_digits(self.customer_id), query=query)
        return with_backoff(
            lambda: list(service.search(request=request, timeout=self.timeout_seconds, retry=None)),
            retryable=is_retryable,
            attempts=self.retry_attempts,
            base_seconds=self.retry_base_seconds,
            what=what,
        )

    def _read_criteria(self, changes: list[Change]) -> list[Reading]:
        """The modifiers in force (and whether the campaign's schedule can take the plan's blocks), from one GAQL
        read of the campaigns' DEVICE and AD_SCHEDULE criteria, kept for building this push's requests."""
        campaigns = sorted({parse_modifier_target(c.target)[0] for c in changes})
        for campaign_id in campaigns:
            self._criteria.pop(campaign_id, None)
        what = f"Google Ads read of campaign criteria for customer {customer_id_digits(self.customer_id)}"
        rows = self._search(criteria.CRITERIA_QUERY.format(ids=", ".join(map(str, campaigns))), what)
        self._criteria.update(criteria.parse_rows(rows, campaigns))
        return [self._criteria[parse_modifier_target(c.target)[0]].reading(c) for c in changes]

    def _read(self, changes: list[Change]) -> list[Reading]:
        modifiers = [c for c in changes if c.field in MODIFIER_FIELDS]
        by_change = dict(zip(map(id, modifiers), self._read_criteria(modifiers) if modifiers else [], strict=True))
        everything, changes = changes, [c for c in changes if c.field not in MODIFIER_FIELDS]
        customer_id = customer_id_digits(self.customer_id)
        found: dict[tuple[str, str], float] = {}
        for field in ("budget", "bid"):
            ids = sorted({_object_id(c, customer_id) for c in changes if c.field == field})
            if not ids:
                continue
            what = f"Google Ads read of {field} objects for customer {customer_id}"
            for row in self._search(READ_QUERIES[field].format(ids=", ".join(ids)), what):
                if field == "budget":
                    found[(field, str(row.campaign_budget.id))] = row.campaign_budget.amount_micros / 1e6
                else:
                    found[(field, str(row.ad_group.id))] = row.ad_group.cpc_bid_micros / 1e6
        for change in changes:
            key = (change.field, _object_id(change, customer_id))
            kind = RESOURCE_KINDS[change.field]
            if key in found:
                by_change[id(change)] = Reading(found[key])
            else:
                by_change[id(change)] = Reading(None, problem=f"{kind} {key[1]} not found in customer {customer_id}")
        return [by_change[id(c)] for c in everything]

    def _outcomes(
        self, response: Any, n: int, validate_only: bool, what: str, earlier: BaseException | None = None
    ) -> list[Outcome]:
        # deferred: a prod SDK, loaded on first use
        from google.ads.googleads.v26.errors.types.errors import GoogleAdsFailure

        request_id = self._request_ids.last
        errors: list[tuple[int | None, str]] = []
        status = response.partial_failure_error
        if status.code != 0:
            for detail in status.details:
                if detail.type_url.endswith("GoogleAdsFailure"):
                    errors.extend(failure_errors(GoogleAdsFailure.deserialize(detail.value)))
            if not errors:
                errors.append((None, f"partial failure {status.code}: {status.message}"))
        unplaced = [m for i, m in errors if i is None or not 0 <= i < n]
        results = list(response.results)
        outcomes = []
        for i in range(n):
            failed = [m for j, m in errors if j == i] + unplaced
            if failed and earlier is not None:  # an earlier attempt may have applied what this answer refuses
                text = f"{what}: " + "; ".join(failed) + f"; but an earlier attempt ended without an answer ({earlier})"
                outcomes.append(Outcome.unknown(text, request_id, i))
            elif failed:
                outcomes.append(Outcome.refused(f"{what}: " + "; ".join(failed), request_id, i))
            elif validate_only:
                outcomes.append(Outcome.done("validated by Google Ads: no errors", request_id, i))
            elif i < len(results) and results[i].resource_name:
                outcomes.append(Outcome.done(f"updated {results[i].resource_name}", request_id, i))
            else:  # a success without the operation's result: not the API's answer to this request
                text = f"{what}: the response has no result for operation {i}; outcome unknown"
                outcomes.append(Outcome.unknown(text, request_id, i))
        return outcomes


def _object_id(change: Change, customer_id: str) -> str:
    """The object id of a change's target: digits, or a resource name of the kind the field is set on in the
    configured customer (a PlanError otherwise: a campaign given as an ad group is never re-keyed)."""
    target = change.target.strip()
    if target.isdigit():
        return target
    kind = RESOURCE_KINDS[change.field]
    match = re.fullmatch(r"customers/(\d+)/([A-Za-z]+)/(\d+)", target)
    if match is None:
        raise PlanError(
            f"{change.describe()}: a Google Ads {change.field} target is an id (digits) or a resource name "
            f"customers/<customer id>/{kind}/<id>, got {target!r}"
        )
    customer, found, object_id = match.groups()
    if found != kind:
        raise PlanError(
            f"{change.describe()}: {target!r} is a {found} resource, but a {change.field} is set on {kind} "
            f"(customers/{customer_id}/{kind}/<id>)"
        )
    if customer != customer_id:
        raise PlanError(
            f"{change.describe()}: {target!r} belongs to customer {customer}, not to the configured customer "
            f"{customer_id}"
        )
    return object_id
