"""Microsoft Advertising bid pushes with the official SDK (`bingads`, Campaign Management API v13, SOAP via suds).

Budgets are campaign daily budgets (`UpdateCampaigns`, `Campaign.DailyBudget`), bids are ad group max CPCs
(`UpdateAdGroups`, `AdGroup.CpcBid.Amount`), both in the account currency. Update objects are created by the SDK's
factory with every element set to None first (as Microsoft's samples do) so that only the changed fields are sent.
Partial errors (`BatchError.Index`) are mapped back to the plan rows. The API has no validate-only mode: a
validate-only push reads the campaigns and ad groups (`GetCampaignsByIds`, `GetAdGroupsByIds`) and checks that
they exist and that a budget is the campaign's own (not a shared budget) — the values are not checked, so such a
push is audited `checked_exists`.

Ad groups are addressed through their campaign: the Microsoft campaign id is the plan row's `budget_target` (the
platform's own id, which holds the daily budget), never GAELP's registry id. Every call carries the account
(`CustomerAccountId`), so Microsoft itself refuses objects of another account.

Outcomes follow `transport`'s policy: `CallRateExceeded` faults are retried, then refused; other faults naming
errors are refusals; an internal error (code 0), a fault without details, an HTTP error page (5xx, 503 retried
first), a timeout or a reply without the operation's response element is unknown. Calls have the resource's
timeout (suds' own default is 90 s).

suds logs whole SOAP envelopes (with the developer and OAuth tokens in their headers) at DEBUG; a redacting
filter is attached to its loggers when the service client is built.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from pydantic import PrivateAttr

from orchestration.resources.platforms import microsoft_criteria as criteria
from orchestration.resources.platforms.base import BidPlatform
from orchestration.resources.platforms.microsoft_criteria import none_all as _none_all
from orchestration.resources.platforms.microsoft_errors import as_list, classify, number, partial_errors
from orchestration.resources.platforms.transport import (
    Attempts,
    PlatformFault,
    is_ambiguous,
    is_retryable,
    settled,
)
from rl.accounts import microsoft as discovery
from rl.accounts.model import DiscoveredAccount, DiscoveryError
from rl.bidding.audit import install_redacting_filter
from rl.bidding.plan import MODIFIER_FIELDS, Change, PlanError, parse_modifier_target, to_cents
from rl.bidding.push import Batch, Outcome, Reading, with_backoff

MAX_PER_CALL = 100
_WSDL_CACHE: Any = None


def wsdl_cache() -> Any:
    """The parsed Campaign Management WSDL (~2 s to build), shared in the process."""
    from bingads.util import DictCache  # deferred: a prod SDK, loaded on first use

    global _WSDL_CACHE
    _WSDL_CACHE = _WSDL_CACHE or DictCache()
    return _WSDL_CACHE


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
    VALIDATION: ClassVar[str] = "checked_exists"
    PUSHES_MODIFIERS: ClassVar[bool] = True  # campaign DeviceCriterion / DayTimeCriterion (`microsoft_criteria`)

    _authorization_data: Any = PrivateAttr(default=None)
    _suds_options: dict = PrivateAttr(default_factory=dict)
    _client: Any = PrivateAttr(default=None)
    _criteria: dict = PrivateAttr(default_factory=dict)  # campaign id -> CampaignCriteria read by this push

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
            from bingads.authorization import (  # deferred: a prod SDK, loaded on first use
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
            from bingads.service_client import ServiceClient  # deferred: a prod SDK, loaded on first use

            self._client = ServiceClient(
                "CampaignManagementService",
                13,
                authorization_data=self._authorization(),
                environment=self.environment,
                **{"cache": wsdl_cache(), "timeout": math.ceil(self.timeout_seconds), **self._suds_options},
            )
        return self._client

    def _must_read(self, change: Change) -> bool:
        """A modifier change is built from the campaign's criteria as they are now (which exist, the schedule)."""
        return change.field in MODIFIER_FIELDS

    def _check_target(self, change: Change) -> None:
        if change.field in MODIFIER_FIELDS:
            return criteria.check_modifier(change)
        if not change.target.isdigit():
            raise PlanError(f"{change.describe()}: Microsoft Advertising ids are digits, got {change.target!r}")
        if change.field == "bid" and not str(change.row.budget_target or "").isdigit():
            raise PlanError(
                f"{change.describe()}: an ad group is updated through its Microsoft campaign, whose id is the row's "
                f"budget_target; got {change.row.budget_target!r} (GAELP's campaign id is not Microsoft's)"
            )

    # -- building -----------------------------------------------------------------------------------------------
    def _build(self, changes: list[Change], validate_only: bool) -> list[Batch]:
        modifiers = [c for c in changes if c.field in MODIFIER_FIELDS]
        batches = criteria.batches(self, modifiers, validate_only) if modifiers else []
        budgets = [c for c in changes if c.field == "budget"]
        by_campaign: dict[int, list[Change]] = {}
        for change in (c for c in changes if c.field == "bid"):
            by_campaign.setdefault(int(str(change.row.budget_target)), []).append(change)
        groups = [("campaigns", None, budgets[i : i + MAX_PER_CALL]) for i in range(0, len(budgets), MAX_PER_CALL)]
        for campaign_id, bids in by_campaign.items():
            groups += [
                ("ad_groups", campaign_id, bids[i : i + MAX_PER_CALL]) for i in range(0, len(bids), MAX_PER_CALL)
            ]
        return [self._batch(kind, campaign_id, group, validate_only) for kind, campaign_id, group in groups] + batches

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
    def _call(
        self, method: str, what: str, attempts: Attempts | None = None, empty: bool = False, **arguments: Any
    ) -> Any:
        """One SOAP call with backoff; the reply's response object, else a `PlatformFault`. `attempts` learns
        whether an attempt before the answer may have been processed; `empty`: a read whose reply suds returns as
        None (its only element is empty: nothing found) is an answer."""
        service = self._service()
        install_redacting_filter(["suds", "bingads"], self._secret_values())  # tokens may have been refreshed

        def once() -> Any:
            try:
                response = getattr(service, method)(**arguments)
            except Exception as e:
                raise classify(e, what) from None
            if response is None and not empty:  # 202/204 or an empty body: not the operation's response element
                raise PlatformFault("unknown", f"{what}: a reply without the {method} response; outcome unknown")
            return response

        try:
            return with_backoff(
                once,
                retryable=is_retryable,
                ambiguous=attempts or is_ambiguous,
                attempts=self.retry_attempts,
                base_seconds=self.retry_base_seconds,
                what=what,
            )
        except PlatformFault as fault:
            raise settled(fault) from None

    def _send(self, batch: Batch, validate_only: bool) -> list[Outcome]:
        if len(batch.payload) == 4:  # device / day-time criteria
            return criteria.send(self, batch, validate_only)
        method, campaign_id, argument = batch.payload
        account_id = int(self.account_id)
        arguments = {
            "UpdateCampaigns": {"AccountId": account_id, "Campaigns": argument},
            "UpdateAdGroups": {"CampaignId": campaign_id, "AdGroups": argument},
            "GetCampaignsByIds": {
                "AccountId": account_id,
                "CampaignIds": {"long": argument},
                "CampaignType": ["Search"],
            },
            "GetAdGroupsByIds": {"CampaignId": campaign_id, "AdGroupIds": {"long": argument}},
        }[method]
        what = f"Microsoft Advertising {method} ({self.account()})"
        n = len(batch.changes)
        attempts = Attempts()
        try:
            response = self._call(method, what, attempts, **arguments)
        except PlatformFault as fault:
            errors = fault.errors
            general = "; ".join(m for i, m in errors if i is None)
            return [
                Outcome(
                    fault.kind,
                    "; ".join([fault.text] + [m for j, m in errors if j == i] + ([general] if general else [])),
                    fault.request_id,
                    i,
                )
                for i in range(n)
            ]
        tracking = self._tracking_id(self._service())
        partial = partial_errors(response)
        if partial and attempts.unknown is not None and not method.startswith("Get"):
            # an earlier attempt may have applied what this answer refuses
            text = f"{what}: refused after an earlier attempt without an answer ({attempts.unknown}); outcome unknown"
            return [
                Outcome.unknown(text, tracking, i)
                if i in partial
                else Outcome.done(f"updated {method[6:-1].lower()} {batch.changes[i].target}", tracking, i)
                for i in range(n)
            ]
        if method.startswith("Get"):
            name = "Campaign" if method == "GetCampaignsByIds" else "AdGroup"
            found = as_list(getattr(response, f"{name}s", None), name)
            return [self._checked(batch.changes[i], found, partial.get(i), tracking, i) for i in range(n)]
        return [
            Outcome.refused(f"{what}: " + "; ".join(partial[i]), tracking, i)
            if i in partial
            else Outcome.done(f"updated {method[6:-1].lower()} {batch.changes[i].target}", tracking, i)
            for i in range(n)
        ]

    def discover(self, platform: str) -> DiscoveredAccount:
        """The account's campaigns and ad groups (`rl.accounts.microsoft`): `GetCampaignsByAccountId`, then
        `GetAdGroupsByCampaignId` per campaign, with this resource's policy."""
        self._check_platform(platform)

        def call(method: str, **arguments: Any) -> Any:
            try:
                return self._call(method, f"Microsoft Advertising {method} ({self.account()})", empty=True, **arguments)
            except PlatformFault as fault:
                raise DiscoveryError(str(fault)) from None

        return discovery.discover(call, str(self.account_id))

    def _read(self, changes: list[Change]) -> list[Reading]:
        account_id = int(self.account_id)
        readings: dict[tuple[str, str], Reading] = {}
        modifiers = [c for c in changes if c.field in MODIFIER_FIELDS]
        for campaign_id in dict.fromkeys(parse_modifier_target(c.target)[0] for c in modifiers):
            mine = [c for c in modifiers if parse_modifier_target(c.target)[0] == campaign_id]
            try:
                found = criteria.read(self, campaign_id)
            except PlatformFault as fault:
                kind = "problem" if fault.kind == "refused" else "error"
                readings.update({(c.field, c.target): Reading(None, **{kind: fault.text}) for c in mine})
                continue
            readings.update({(c.field, c.target): found.reading(c) for c in mine})
        groups: list[tuple[str, int | None, list[Change]]] = [
            ("budget", None, [c for c in changes if c.field == "budget"])
        ]
        by_campaign: dict[int, list[Change]] = {}
        for change in (c for c in changes if c.field == "bid"):
            by_campaign.setdefault(int(str(change.row.budget_target)), []).append(change)
        groups += [("bid", campaign_id, group) for campaign_id, group in by_campaign.items()]
        for field, campaign_id, group in groups:
            ids = list(dict.fromkeys(int(c.target) for c in group))
            if not ids:
                continue
            if field == "budget":
                method, arguments = "GetCampaignsByIds", {"AccountId": account_id, "CampaignIds": {"long": ids}}
                arguments["CampaignType"] = ["Search"]
            else:
                method, arguments = "GetAdGroupsByIds", {"CampaignId": campaign_id, "AdGroupIds": {"long": ids}}
            what = f"Microsoft Advertising {method} ({self.account()})"
            try:
                response = self._call(method, what, **arguments)
            except PlatformFault as fault:
                failed = (
                    Reading(None, problem=fault.text) if fault.kind == "refused" else Reading(None, error=fault.text)
                )
                readings.update({(field, str(i)): failed for i in ids})
                continue
            name = "Campaign" if field == "budget" else "AdGroup"
            found = as_list(getattr(response, f"{name}s", None), name)
            partial = partial_errors(response)
            for k, object_id in enumerate(ids):
                item = found[k] if k < len(found) else None
                if k in partial or item is None or getattr(item, "Id", None) is None:
                    text = "; ".join(partial.get(k, [])) or f"{name.lower()} {object_id} not found in the account"
                    readings[(field, str(object_id))] = Reading(None, problem=text)
                elif field == "budget":
                    readings[(field, str(object_id))] = Reading(number(getattr(item, "DailyBudget", None)))
                else:
                    bid = getattr(item, "CpcBid", None)
                    readings[(field, str(object_id))] = Reading(number(getattr(bid, "Amount", None)))
        return [readings[(c.field, c.target)] for c in changes]

    @staticmethod
    def _checked(change: Change, found: list, errors: list[str] | None, tracking: str | None, i: int) -> Outcome:
        item = found[i] if i < len(found) else None
        if errors or item is None or getattr(item, "Id", None) is None:
            text = "; ".join(errors or []) or f"{change.target} not found in the account"
            return Outcome.refused(f"{change.describe()}: {text}", tracking, i)
        if change.field == "budget" and getattr(item, "BudgetId", None):
            text = f"campaign {change.target} uses shared budget {item.BudgetId}; its daily budget cannot be set"
            return Outcome.refused(text, tracking, i)
        return Outcome.done(f"exists; {change.target} (the value is not checked by Microsoft)", tracking, i)

    @staticmethod
    def _tracking_id(service: Any) -> str | None:
        try:
            tracking = service.get_response_header().get("TrackingId")
            return str(tracking) if tracking else None
        except Exception:  # no reply header parsed (nothing to report)
            return None
