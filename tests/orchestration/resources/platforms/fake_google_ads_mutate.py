"""A fake gRPC channel for unary Google Ads calls (the mutate services), under the real SDK and its interceptors.

It deserializes each request off the wire into the SDK's request type, records it with its metadata, and answers
with `answer(method, request) -> response message | bytes | FakeUnaryRpcError`: a serialized SDK response with a
`request-id` in its metadata (raw bytes go on the wire as they are), or a failed call as gRPC raises it (carrying a
`GoogleAdsFailure` in its trailing metadata when the API would). Each call's timeout is recorded."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from google.ads.googleads.v26.errors.types.errors import GoogleAdsFailure
from google.ads.googleads.v26.services.types.ad_group_service import MutateAdGroupsRequest
from google.ads.googleads.v26.services.types.campaign_budget_service import MutateCampaignBudgetsRequest
from google.ads.googleads.v26.services.types.campaign_criterion_service import MutateCampaignCriteriaRequest
from google.ads.googleads.v26.services.types.google_ads_service import SearchGoogleAdsRequest

from tests.orchestration.resources.fake_google_ads import FAILURE_KEY, FakeRpcError

MUTATE_BUDGETS = "/google.ads.googleads.v26.services.CampaignBudgetService/MutateCampaignBudgets"
MUTATE_AD_GROUPS = "/google.ads.googleads.v26.services.AdGroupService/MutateAdGroups"
MUTATE_CRITERIA = "/google.ads.googleads.v26.services.CampaignCriterionService/MutateCampaignCriteria"
SEARCH = "/google.ads.googleads.v26.services.GoogleAdsService/Search"
REQUEST_TYPES = {
    MUTATE_BUDGETS: MutateCampaignBudgetsRequest,
    MUTATE_AD_GROUPS: MutateAdGroupsRequest,
    MUTATE_CRITERIA: MutateCampaignCriteriaRequest,
    SEARCH: SearchGoogleAdsRequest,
}


class FakeUnaryRpcError(FakeRpcError, grpc.Future):
    """A failed unary call as grpc returns it to interceptors: an RpcError that is also the call and its future."""

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


def ads_error(code: grpc.StatusCode, failure: GoogleAdsFailure | None, request_id: str) -> FakeUnaryRpcError:
    trailing: tuple = (("request-id", request_id),)
    if failure is not None:
        trailing = ((FAILURE_KEY, GoogleAdsFailure.serialize(failure)), *trailing)
    return FakeUnaryRpcError(code, f"{code.name} from the fake server", trailing)


class _OkCall(grpc.Call):
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


@dataclass
class Sent:
    method: str
    request: Any  # the SDK request type, as deserialized from the wire
    metadata: dict
    timeout: float | None = None


@dataclass
class FakeMutateChannel(grpc.Channel):
    answer: Callable[[str, Any], Any]
    sent: list[Sent] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)

    def unary_unary(self, method, request_serializer=None, response_deserializer=None, _registered_method=False):
        channel = self

        class Callable_:
            def with_call(self, request, timeout=None, metadata=None, credentials=None, **kwargs):
                wire = REQUEST_TYPES[method].deserialize(request_serializer(request))
                channel.sent.append(Sent(method, wire, dict(metadata or ()), timeout))
                answer = channel.answer(method, wire)
                if isinstance(answer, grpc.RpcError):
                    raise answer
                request_id = f"req-{len(channel.sent)}"
                channel.request_ids.append(request_id)
                raw = answer if isinstance(answer, bytes) else type(answer).serialize(answer)
                return response_deserializer(raw), _OkCall(request_id)

            def __call__(self, request, **kwargs):
                return self.with_call(request, **kwargs)[0]

        return Callable_()

    def unary_stream(self, method, *args, **kwargs):
        return lambda *a, **k: pytest.fail(f"unexpected stream call {method}")

    def stream_unary(self, method, *args, **kwargs):
        return lambda *a, **k: pytest.fail(f"unexpected stream call {method}")

    def stream_stream(self, method, *args, **kwargs):
        return lambda *a, **k: pytest.fail(f"unexpected stream call {method}")

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
