"""TikTok bid pushes with the official TikTok Business API SDK (PyPI `tiktok-business-api-sdk-official`, module
`business_api_client`, Marketing API v1.3).

Budget and bid cap live on the ad group: `/adgroup/update/` with `budget` and `bid_price` (account currency, not
minor units; rounded to the cent), one call per ad group. The SDK wraps `/adgroup/update/` but not
`/adgroup/budget/update/`; the former accepts both fields. The Marketing API has no validate-only mode, so a
validate-only push is a real read instead: `/adgroup/get/` for the ad groups, checking that each exists, that a
budget change meets a daily budget (`BUDGET_MODE_DAY` / `BUDGET_MODE_DYNAMIC_DAILY_BUDGET`) and that a bid
change meets a CPM-billed ad group with a custom bid (the plan's social bid is a CPM bid cap).

Because that read only shows that the ad group exists and holds that kind of setting — TikTok does not check the
values — a validate-only push that passes is audited `checked_exists`, not `validated_by_platform`.

TikTok answers HTTP 200 with a non-zero `code` for refusals; the SDK raises `TiktokSDKError` with the code and
request id only in its message, so they are read from the raw response it keeps (`ApiClient.last_response`).
Codes 40100 and 40132 (too many requests) are retried with exponential backoff, then refused; codes of 50000 and
above are TikTok's internal errors: the outcome is unknown. HTTP statuses outside 2xx, timeouts, lost connections and
bodies that are not TikTok's JSON follow `transport`'s policy (unknown unless a 4xx). Every call has the resource's
(connect, read) timeout.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import PrivateAttr

from orchestration.resources.platforms.base import BidPlatform
from orchestration.resources.platforms.transport import (
    PlatformFault,
    http_fault,
    http_timeouts,
    is_ambiguous,
    is_retryable,
    settled,
    snippet,
)
from rl.accounts import tiktok as discovery
from rl.accounts.model import DiscoveredAccount, DiscoveryError
from rl.bidding.plan import Change, PlanError, to_cents
from rl.bidding.push import Batch, Outcome, Reading, with_backoff

RATE_LIMIT_CODES = {40100, 40132}
INTERNAL_ERROR_CODES = 50000  # this code and above: TikTok failed internally, the request may have been processed
DAILY_BUDGET_MODES = {"BUDGET_MODE_DAY", "BUDGET_MODE_DYNAMIC_DAILY_BUDGET"}
GET_FIELDS = ["adgroup_id", "budget", "budget_mode", "bid_price", "bid_type", "billing_event", "operation_status"]


def _code_fault(code: Any, message: str, request_id: str | None, what: str) -> PlatformFault:
    """A non-zero TikTok `code`: a rate limit (retried, then refused), an internal error (unknown) or a refusal."""
    text = f"{what}: code {code}: {message}"
    if code in RATE_LIMIT_CODES:
        return PlatformFault("refused", f"{text} (rate limited; not applied)", request_id, retryable=True)
    if isinstance(code, int) and code >= INTERNAL_ERROR_CODES:
        return PlatformFault("unknown", f"{text} (TikTok internal error; outcome unknown)", request_id)
    return PlatformFault("refused", f"{text} (refused)", request_id)


class TikTokBidPlatform(BidPlatform):
    """A TikTok advertiser account whose ad groups' daily budgets and CPM bid caps are pushed. The access token
    (a long-lived Marketing API token) comes from the environment (`dg.EnvVar`) in production."""

    VALIDATION: ClassVar[str] = "checked_exists"

    advertiser_id: str
    access_token: str
    host: str = "https://business-api.tiktok.com"

    SECRET_FIELDS: ClassVar[frozenset[str]] = frozenset({"access_token"})

    _api_client: Any = PrivateAttr(default=None)

    def platforms(self) -> tuple[str, ...]:
        return ("tiktok",)

    def account(self) -> str:
        return f"tiktok:{self.advertiser_id}"

    def api_client(self) -> Any:
        """The SDK's `ApiClient` (its `rest_client.pool_manager` is the urllib3 transport)."""
        if self._api_client is None:
            from business_api_client.api_client import ApiClient  # deferred: a prod SDK, loaded on first use
            from business_api_client.configuration import Configuration  # deferred: a prod SDK, loaded on first use

            configuration = Configuration()
            configuration.host = self.host
            self._api_client = ApiClient(configuration)
        return self._api_client

    def teardown_after_execution(self, context: Any) -> None:
        """Drop the SDK client now: it starts a thread pool per client and stops it only in `__del__`, which fails
        with a traceback when it first runs at interpreter exit."""
        self._api_client = None

    def _check_target(self, change: Change) -> None:
        if not change.target.isdigit():
            raise PlanError(f"{change.describe()}: a TikTok ad group id is digits, got {change.target!r}")

    def _build(self, changes: list[Change], validate_only: bool) -> list[Batch]:
        from business_api_client.models import AdgroupUpdateBody  # deferred: a prod SDK, loaded on first use

        # The body is sent as a plain dict with only the fields being changed: the SDK's `AdgroupUpdateBody` model
        # serializes its non-None defaults (automated_keywords_enabled=False, exclude_age_under_eighteen=False),
        # which would silently reset those ad group settings on every bid push.
        by_ad_group: dict[str, list[Change]] = {}
        for change in changes:
            by_ad_group.setdefault(change.target, []).append(change)
        if validate_only:
            described = {"method": "GET", "path": "/open_api/v1.3/adgroup/get/", "adgroup_ids": list(by_ad_group)}
            return [Batch(list(changes), [described] * len(changes), payload=("get", list(by_ad_group)))]
        batches = []
        for ad_group_id, group in by_ad_group.items():
            values: dict[str, Any] = {}
            for change in group:
                values["budget" if change.field == "budget" else "bid_price"] = to_cents(change.new_value) / 100
            body = {"advertiser_id": str(self.advertiser_id), "adgroup_id": ad_group_id, **values}
            AdgroupUpdateBody(**body)  # the SDK's type checks; the model itself is not sent (see _build's note)
            described = {"method": "POST", "path": "/open_api/v1.3/adgroup/update/", "body": body}
            batches.append(Batch(group, [described] * len(group), payload=("update", body)))
        return batches

    def _call(self, what: str, call) -> dict:
        """Run one SDK call with backoff; the decoded answer of a well-formed success, else a `PlatformFault`."""
        from business_api_client.rest import ApiException  # deferred: a prod SDK, loaded on first use

        # deferred: a prod SDK, loaded on first use
        from business_api_client.tiktok_business.tiktok_exceptions import TiktokSDKError

        def once() -> dict:
            try:
                answer = call()
            except TiktokSDKError:  # HTTP 2xx with a non-zero code (or a body the SDK could not read a code from)
                body = getattr(self.api_client().last_response, "data", b"")
                raw = _json(body)
                if not isinstance(raw.get("code"), int):
                    text = f"{what}: an answer that is not TikTok's JSON: {snippet(body)}"
                    raise PlatformFault("unknown", text) from None
                raise _code_fault(raw["code"], str(raw.get("message")), raw.get("request_id"), what) from None
            except ApiException as e:  # HTTP status outside 2xx (or a request the client could not make)
                raw = _json(e.body)
                fault = http_fault(int(e.status or 0), e.body or e.reason, what, raw.get("request_id"))
                raise fault or PlatformFault("unknown", f"{what}: {e.reason}") from None
            except (TypeError, ValueError, AttributeError) as e:  # the SDK could not decode the body
                body = getattr(self.api_client().last_response, "data", b"")
                text = f"{what}: an answer that is not TikTok's JSON ({e}): {snippet(body)}"
                raise PlatformFault("unknown", text) from None
            if not isinstance(answer, dict):
                body = getattr(self.api_client().last_response, "data", b"")
                raise PlatformFault("unknown", f"{what}: an answer that is not TikTok's JSON: {snippet(body)}")
            return answer

        try:
            return with_backoff(
                once,
                retryable=is_retryable,
                ambiguous=is_ambiguous,
                attempts=self.retry_attempts,
                base_seconds=self.retry_base_seconds,
                what=what,
            )
        except PlatformFault as fault:
            raise settled(fault) from None

    def _get(self, ad_group_ids: list[str]) -> tuple[dict[str, dict], str | None]:
        """The ad groups as TikTok holds them (id -> fields) and the request id: `/adgroup/get/`."""
        from business_api_client.api.adgroup_api import AdgroupApi  # deferred: a prod SDK, loaded on first use

        what = f"TikTok adgroup/get for advertiser {self.advertiser_id}"
        answer = self._call(
            what,
            lambda: AdgroupApi(self.api_client()).adgroup_get(
                str(self.advertiser_id),
                self.access_token,
                filtering=json.dumps({"adgroup_ids": ad_group_ids}),
                fields=list(GET_FIELDS),  # a list: the SDK sends it as one JSON array (a string: one per character)
                page_size=max(10, len(ad_group_ids)),
                _request_timeout=http_timeouts(self.timeout_seconds),
            ),
        )
        found = {str(a.get("adgroup_id")): a for a in (_data(answer).get("list") or [])}
        return found, answer.get("request_id")

    def discover(self, platform: str) -> DiscoveredAccount:
        """The advertiser's campaigns and ad groups (`rl.accounts.tiktok`): the SDK's `/campaign/get/` and
        `/adgroup/get/`, page by page, with this resource's policy."""
        from business_api_client.api.adgroup_api import AdgroupApi  # deferred: a prod SDK, loaded on first use

        # deferred: a prod SDK, loaded on first use
        from business_api_client.api.campaign_creation_api import CampaignCreationApi

        self._check_platform(platform)

        def get(kind: str, fields: tuple[str, ...], page: int, page_size: int) -> dict:
            client = self.api_client()
            method = AdgroupApi(client).adgroup_get if kind == "adgroup" else CampaignCreationApi(client).campaign_get
            what = f"TikTok {kind}/get for advertiser {self.advertiser_id} (page {page})"
            try:
                return self._call(
                    what,
                    lambda: method(
                        str(self.advertiser_id),
                        self.access_token,
                        fields=list(fields),  # a list: the SDK sends one JSON array
                        page=page,
                        page_size=page_size,
                        _request_timeout=http_timeouts(self.timeout_seconds),
                    ),
                )
            except PlatformFault as fault:
                raise DiscoveryError(str(fault)) from None

        return discovery.discover(get, str(self.advertiser_id))

    def _read(self, changes: list[Change]) -> list[Reading]:
        try:
            found, _ = self._get(list(dict.fromkeys(c.target for c in changes)))
        except PlatformFault as fault:
            reading = Reading(None, problem=str(fault)) if fault.kind == "refused" else Reading(None, error=str(fault))
            return [reading for _ in changes]
        out = []
        for change in changes:
            ad_group = found.get(change.target)
            if ad_group is None:
                out.append(
                    Reading(None, problem=f"ad group {change.target} not found for advertiser {self.advertiser_id}")
                )
                continue
            value = ad_group.get("budget" if change.field == "budget" else "bid_price")
            out.append(Reading(float(value) if value is not None else None))
        return out

    def _send(self, batch: Batch, validate_only: bool) -> list[Outcome]:
        from business_api_client.api.adgroup_api import AdgroupApi  # deferred: a prod SDK, loaded on first use

        kind, payload = batch.payload
        if kind == "get":
            try:
                found, request_id = self._get(payload)
            except PlatformFault as fault:
                return [Outcome(fault.kind, fault.text, fault.request_id, 0) for _ in batch.changes]
            return [self._checked(change, found, request_id) for change in batch.changes]
        what = f"TikTok adgroup/update of ad group {payload['adgroup_id']} (advertiser {self.advertiser_id})"
        api = AdgroupApi(self.api_client())
        try:
            answer = self._call(
                what,
                lambda: api.adgroup_update(
                    self.access_token, body=payload, _request_timeout=http_timeouts(self.timeout_seconds)
                ),
            )
        except PlatformFault as fault:
            return [Outcome(fault.kind, fault.text, fault.request_id, 0) for _ in batch.changes]
        text = f"updated ad group {payload['adgroup_id']}: {_data(answer)}"
        return [Outcome.done(text, answer.get("request_id"), 0) for _ in batch.changes]

    @staticmethod
    def _checked(change: Change, found: dict[str, dict], request_id: str | None) -> Outcome:
        ad_group = found.get(change.target)
        index = list(found).index(change.target) if ad_group is not None else None
        if ad_group is None:
            return Outcome.refused(f"ad group {change.target} not found for this advertiser", request_id, None)
        if change.field == "budget" and ad_group.get("budget_mode") not in DAILY_BUDGET_MODES:
            text = f"ad group {change.target} has budget mode {ad_group.get('budget_mode')}, not a daily budget"
            return Outcome.refused(text, request_id, index)
        if change.field == "bid" and (
            ad_group.get("billing_event") != "CPM" or ad_group.get("bid_type") == "BID_TYPE_NO_BID"
        ):
            text = (
                f"ad group {change.target} bills {ad_group.get('billing_event')} with bid type "
                f"{ad_group.get('bid_type')}; the plan's bid is a CPM bid cap"
            )
            return Outcome.refused(text, request_id, index)
        current = ad_group.get("budget" if change.field == "budget" else "bid_price")
        text = f"exists; ad group {change.target} now has {change.field} {current} (the value is not checked by TikTok)"
        return Outcome.done(text, request_id, index)


def _json(raw: Any) -> dict:
    try:
        value = json.loads(raw.decode() if isinstance(raw, bytes) else raw or "{}")
    except (ValueError, AttributeError):
        return {}
    return value if isinstance(value, dict) else {}


def _data(answer: dict) -> dict:
    """The response's `data` as a plain dict (the SDK returns it as decoded JSON)."""
    data = answer.get("data")
    return data if isinstance(data, dict) else {}
