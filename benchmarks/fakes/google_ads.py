"""A fake Google Ads API (v26) behind a gRPC channel: `MutateCampaignBudgets`, `MutateAdGroups` (validate-only and
partial failure as the API does them) and `GoogleAdsService.Search` over the budgets and ad groups it holds.

Requests are deserialized off the wire into the SDK's types; answers are serialized SDK responses with a
`request-id`, or gRPC errors carrying a `GoogleAdsFailure` in their trailing metadata as the API sends them.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import grpc
from google.ads.googleads.client import GoogleAdsClient
from google.ads.googleads.v26.errors.types.authentication_error import AuthenticationErrorEnum
from google.ads.googleads.v26.errors.types.errors import ErrorCode, ErrorLocation, GoogleAdsError, GoogleAdsFailure
from google.ads.googleads.v26.errors.types.field_mask_error import FieldMaskErrorEnum
from google.ads.googleads.v26.errors.types.internal_error import InternalErrorEnum
from google.ads.googleads.v26.errors.types.quota_error import QuotaErrorEnum
from google.ads.googleads.v26.errors.types.range_error import RangeErrorEnum
from google.ads.googleads.v26.errors.types.resource_access_denied_error import ResourceAccessDeniedErrorEnum
from google.ads.googleads.v26.resources.types.ad_group import AdGroup
from google.ads.googleads.v26.resources.types.campaign_budget import CampaignBudget
from google.ads.googleads.v26.services.services.ad_group_service.transports.grpc import AdGroupServiceGrpcTransport
from google.ads.googleads.v26.services.services.campaign_budget_service.transports.grpc import (
    CampaignBudgetServiceGrpcTransport,
)
from google.ads.googleads.v26.services.services.google_ads_service.transports.grpc import (
    GoogleAdsServiceGrpcTransport,
)
from google.ads.googleads.v26.services.types.ad_group_service import (
    MutateAdGroupResult,
    MutateAdGroupsRequest,
    MutateAdGroupsResponse,
)
from google.ads.googleads.v26.services.types.campaign_budget_service import (
    MutateCampaignBudgetResult,
    MutateCampaignBudgetsRequest,
    MutateCampaignBudgetsResponse,
)
from google.ads.googleads.v26.services.types.google_ads_service import (
    GoogleAdsRow,
    SearchGoogleAdsRequest,
    SearchGoogleAdsResponse,
)
from google.auth.credentials import AnonymousCredentials
from google.protobuf import any_pb2
from google.rpc import status_pb2

from benchmarks.fakes.server import KILLED, FakeServer, Fault

PREFIX = "/google.ads.googleads.v26.services."
MUTATE_BUDGETS = PREFIX + "CampaignBudgetService/MutateCampaignBudgets"
MUTATE_AD_GROUPS = PREFIX + "AdGroupService/MutateAdGroups"
SEARCH = PREFIX + "GoogleAdsService/Search"
REQUESTS = {
    MUTATE_BUDGETS: MutateCampaignBudgetsRequest,
    MUTATE_AD_GROUPS: MutateAdGroupsRequest,
    SEARCH: SearchGoogleAdsRequest,
}
FAILURE_KEY = "google.ads.googleads.v26.errors.googleadsfailure-bin"
KINDS = {
    MUTATE_BUDGETS: ("budget", "campaignBudgets", "amount_micros"),
    MUTATE_AD_GROUPS: ("bid", "adGroups", "cpc_bid_micros"),
}
HTML_502 = "<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"


class RpcError(grpc.RpcError, grpc.Call, grpc.Future):
    """A failed unary call as grpc hands it to interceptors: the error, the call and its future at once."""

    def __init__(self, code: grpc.StatusCode, details: str, trailing: tuple = ()):
        self._code, self._details, self._trailing = code, details, trailing

    def code(self):
        return self._code

    def details(self):
        return self._details

    def trailing_metadata(self):
        return self._trailing

    def initial_metadata(self):
        return ()

    def exception(self, timeout=None):
        return self

    def result(self, timeout=None):
        raise self

    def traceback(self, timeout=None):
        return None

    def add_done_callback(self, fn):
        fn(self)

    def cancelled(self):
        return False

    def running(self):
        return False

    def done(self):
        return True

    def is_active(self):
        return False

    def time_remaining(self):
        return None

    def cancel(self):
        return False

    def add_callback(self, callback):
        return False


class OkCall(grpc.Call):
    def __init__(self, request_id: str):
        self._request_id = request_id

    def trailing_metadata(self):
        return (("request-id", self._request_id),)

    def initial_metadata(self):
        return ()

    def code(self):
        return grpc.StatusCode.OK

    def details(self):
        return ""

    def is_active(self):
        return False

    def time_remaining(self):
        return None

    def cancel(self):
        return False

    def add_callback(self, callback):
        return False


def failure(errors: list[tuple[ErrorCode, str, int | None]]) -> GoogleAdsFailure:
    element = ErrorLocation.FieldPathElement
    return GoogleAdsFailure(
        errors=[
            GoogleAdsError(
                error_code=code,
                message=message,
                location=ErrorLocation(field_path_elements=[element(field_name="operations", index=index)])
                if index is not None
                else None,
            )
            for code, message, index in errors
        ]
    )


def ads_error(code: grpc.StatusCode, failure_: GoogleAdsFailure | None, request_id: str, details: str = "") -> RpcError:
    trailing: tuple = (("request-id", request_id),)
    if failure_ is not None:
        trailing = ((FAILURE_KEY, GoogleAdsFailure.serialize(failure_)), *trailing)
    return RpcError(code, details or f"{code.name} from the fake Google Ads server", trailing)


class FakeGoogleAdsServer(grpc.Channel):
    """The fake API for one customer. `server.values` holds (field, target) -> value, e.g. ("budget", "9001")."""

    def __init__(self, server: FakeServer, customer_id: str = "1234567890"):
        self.server, self.customer_id = server, customer_id
        self.timeouts: list[float | None] = []
        self.requests: list[tuple[str, Any]] = []

    # -- the API ---------------------------------------------------------------------------------------------------
    def _answer(self, method: str, request: Any, request_id: str) -> Any:
        if method == SEARCH:
            return self._search(request)
        field_, kind, attribute = KINDS[method]
        op = "validate" if request.validate_only else "update"
        server, fault = self.server, self.server.next_fault(op)
        if fault is not None and not fault.applies:
            server.record(op, self._writes(request, field_, kind, attribute)[0], [], fault)
            raise self._fault_error(fault, request_id)
        writes, errors = self._writes(request, field_, kind, attribute)
        if fault is not None and fault.kind == "partial_failure" and writes:
            errors.append((0, ErrorCode(range_error=RangeErrorEnum.RangeError.TOO_LOW), "Too low (injected)"))
        refused_ops = {i for i, _, _ in errors}
        ok = [w for i, w in enumerate(writes) if i not in refused_ops]
        if errors and not request.partial_failure:
            ok = []
        applied = [] if request.validate_only else ok
        server.apply(applied)
        refused = [w for i, w in enumerate(writes) if i in refused_ops or (errors and not request.partial_failure)]
        server.record(op, writes, applied, fault, refused)
        if errors and not request.partial_failure:
            raise ads_error(grpc.StatusCode.INVALID_ARGUMENT, failure([(c, m, i) for i, c, m in errors]), request_id)
        if fault is not None and fault.kind not in ("partial_failure", "malformed_json"):
            raise self._fault_error(fault, request_id)
        results = (
            [] if request.validate_only else [{"resource_name": op.update.resource_name} for op in request.operations]
        )
        for i in refused_ops:
            if i < len(results):
                results[i] = {}
        status = None
        if errors:
            detail = any_pb2.Any(
                type_url="type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
                value=GoogleAdsFailure.serialize(failure([(c, m, i) for i, c, m in errors])),
            )
            status = status_pb2.Status(code=3, message="partial failure", details=[detail])
        if method == MUTATE_BUDGETS:
            return MutateCampaignBudgetsResponse(
                results=[MutateCampaignBudgetResult(**r) for r in results], partial_failure_error=status
            )
        return MutateAdGroupsResponse(results=[MutateAdGroupResult(**r) for r in results], partial_failure_error=status)

    def _writes(self, request, field_, kind, attribute):
        """(the (field, target, value) each operation asks for, [(index, error code, message)] refused)."""
        writes, errors = [], []
        pattern = rf"customers/(\d+)/{kind}/(\d+)"
        for i, op in enumerate(request.operations):
            match = re.fullmatch(pattern, op.update.resource_name)
            value = getattr(op.update, attribute) / 1e6
            writes.append((field_, match.group(2) if match else op.update.resource_name, value))
            if (
                match is None
                or match.group(1) != self.customer_id
                or (field_, match.group(2)) not in self.server.values
            ):
                code = ErrorCode(
                    resource_access_denied_error=ResourceAccessDeniedErrorEnum.ResourceAccessDeniedError.WRITE_ACCESS_DENIED
                )
                errors.append((i, code, f"{op.update.resource_name} is not a {kind} of customer {self.customer_id}"))
            elif attribute not in op.update_mask.paths:
                code = ErrorCode(field_mask_error=FieldMaskErrorEnum.FieldMaskError.FIELD_MASK_MISSING)
                errors.append((i, code, f"the update mask does not name {attribute}"))
            elif getattr(op.update, attribute) % 10_000:
                code = ErrorCode(range_error=RangeErrorEnum.RangeError.TOO_LOW)
                errors.append((i, code, f"{attribute} is not a multiple of the currency's minimum unit"))
        return writes, errors

    def _search(self, request: SearchGoogleAdsRequest) -> SearchGoogleAdsResponse:
        fault = self.server.next_fault("read")
        if fault is not None:
            self.server.record("read", [], [], fault)
            raise self._fault_error(fault, "req-read")
        ids = re.findall(r"\d+", request.query.split(" IN ", 1)[1]) if " IN " in request.query else []
        rows = []
        for object_id in ids:
            if "FROM campaign_budget" in request.query and ("budget", object_id) in self.server.values:
                micros = round(self.server.values[("budget", object_id)] * 1e6)
                rows.append(GoogleAdsRow(campaign_budget=CampaignBudget(id=int(object_id), amount_micros=micros)))
            elif "FROM ad_group" in request.query and ("bid", object_id) in self.server.values:
                micros = round(self.server.values[("bid", object_id)] * 1e6)
                rows.append(GoogleAdsRow(ad_group=AdGroup(id=int(object_id), cpc_bid_micros=micros)))
        self.server.record("read", [], [], None)
        return SearchGoogleAdsResponse(results=rows)

    @staticmethod
    def _fault_error(fault: Fault, request_id: str) -> RpcError:
        kind = fault.kind
        if kind == KILLED:
            raise KeyboardInterrupt("the push process was stopped during the call")
        if kind == "429":
            quota = ErrorCode(quota_error=QuotaErrorEnum.QuotaError.RESOURCE_TEMPORARILY_EXHAUSTED)
            return ads_error(
                grpc.StatusCode.RESOURCE_EXHAUSTED, failure([(quota, "Too many requests", None)]), request_id
            )
        if kind == "500":
            internal = ErrorCode(internal_error=InternalErrorEnum.InternalError.INTERNAL_ERROR)
            return ads_error(grpc.StatusCode.INTERNAL, failure([(internal, "Internal error", None)]), request_id)
        if kind in ("502_html", "504_html"):
            status = kind[:3]
            return RpcError(grpc.StatusCode.UNAVAILABLE, f"Received http2 header with status: {status} {HTML_502}")
        if kind == "503":
            return RpcError(grpc.StatusCode.UNAVAILABLE, "The service is currently unavailable.")
        if kind == "read_timeout":
            return RpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
        if kind == "reset_after_send":
            return RpcError(grpc.StatusCode.UNAVAILABLE, "Connection reset by peer")
        if kind == "auth":
            auth = ErrorCode(authentication_error=AuthenticationErrorEnum.AuthenticationError.OAUTH_TOKEN_EXPIRED)
            return ads_error(
                grpc.StatusCode.UNAUTHENTICATED, failure([(auth, "OAuth token expired", None)]), request_id
            )
        raise AssertionError(f"no gRPC error for fault {kind}")  # malformed / partial: answered, not raised

    # -- grpc.Channel ----------------------------------------------------------------------------------------------
    def unary_unary(self, method, request_serializer=None, response_deserializer=None, _registered_method=False):
        channel = self

        class Callable_:
            def with_call(self, request, timeout=None, metadata=None, credentials=None, **kwargs):
                wire = REQUESTS[method].deserialize(request_serializer(request))
                channel.timeouts.append(timeout)
                channel.requests.append((method, wire))
                request_id = f"req-{len(channel.server.log) + 1}"
                answer = channel._answer(method, wire, request_id)
                if channel.server.log and channel.server.log[-1].fault == "malformed_json":
                    raw = b"\xff\xfe<html>not a protobuf</html>"
                else:
                    raw = type(answer).serialize(answer)
                return response_deserializer(raw), OkCall(request_id)

            def __call__(self, request, **kwargs):
                return self.with_call(request, **kwargs)[0]

        return Callable_()

    def unary_stream(self, method, *args, **kwargs):
        raise AssertionError(f"unexpected stream call {method}")

    def stream_unary(self, method, *args, **kwargs):
        raise AssertionError(f"unexpected stream call {method}")

    def stream_stream(self, method, *args, **kwargs):
        raise AssertionError(f"unexpected stream call {method}")

    def subscribe(self, callback, try_to_connect=False):
        pass

    def unsubscribe(self, callback):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


TRANSPORTS = (CampaignBudgetServiceGrpcTransport, AdGroupServiceGrpcTransport, GoogleAdsServiceGrpcTransport)


@contextlib.contextmanager
def serving(channel: FakeGoogleAdsServer) -> Iterator[None]:
    """Every Google Ads service client built inside the block talks to `channel` (the SDK's transports create
    their channel through `create_channel`)."""
    saved = {t: t.__dict__["create_channel"] for t in TRANSPORTS}
    try:
        for transport in TRANSPORTS:
            transport.create_channel = classmethod(lambda cls, *a, **k: channel)
        yield
    finally:
        for transport, original in saved.items():
            transport.create_channel = original


def sdk_client() -> GoogleAdsClient:
    """A client that fetches no token (anonymous credentials), as offline tests need."""
    return GoogleAdsClient(
        credentials=AnonymousCredentials(),
        developer_token="fake-dev-token",
        login_customer_id="9998887777",
        version="v26",
        use_proto_plus=True,
    )
