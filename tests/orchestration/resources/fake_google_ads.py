"""A fake gRPC channel under the real Google Ads SDK: it records the serialized request and metadata and answers
with serialized SDK response messages, or a gRPC error carrying a `GoogleAdsFailure` as the API does."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import grpc
import pytest
from google.ads.googleads.client import GoogleAdsClient
from google.ads.googleads.v26.services.types.google_ads_service import (
    SearchGoogleAdsStreamRequest,
    SearchGoogleAdsStreamResponse,
)
from google.auth.credentials import AnonymousCredentials

DEV_TOKEN = "dev-token-DO-NOT-LOG"
SEARCH_STREAM = "/google.ads.googleads.v26.services.GoogleAdsService/SearchStream"
FAILURE_KEY = "google.ads.googleads.v26.errors.googleadsfailure-bin"
START, END = dt.date(2025, 3, 1), dt.date(2025, 3, 2)


# -- a fake gRPC channel under the SDK ---------------------------------------------------------------------------
class FakeRpcError(grpc.RpcError, grpc.Call):
    """What grpc raises for a failed call: an error that is also the call (code, details, trailing metadata)."""

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

    def is_active(self):
        return False

    def time_remaining(self):
        return None

    def cancel(self):
        return False

    def add_callback(self, callback):
        return False


class FakeStreamCall(grpc.Call, grpc.Future):
    """A server-streaming call that yields pre-serialized responses, then finishes OK or with `error`."""

    def __init__(self, responses: list, error: FakeRpcError | None):
        self._responses, self._error, self._done, self._callbacks = iter(responses), error, False, []

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return next(self._responses)
        except StopIteration:
            self._finish()
            if self._error is not None:
                raise self._error from None
            raise

    def _finish(self):
        if not self._done:
            self._done = True
            for callback in self._callbacks:
                callback(self)

    def code(self):
        return self._error.code() if self._error else grpc.StatusCode.OK

    def details(self):
        return self._error.details() if self._error else ""

    def trailing_metadata(self):
        return self._error.trailing_metadata() if self._error else (("request-id", "req-ok"),)

    def initial_metadata(self):
        return ()

    def exception(self, timeout=None):
        return self._error if self._done else None

    def add_done_callback(self, fn):
        self._callbacks.append(fn)

    def is_active(self):
        return not self._done

    def time_remaining(self):
        return None

    def cancel(self):
        return False

    def cancelled(self):
        return False

    def running(self):
        return not self._done

    def done(self):
        return self._done

    def result(self, timeout=None):
        return None

    def traceback(self, timeout=None):
        return None

    def add_callback(self, callback):
        return False


@dataclass
class Recorded:
    method: str
    customer_id: str
    query: str
    metadata: dict


@dataclass
class FakeChannel(grpc.Channel):
    """Answers SearchStream with `answer(request) -> (responses, error)`; records every request off the wire."""

    answer: object
    requests: list[Recorded] = field(default_factory=list)

    def unary_stream(self, method, request_serializer=None, response_deserializer=None, _registered_method=False):
        def call(request, timeout=None, metadata=None, credentials=None, wait_for_ready=None, compression=None):
            sent = SearchGoogleAdsStreamRequest.deserialize(request_serializer(request))  # what went on the wire
            self.requests.append(Recorded(method, sent.customer_id, sent.query, dict(metadata or ())))
            responses, error = self.answer(sent)
            wire = [response_deserializer(SearchGoogleAdsStreamResponse.serialize(r)) for r in responses]
            return FakeStreamCall(wire, error)

        return call

    def unary_unary(self, method, *args, **kwargs):
        return lambda *a, **k: pytest.fail(f"unexpected unary call {method}")

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


def sdk_client() -> GoogleAdsClient:
    return GoogleAdsClient(
        credentials=AnonymousCredentials(),
        developer_token=DEV_TOKEN,
        login_customer_id="9998887777",
        version="v26",
        use_proto_plus=True,
    )
