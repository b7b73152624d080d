"""A fake GA4 Data API behind a gRPC channel (`BetaAnalyticsData/RunReport`): a property whose sessions report
(date × hour × channel group × source/medium × campaign × device) is a fixed function of the day, paged by
`limit`/`offset` as the API does, with faults injected per call.

`FakeGA4Resource` is the real `LiveGA4Resource` whose SDK client talks to a registered fake channel (a Dagster
resource is re-created per run, so the channel is found by name)."""

from __future__ import annotations

import datetime as dt
import hashlib

import grpc
from google.analytics.data_v1beta import BetaAnalyticsDataClient
from google.analytics.data_v1beta.services.beta_analytics_data.transports.grpc import BetaAnalyticsDataGrpcTransport
from google.analytics.data_v1beta.types import (
    DimensionHeader,
    DimensionValue,
    MetricHeader,
    MetricType,
    MetricValue,
    Row,
    RunReportRequest,
    RunReportResponse,
)
from google.auth.credentials import AnonymousCredentials

from benchmarks.fakes.google_ads import HTML_502, OkCall, RpcError
from orchestration.resources.ga4 import LiveGA4Resource

RUN_REPORT = "/google.analytics.data.v1beta.BetaAnalyticsData/RunReport"
CHANNELS: dict[str, FakeGA4Server] = {}
GROUPS = (("Paid Search", "google / cpc", "Search Brand"), ("Organic Search", "google / organic", "(organic)"))
DEVICES = ("mobile", "desktop")
# the push faults, plus faults in the data: a row dated after the range, an hour GA4 bucketed, a negative count
INGEST_FAULTS = (
    "429",
    "500",
    "502_html",
    "504_html",
    "503",
    "read_timeout",
    "reset_after_send",
    "malformed_json",
    "auth",
    "partial_failure",
    "stray_row",
    "bad_hour",
    "negative_sessions",
)


def day_rows(day: dt.date, hours: tuple[int, ...] = (0, 9, 20)) -> list[tuple[tuple[str, ...], tuple[int, int, int]]]:
    """The property's sessions rows of one day: (dimension values, (sessions, totalUsers, newUsers))."""
    rows = []
    for hour in hours:
        for group in GROUPS:
            for device in DEVICES:
                dims = (day.strftime("%Y%m%d"), f"{hour:02d}", *group, device)
                seed = int(hashlib.sha256("|".join(dims).encode()).hexdigest()[:6], 16)
                sessions = 5 + seed % 200
                rows.append((dims, (sessions, sessions - seed % 5, seed % 5)))
    return rows


class FakeGA4Server(grpc.Channel):
    """Answers RunReport for the sessions report from `day_rows`; `faults(call_number) -> fault kind | None` (the
    push faults of `benchmarks.fakes.server.FAULTS`, "partial_failure" being a report that changes while it is
    read, and "stray_row": a row dated the day after the range asked for)."""

    def __init__(self, faults=None):
        self.faults = faults or (lambda call: None)
        self.calls: list[RunReportRequest] = []
        self.timeouts: list[float | None] = []

    def unary_unary(self, method, request_serializer=None, response_deserializer=None, _registered_method=False):
        channel = self

        class Callable_:
            def with_call(self, request, timeout=None, metadata=None, credentials=None, **kwargs):
                wire = RunReportRequest.deserialize(request_serializer(request))
                channel.calls.append(wire)
                channel.timeouts.append(timeout)
                answer = channel._answer(wire, channel.faults(len(channel.calls) - 1))
                raw = answer if isinstance(answer, bytes) else RunReportResponse.serialize(answer)
                return response_deserializer(raw), OkCall("ga4")

            def __call__(self, request, **kwargs):
                return self.with_call(request, **kwargs)[0]

        return Callable_()

    def _answer(self, request: RunReportRequest, kind: str | None) -> RunReportResponse | bytes:
        errors = {
            "429": (grpc.StatusCode.RESOURCE_EXHAUSTED, "Exhausted property tokens per hour."),
            "500": (grpc.StatusCode.INTERNAL, "Internal error encountered."),
            "502_html": (grpc.StatusCode.UNAVAILABLE, f"Received http2 header with status: 502 {HTML_502}"),
            "504_html": (grpc.StatusCode.UNAVAILABLE, f"Received http2 header with status: 504 {HTML_502}"),
            "503": (grpc.StatusCode.UNAVAILABLE, "The service is currently unavailable."),
            "read_timeout": (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"),
            "reset_after_send": (grpc.StatusCode.UNAVAILABLE, "Connection reset by peer"),
            "auth": (grpc.StatusCode.UNAUTHENTICATED, "Request had invalid authentication credentials."),
        }
        if kind in errors:
            raise RpcError(*errors[kind])
        if kind == "malformed_json":
            return b"\xff\xfe<html>not a protobuf</html>"
        (date_range,) = request.date_ranges
        start = dt.date.fromisoformat(date_range.start_date)
        end = dt.date.fromisoformat(date_range.end_date)
        rows = [r for i in range((end - start).days + 1) for r in day_rows(start + dt.timedelta(days=i))]
        if kind == "stray_row":
            rows.append(day_rows(end + dt.timedelta(days=1))[0])
        if kind in ("bad_hour", "negative_sessions") and len(rows) > 21:
            dims, metrics = rows[21]
            rows[21] = (
                (dims[:1] + ("(other)",) + dims[2:], metrics) if kind == "bad_hour" else (dims, (-3, *metrics[1:]))
            )
        total = len(rows) + (7 if kind == "partial_failure" else 0)  # the report "changed" while being read
        page = rows[request.offset : request.offset + request.limit]
        return RunReportResponse(
            dimension_headers=[DimensionHeader(name=d.name) for d in request.dimensions],
            metric_headers=[MetricHeader(name=m.name, type_=MetricType.TYPE_INTEGER) for m in request.metrics],
            rows=[
                Row(
                    dimension_values=[DimensionValue(value=v) for v in dims],
                    metric_values=[MetricValue(value=str(v)) for v in metrics],
                )
                for dims, metrics in page
            ],
            row_count=total,
            kind="analyticsData#runReport",
        )

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


class FakeGA4Resource(LiveGA4Resource):
    """The live GA4 resource (its paging, retries, timeout) over the fake channel registered as `channel`."""

    channel: str

    def _client(self) -> BetaAnalyticsDataClient:
        if self._client_instance is None:
            transport = BetaAnalyticsDataGrpcTransport(
                channel=CHANNELS[self.channel], credentials=AnonymousCredentials()
            )
            self._client_instance = BetaAnalyticsDataClient(transport=transport)
        return self._client_instance
