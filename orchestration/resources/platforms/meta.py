"""Meta (Facebook/Instagram) bid pushes with the official Business SDK (`facebook-business`, Graph API v26.0).

Budgets and bid caps live on the ad set: `daily_budget` and `bid_amount`, both in the account currency's minor
unit (cents). Both changes of one ad set go in one update call; a validate-only push sends the same call with
`execution_options=["validate_only"]`, which Meta checks without applying. Before any update the ad set is read
(`GET /<ad set>?fields=account_id,daily_budget,bid_amount`): an ad set of another ad account is not sent to (an
update call carries no account, so Meta would apply it to any ad set the token can reach), and the read is what
reconciles an unknown outcome.

The SDK trusts any body without an `error` key (an HTML 502 page, a plain-text 429) as a success, so every answer's
HTTP status and body are checked here (`transport`'s policy): 429 and Meta's rate-limit codes (4, 17, 32, 613,
80000-80014) are retried and then refused, 503 and transient errors are retried and then unknown, other 5xx and
unreadable bodies are unknown, and only a JSON `{"success": true}` is applied. Calls have the resource's timeout.

The API object is built from the credentials without `FacebookAdsApi.init` (which sets a process-wide default
and installs a crash reporter that posts tracebacks to Meta).
"""

from __future__ import annotations

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
    unreadable,
)
from rl.accounts import meta as discovery
from rl.accounts.model import DiscoveredAccount, DiscoveryError
from rl.bidding.plan import Change, PlanError, to_cents
from rl.bidding.push import Batch, Outcome, Reading, with_backoff

RATE_LIMIT_CODES = {4, 17, 32, 613, *range(80000, 80015)}
# Meta's "unknown error" and "service temporarily unavailable": the request may have been processed
SERVER_ERROR_CODES = {1, 2}
READ_FIELDS = "account_id,daily_budget,bid_amount"


