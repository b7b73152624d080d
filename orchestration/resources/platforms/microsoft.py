"""Microsoft Advertising bid pushes with the official SDK (`bingads`, Campaign Management API v13, SOAP via suds).

Budgets are campaign daily budgets (`UpdateCampaigns`, `Campaign.DailyBudget`), bids are ad group max CPCs
(`UpdateAdGroups`, `AdGroup.CpcBid.Amount`), both in the account currency. Update objects are created by the SDK's
factory with every element set to None first (as Microsoft's samples do) so that only the changed fields are sent.
Partial errors (`BatchError.Index`) are mapped back to the plan rows. The API has no validate-only mode: a
validate-only push reads the campaigns and ad groups (`GetCampaignsByIds`, `GetAdGroupsByIds`) and checks that
they exist and that a budget is the campaign's own (not a shared budget). `CallRateExceeded` faults are retried.

suds logs whole SOAP envelopes (with the developer and OAuth tokens in their headers) at DEBUG; a redacting
filter is attached to its loggers when the service client is built.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import PrivateAttr

from orchestration.resources.platforms.base import BidPlatform
from rl.bidding.audit import install_redacting_filter
from rl.bidding.plan import Change, PlanError, to_cents
from rl.bidding.push import Batch, Outcome, with_backoff

MAX_PER_CALL = 100
_WSDL_CACHE: Any = None
RATE_LIMIT_ERRORS = {"CallRateExceeded", "117"}


def _as_list(value: Any, name: str) -> list:
    """A suds array (`ArrayOfX` with a list under `name`, or '' / None when empty) as a Python list."""
    if value is None or isinstance(value, str):
        return []
    items = getattr(value, name, None)
    if items is None:
        return []
    return list(items) if isinstance(items, list) else [items]


def _fault_errors(fault: Any) -> tuple[list[tuple[int | None, str]], str | None]:
    """(index or None, "ErrorCode (Code): Message") for each error of a SOAP fault, and its tracking id."""
    detail = getattr(getattr(fault, "fault", None), "detail", None)
    errors: list[tuple[int | None, str]] = []
    tracking = None
    for kind in ("ApiFaultDetail", "AdApiFaultDetail", "EditorialApiFaultDetail"):
        body = getattr(detail, kind, None)
        if body is None:
            continue
        tracking = getattr(body, "TrackingId", None) or tracking
        for error in _as_list(getattr(body, "BatchErrors", None), "BatchError"):
            errors.append((int(error.Index), f"{error.ErrorCode} ({error.Code}): {error.Message}"))
        for name, item in (("OperationErrors", "OperationError"), ("Errors", "AdApiError")):
            for error in _as_list(getattr(body, name, None), item):
                errors.append((None, f"{error.ErrorCode} ({error.Code}): {error.Message}"))
    if not errors:
        errors.append((None, str(getattr(getattr(fault, "fault", None), "faultstring", fault))))
    return errors, tracking


def _is_rate_limited(e: BaseException) -> bool:
    from suds import WebFault

    if not isinstance(e, WebFault):
        return False
    errors, _ = _fault_errors(e)
    return any(any(code in text for code in RATE_LIMIT_ERRORS) for _, text in errors)


def _none_all(obj: Any) -> Any:
    """Set every element of a suds object to None (so an update sends only what is then set)."""
    for name, _ in obj:
        setattr(obj, name, None)
    return obj


class MicrosoftAdsBidPlatform(BidPlatform):
    """A Microsoft Advertising account whose campaign budgets and ad group max CPCs are pushed. OAuth with a
    refresh token (web flow when `client_secret` is set, else the desktop/mobile flow); the access token is
    fetched on the first call, not at construction."""

    developer_token: str
    client_id: str
    client_secret: str | None = None
    refresh_token: str
    customer_id: str
    account_id: str
    environment: str = "production"

    SECRET_FIELDS: ClassVar[frozenset[str]] = frozenset({"developer_token", "client_secret", "refresh_token"})

    _authorization_data: Any = PrivateAttr(default=None)
    _suds_options: dict = PrivateAttr(default_factory=dict)
    _client: Any = PrivateAttr(default=None)

    def platforms(self) -> tuple[str, ...]:
        return ("microsoft_ads",)

    def account(self) -> str:
        return f"microsoft_ads:{self.account_id}"

    def with_authorization(self, authorization_data: Any, **suds_options: Any) -> MicrosoftAdsBidPlatform:
        """Use ready `AuthorizationData` (and suds options such as `transport`) instead of the OAuth refresh."""
        self._authorization_data, self._suds_options, self._client = authorization_data, suds_options, None
        return self

    def _authorization(self) -> Any:
        if self._authorization_data is None:
            from bingads.authorization import (
                AuthorizationData,
                OAuthDesktopMobileAuthCodeGrant,
                OAuthWebAuthCodeGrant,
            )

            if self.client_secret:
                auth = OAuthWebAuthCodeGrant(self.client_id, self.client_secret, "", env=self.environment)
            else:
                auth = OAuthDesktopMobileAuthCodeGrant(self.client_id, env=self.environment)
            auth.request_oauth_tokens_by_refresh_token(self.refresh_token)
            self._authorization_data = AuthorizationData(
                account_id=int(self.account_id),
                customer_id=int(self.customer_id),
                developer_token=self.developer_token,
                authentication=auth,
            )
        return self._authorization_data

    def _secret_values(self) -> list[str]:
        """The configured secrets and the current OAuth access token (fetched here on first use)."""
        tokens = getattr(self._authorization().authentication, "oauth_tokens", None)
        current = [t for t in (getattr(tokens, "access_token", None), getattr(tokens, "refresh_token", None)) if t]
        return [*super()._secret_values(), *current]

    def _service(self) -> Any:
        if self._client is None:
            from bingads.service_client import ServiceClient
            from bingads.util import DictCache

            global _WSDL_CACHE
            _WSDL_CACHE = _WSDL_CACHE or DictCache()  # the parsed WSDL (~2 s to build), shared in the process
            self._client = ServiceClient(
                "CampaignManagementService",
                13,
                authorization_data=self._authorization(),
                environment=self.environment,
                **{"cache": _WSDL_CACHE, **self._suds_options},
            )
        return self._client

    def _check_target(self, change: Change) -> None:
        if not change.target.isdigit():
            raise PlanError(f"{change.describe()}: Microsoft Advertising ids are digits, got {change.target!r}")

    # -- building -----------------------------------------------------------------------------------------------
    def _build(self, changes: list[Change], validate_only: bool) -> list[Batch]:
        budgets = [c for c in changes if c.field == "budget"]
        by_campaign: dict[int, list[Change]] = {}
        for change in (c for c in changes if c.field == "bid"):
            by_campaign.setdefault(change.row.campaign_id, []).append(change)
        groups = [("campaigns", None, budgets[i : i + MAX_PER_CALL]) for i in range(0, len(budgets), MAX_PER_CALL)]
        for campaign_id, bids in by_campaign.items():
            groups += [
                ("ad_groups", campaign_id, bids[i : i + MAX_PER_CALL]) for i in range(0, len(bids), MAX_PER_CALL)
            ]
        return [self._batch(kind, campaign_id, group, validate_only) for kind, campaign_id, group in groups]

    def _batch(self, kind: str, campaign_id: int | None, group: list[Change], validate_only: bool) -> Batch:
        factory = self._service().factory
        ids = [int(c.target) for c in group]
        if validate_only:
            method = "GetCampaignsByIds" if kind == "campaigns" else "GetAdGroupsByIds"
            described = {"method": method, "account_id": self.account_id, "campaign_id": campaign_id, "ids": ids}
            return Batch(group, [{**described, "index": i} for i in range(len(group))], (method, campaign_id, ids))
        if kind == "campaigns":
            array = factory.create("ArrayOfCampaign")
            for change in group:
                campaign = _none_all(factory.create("Campaign"))
                campaign.Id, campaign.DailyBudget = int(change.target), to_cents(change.new_value) / 100
                array.Campaign.append(campaign)
            method = "UpdateCampaigns"
            items = [{"Id": c.Id, "DailyBudget": c.DailyBudget} for c in array.Campaign]
        else:
            array = factory.create("ArrayOfAdGroup")
            for change in group:
                ad_group = _none_all(factory.create("AdGroup"))
                bid = factory.create("Bid")
                bid.Amount = to_cents(change.new_value) / 100
                ad_group.Id, ad_group.CpcBid = int(change.target), bid
                array.AdGroup.append(ad_group)
            method = "UpdateAdGroups"
            items = [{"Id": a.Id, "CpcBid": {"Amount": a.CpcBid.Amount}} for a in array.AdGroup]
        envelope = {"method": method, "account_id": self.account_id, "campaign_id": campaign_id}
        described = [{**envelope, "index": i, "item": item} for i, item in enumerate(items)]
        return Batch(group, described, (method, campaign_id, array))

    # -- sending ------------------------------------------------------------------------------------------------
    def _send(self, batch: Batch, validate_only: bool) -> list[Outcome]:
        from suds import WebFault

        method, campaign_id, argument = batch.payload
        service = self._service()
        install_redacting_filter(["suds", "bingads"], self._secret_values())  # tokens may have been refreshed
        account_id = int(self.account_id)
        calls = {
            "UpdateCampaigns": lambda: service.UpdateCampaigns(AccountId=account_id, Campaigns=argument),
            "UpdateAdGroups": lambda: service.UpdateAdGroups(CampaignId=campaign_id, AdGroups=argument),
            "GetCampaignsByIds": lambda: service.GetCampaignsByIds(
                AccountId=account_id, CampaignIds={"long": argument}, CampaignType=["Search"]
            ),
            "GetAdGroupsByIds": lambda: service.GetAdGroupsByIds(CampaignId=campaign_id, AdGroupIds={"long": argument}),
        }
        what = f"Microsoft Advertising {method} ({self.account()})"
        n = len(batch.changes)
        try:
            response = with_backoff(
                calls[method],
                retryable=_is_rate_limited,
                attempts=self.retry_attempts,
                base_seconds=self.retry_base_seconds,
                what=what,
            )
        except WebFault as fault:  # refused as a whole: nothing of this call was applied
            errors, tracking = _fault_errors(fault)
            general = "; ".join(m for i, m in errors if i is None)
            return [
                Outcome(
                    False,
                    f"{what} refused: " + "; ".join([m for j, m in errors if j == i] + [general]).strip("; "),
                    tracking,
                    i,
                )
                for i in range(n)
            ]
        tracking = self._tracking_id(service)
        partial = {}
        # suds unwraps a response with a single element (UpdateCampaigns: PartialErrors) into that element
        errors = response if hasattr(response, "BatchError") else getattr(response, "PartialErrors", None)
        for error in _as_list(errors, "BatchError"):
            partial.setdefault(int(error.Index), []).append(f"{error.ErrorCode} ({error.Code}): {error.Message}")
        if method.startswith("Get"):
            name = "Campaign" if method == "GetCampaignsByIds" else "AdGroup"
            found = _as_list(getattr(response, f"{name}s", None), name)
            return [self._checked(batch.changes[i], found, partial.get(i), tracking, i) for i in range(n)]
        return [
            Outcome(False, f"{what}: " + "; ".join(partial[i]), tracking, i)
            if i in partial
            else Outcome(True, f"updated {method[6:-1].lower()} {batch.changes[i].target}", tracking, i)
            for i in range(n)
        ]

    @staticmethod
    def _checked(change: Change, found: list, errors: list[str] | None, tracking: str | None, i: int) -> Outcome:
        item = found[i] if i < len(found) else None
        if errors or item is None or getattr(item, "Id", None) is None:
            text = "; ".join(errors or []) or f"{change.target} not found in the account"
            return Outcome(False, f"{change.describe()}: {text}", tracking, i)
        if change.field == "budget" and getattr(item, "BudgetId", None):
            text = f"campaign {change.target} uses shared budget {item.BudgetId}; its daily budget cannot be set"
            return Outcome(False, text, tracking, i)
        return Outcome(True, f"valid; {change.target} exists", tracking, i)

    @staticmethod
    def _tracking_id(service: Any) -> str | None:
        try:
            tracking = service.get_response_header().get("TrackingId")
            return str(tracking) if tracking else None
        except Exception:  # no reply header parsed (nothing to report)
            return None
