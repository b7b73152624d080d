"""Meta (Facebook/Instagram) bid pushes with the official Business SDK (`facebook-business`, Graph API v26.0).

Budgets and bid caps live on the ad set: `daily_budget` and `bid_amount`, both in the account currency's minor
unit (cents). Both changes of one ad set go in one update call; a validate-only push sends the same call with
`execution_options=["validate_only"]`, which Meta checks without applying. Rate-limit errors (codes 4, 17, 32,
613, 80000-80014, or flagged transient) are retried with exponential backoff.

The API object is built from the credentials without `FacebookAdsApi.init` (which sets a process-wide default
and installs a crash reporter that posts tracebacks to Meta).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import PrivateAttr

from orchestration.resources.platforms.base import BidPlatform
from rl.bidding.plan import Change, PlanError, to_cents
from rl.bidding.push import Batch, Outcome, with_backoff

RATE_LIMIT_CODES = {4, 17, 32, 613, *range(80000, 80015)}


def _is_rate_limited(e: BaseException) -> bool:
    from facebook_business.exceptions import FacebookRequestError

    return isinstance(e, FacebookRequestError) and (
        e.api_error_code() in RATE_LIMIT_CODES or bool(e.api_transient_error())
    )


def _trace_id(headers: Any, body: Any = None) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("error"), dict) and body["error"].get("fbtrace_id"):
        return str(body["error"]["fbtrace_id"])
    headers = headers or {}
    for key in ("x-fb-trace-id", "x-fb-request-id"):
        for name, value in headers.items():
            if name.lower() == key and value:
                return str(value)
    return None


class MetaBidPlatform(BidPlatform):
    """A Meta ad account whose ad sets' daily budgets and bid caps are pushed. Secrets (`app_secret`,
    `access_token`) from the environment (`dg.EnvVar`) in production; the access token is a system user's."""

    app_id: str
    app_secret: str
    access_token: str
    ad_account_id: str
    api_version: str | None = None

    SECRET_FIELDS: ClassVar[frozenset[str]] = frozenset({"app_secret", "access_token"})

    _fb_api: Any = PrivateAttr(default=None)
    _fb_session: Any = PrivateAttr(default=None)

    def platforms(self) -> tuple[str, ...]:
        return ("meta",)

    def account(self) -> str:
        account = str(self.ad_account_id)
        return f"meta:{account if account.startswith('act_') else 'act_' + account}"

    def _api(self) -> Any:
        if self._fb_api is None:
            from facebook_business.api import FacebookAdsApi
            from facebook_business.session import FacebookSession

            self._fb_session = FacebookSession(self.app_id, self.app_secret, self.access_token)
            self._fb_api = FacebookAdsApi(self._fb_session, api_version=self.api_version)
        return self._fb_api

    def http_session(self) -> Any:
        """The `requests.Session` the SDK sends through (to mount a transport adapter on, e.g. in tests)."""
        self._api()
        return self._fb_session.requests

    def _check_target(self, change: Change) -> None:
        if not change.target.isdigit():
            raise PlanError(f"{change.describe()}: a Meta ad set id is digits, got {change.target!r}")

    def _build(self, changes: list[Change], validate_only: bool) -> list[Batch]:
        from facebook_business.adobjects.adset import AdSet

        by_ad_set: dict[str, list[Change]] = {}
        for change in changes:
            by_ad_set.setdefault(change.target, []).append(change)
        batches = []
        for ad_set_id, group in by_ad_set.items():
            params: dict[str, Any] = {}
            for change in group:
                params["daily_budget" if change.field == "budget" else "bid_amount"] = to_cents(change.new_value)
            if validate_only:
                params["execution_options"] = [AdSet.ExecutionOptions.validate_only]
            request = AdSet(ad_set_id, api=self._api()).api_update(params=params, pending=True)
            described = {"method": "POST", "node": ad_set_id, "params": request.get_params()}
            batches.append(Batch(group, [described] * len(group), payload=(ad_set_id, request)))
        return batches

    def _send(self, batch: Batch, validate_only: bool) -> list[Outcome]:
        from facebook_business.exceptions import FacebookRequestError

        ad_set_id, request = batch.payload
        what = f"Meta ad set {ad_set_id} ({self.account()})"
        try:
            response = with_backoff(
                lambda: self._api().call("POST", (ad_set_id,), params=request.get_params()),
                retryable=_is_rate_limited,
                attempts=self.retry_attempts,
                base_seconds=self.retry_base_seconds,
                what=what,
            )
        except FacebookRequestError as e:  # Meta refused the update: nothing of it was applied
            body = e.body()
            error = body.get("error", {}) if isinstance(body, dict) else {}
            parts = [f"code {e.api_error_code()}", f"subcode {e.api_error_subcode()}" if e.api_error_subcode() else ""]
            user = error.get("error_user_msg") or error.get("error_user_title")
            text = (
                f"{what} refused (HTTP {e.http_status()}, {', '.join(p for p in parts if p)}): "
                f"{e.api_error_message()}" + (f" — {user}" if user else "")
            )
            request_id = _trace_id(e.http_headers(), body)
            return [Outcome(False, text, request_id, 0) for _ in batch.changes]
        body = response.json()
        request_id = _trace_id(response.headers())
        text = ("validated" if validate_only else "updated") + f" ad set {ad_set_id}: {body}"
        return [Outcome(True, text, request_id, 0) for _ in batch.changes]