def _fault(e: Any, what: str) -> PlatformFault:
    """A `FacebookRequestError` classified: a rate limit is retried then refused; a server-side failure (HTTP 5xx,
    codes 1 and 2, transient errors) is unknown (retried when transient or 503); any other error is a refusal."""
    body = e.body()
    error = body.get("error", {}) if isinstance(body, dict) else {}
    request_id = _trace_id(e.http_headers(), body)
    status = e.http_status() or 0
    if not error:  # no Graph error object: the status and body are all there is
        return http_fault(status, body, what, request_id) or unreadable(what, status, body, request_id)
    code = e.api_error_code()
    parts = [f"code {code}", f"subcode {e.api_error_subcode()}" if e.api_error_subcode() else ""]
    user = error.get("error_user_msg") or error.get("error_user_title")
    detail = f"(HTTP {status}, {', '.join(p for p in parts if p)}): {e.api_error_message()}" + (
        f" — {user}" if user else ""
    )
    transient = bool(e.api_transient_error())
    if code in RATE_LIMIT_CODES:
        return PlatformFault("refused", f"{what} refused, rate limited {detail}", request_id, retryable=True)
    if status >= 500 or code in SERVER_ERROR_CODES or transient:
        text = f"{what} failed on Meta's side {detail}; the outcome is unknown"
        return PlatformFault("unknown", text, request_id, retryable=transient or status == 503)
    return PlatformFault("refused", f"{what} refused {detail}", request_id)


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
            from facebook_business.api import FacebookAdsApi  # deferred: a prod SDK, loaded on first use
            from facebook_business.session import FacebookSession  # deferred: a prod SDK, loaded on first use

            self._fb_session = FacebookSession(
                self.app_id, self.app_secret, self.access_token, timeout=http_timeouts(self.timeout_seconds)
            )
            self._fb_api = FacebookAdsApi(self._fb_session, api_version=self.api_version)
        return self._fb_api

    def http_session(self) -> Any:
        """The `requests.Session` the SDK sends through (to mount a transport adapter on, e.g. in tests)."""
        self._api()
        return self._fb_session.requests

    def _check_target(self, change: Change) -> None:
        if not change.target.isdigit():
            raise PlanError(f"{change.describe()}: a Meta ad set id is digits, got {change.target!r}")

    def _must_read(self, change: Change) -> bool:
        return True  # an update names no account: check the ad set's before every call

    def _account_digits(self) -> str:
        return str(self.ad_account_id).removeprefix("act_")

    def _call(self, method: str, node: str, params: dict, what: str) -> tuple[Any, dict]:
        """One Graph call with backoff; (response, JSON body) of a 2xx JSON answer, else a `PlatformFault`."""
        from facebook_business.exceptions import FacebookRequestError  # deferred: a prod SDK, loaded on first use

        def once() -> tuple[Any, dict]:
            try:
                response = self._api().call(method, (node,), params=params)
            except FacebookRequestError as e:
                raise _fault(e, what) from None
            status, body = response.status(), response.json()
            request_id = _trace_id(response.headers(), body)
            fault = http_fault(status, body, what, request_id)
            if fault is not None:
                raise fault
            if not isinstance(body, dict):
                raise unreadable(what, status, body, request_id)
            return response, body

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

    def discover(self, platform: str) -> DiscoveredAccount:
        """The ad account's campaigns and ad sets (`rl.accounts.meta`): Graph GETs with this resource's policy."""
        self._check_platform(platform)

        def get(path: str, params: dict) -> dict:
            try:
                return self._call("GET", path, params, f"Meta discovery GET {path}")[1]
            except PlatformFault as fault:
                raise DiscoveryError(str(fault)) from None

        return discovery.discover(get, self.account()[5:])

    def _read(self, changes: list[Change]) -> list[Reading]:
        bodies: dict[str, dict | Reading] = {}  # ad set -> its fields, or why it cannot be pushed to
        for ad_set_id in dict.fromkeys(c.target for c in changes):
            what = f"Meta read of ad set {ad_set_id} ({self.account()})"
            try:
                _, body = self._call("GET", ad_set_id, {"fields": READ_FIELDS}, what)
            except PlatformFault as fault:
                refused = fault.kind == "refused"
                bodies[ad_set_id] = Reading(None, problem=str(fault)) if refused else Reading(None, error=str(fault))
                continue
            owner = str(body.get("account_id", ""))
            if owner != self._account_digits():
                problem = f"ad set {ad_set_id} belongs to ad account act_{owner or '?'}, not {self.account()[5:]}"
                bodies[ad_set_id] = Reading(None, problem=problem)
            else:
                bodies[ad_set_id] = body
        out = []
        for change in changes:
            body = bodies[change.target]
            if isinstance(body, Reading):
                out.append(body)
                continue
            raw = body.get("daily_budget" if change.field == "budget" else "bid_amount")
            out.append(Reading(int(raw) / 100 if raw not in (None, "") else None))
        return out

    def _build(self, changes: list[Change], validate_only: bool) -> list[Batch]:
        from facebook_business.adobjects.adset import AdSet  # deferred: a prod SDK, loaded on first use

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
        ad_set_id, request = batch.payload
        what = f"Meta ad set {ad_set_id} ({self.account()})"
        try:
            response, body = self._call("POST", ad_set_id, request.get_params(), what)
        except PlatformFault as fault:
            return [Outcome(fault.kind, fault.text, fault.request_id, 0) for _ in batch.changes]
        request_id = _trace_id(response.headers(), body)
        if body.get("success") is not True:  # the one answer Meta gives to an update it made
            text = f"{what}: HTTP {response.status()} without success: {snippet(body)}; the outcome is unknown"
            return [Outcome.unknown(text, request_id, 0) for _ in batch.changes]
        text = ("validated by Meta" if validate_only else "updated") + f" ad set {ad_set_id}: {body}"
        return [Outcome.done(text, request_id, 0) for _ in batch.changes]
