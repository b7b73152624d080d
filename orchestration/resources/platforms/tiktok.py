"""TikTok bid pushes with the official TikTok Business API SDK (PyPI `tiktok-business-api-sdk-official`, module
`business_api_client`, Marketing API v1.3).

Budget and bid cap live on the ad group: `/adgroup/update/` with `budget` and `bid_price` (account currency, not
minor units; rounded to the cent), one call per ad group. The SDK wraps `/adgroup/update/` but not
`/adgroup/budget/update/`; the former accepts both fields. The Marketing API has no validate-only mode, so a
validate-only push is a real read instead: `/adgroup/get/` for the ad groups, checking that each exists, that a
budget change meets a daily budget (`BUDGET_MODE_DAY` / `BUDGET_MODE_DYNAMIC_DAILY_BUDGET`) and that a bid
change meets a CPM-billed ad group with a custom bid (the plan's social bid is a CPM bid cap).

TikTok answers HTTP 200 with a non-zero `code` for refusals; the SDK raises `TiktokSDKError` with the code and
request id only in its message, so they are read from the raw response it keeps (`ApiClient.last_response`).
Codes 40100 and 40132 (too many requests) are retried with exponential backoff.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import PrivateAttr

from orchestration.resources.platforms.base import BidPlatform
from rl.bidding.plan import Change, PlanError, to_cents
from rl.bidding.push import Batch, Outcome, with_backoff

RATE_LIMIT_CODES = {40100, 40132}
DAILY_BUDGET_MODES = {"BUDGET_MODE_DAY", "BUDGET_MODE_DYNAMIC_DAILY_BUDGET"}
GET_FIELDS = ["adgroup_id", "budget", "budget_mode", "bid_price", "bid_type", "billing_event", "operation_status"]


class TikTokApiError(RuntimeError):
    """TikTok answered with a non-zero code (the call was refused)."""

    def __init__(self, code: int | None, message: str, request_id: str | None):
        super().__init__(f"code {code}: {message}")
        self.code, self.message, self.request_id = code, message, request_id


def _is_rate_limited(e: BaseException) -> bool:
    return isinstance(e, TikTokApiError) and e.code in RATE_LIMIT_CODES


class TikTokBidPlatform(BidPlatform):
    """A TikTok advertiser account whose ad groups' daily budgets and CPM bid caps are pushed. The access token
    (a long-lived Marketing API token) comes from the environment (`dg.EnvVar`) in production."""

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
            from business_api_client.api_client import ApiClient
            from business_api_client.configuration import Configuration

            configuration = Configuration()
            configuration.host = self.host
            self._api_client = ApiClient(configuration)
        return self._api_client

    def _check_target(self, change: Change) -> None:
        if not change.target.isdigit():
            raise PlanError(f"{change.describe()}: a TikTok ad group id is digits, got {change.target!r}")

    def _build(self, changes: list[Change], validate_only: bool) -> list[Batch]:
        from business_api_client.models import AdgroupUpdateBody

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
        """Run one SDK call with backoff; a refusal becomes `TikTokApiError` with TikTok's code and request id."""
        from business_api_client.rest import ApiException
        from business_api_client.tiktok_business.tiktok_exceptions import TiktokSDKError

        def once() -> dict:
            try:
                return call()
            except TiktokSDKError:
                raw = _json(getattr(self.api_client().last_response, "data", b""))
                raise TikTokApiError(raw.get("code"), str(raw.get("message")), raw.get("request_id")) from None
            except ApiException as e:  # HTTP status outside 2xx: refused before any processing
                raw = _json(e.body)
                raise TikTokApiError(
                    raw.get("code"), f"HTTP {e.status} {e.reason}: {raw.get('message', e.body)}", raw.get("request_id")
                ) from None

        return with_backoff(
            once,
            retryable=_is_rate_limited,
            attempts=self.retry_attempts,
            base_seconds=self.retry_base_seconds,
            what=what,
        )

    def _send(self, batch: Batch, validate_only: bool) -> list[Outcome]:
        from business_api_client.api.adgroup_api import AdgroupApi

        api = AdgroupApi(self.api_client())
        kind, payload = batch.payload
        if kind == "get":
            what = f"TikTok adgroup/get for advertiser {self.advertiser_id}"
            call = lambda: api.adgroup_get(  # noqa: E731
                str(self.advertiser_id),
                self.access_token,
                filtering=json.dumps({"adgroup_ids": payload}),
                fields=json.dumps(GET_FIELDS),
                page_size=max(10, len(payload)),
            )
        else:
            what = f"TikTok adgroup/update of ad group {payload['adgroup_id']} (advertiser {self.advertiser_id})"
            call = lambda: api.adgroup_update(self.access_token, body=payload)  # noqa: E731
        try:
            answer = self._call(what, call)
        except TikTokApiError as e:
            return [Outcome(False, f"{what} refused: {e}", e.request_id, 0) for _ in batch.changes]
        request_id = answer.get("request_id")
        if kind == "update":
            text = f"updated ad group {payload['adgroup_id']}: {_data(answer)}"
            return [Outcome(True, text, request_id, 0) for _ in batch.changes]
        found = {str(a.get("adgroup_id")): a for a in (_data(answer).get("list") or [])}
        return [self._checked(change, found, request_id) for change in batch.changes]

    @staticmethod
    def _checked(change: Change, found: dict[str, dict], request_id: str | None) -> Outcome:
        ad_group = found.get(change.target)
        index = list(found).index(change.target) if ad_group is not None else None
        if ad_group is None:
            return Outcome(False, f"ad group {change.target} not found for this advertiser", request_id, None)
        if change.field == "budget" and ad_group.get("budget_mode") not in DAILY_BUDGET_MODES:
            text = f"ad group {change.target} has budget mode {ad_group.get('budget_mode')}, not a daily budget"
            return Outcome(False, text, request_id, index)
        if change.field == "bid" and (
            ad_group.get("billing_event") != "CPM" or ad_group.get("bid_type") == "BID_TYPE_NO_BID"
        ):
            text = (
                f"ad group {change.target} bills {ad_group.get('billing_event')} with bid type "
                f"{ad_group.get('bid_type')}; the plan's bid is a CPM bid cap"
            )
            return Outcome(False, text, request_id, index)
        current = ad_group.get("budget" if change.field == "budget" else "bid_price")
        return Outcome(True, f"valid; ad group {change.target} now has {change.field} {current}", request_id, index)


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
