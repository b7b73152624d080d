"""The GA4 resource fetches whole reports: paging until row_count is covered, retrying what Google says to retry.

The live resource is exercised through Google's own SDK client (REST transport, anonymous credentials) with only
the HTTP layer replaced: a `requests` adapter mounted on the SDK's session plays analyticsdata.googleapis.com,
reading the JSON body the SDK sent and answering real HTTP responses (report pages, or Google-style JSON errors).
The demo resource runs against a small copy of the default demo world.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import math
import random
from pathlib import Path

import dagster as dg
import pytest
import urllib3
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.analytics.data_v1beta import BetaAnalyticsDataClient
from google.analytics.data_v1beta.types import (
    DateRange,
    DimensionHeader,
    DimensionValue,
    MetricHeader,
    MetricType,
    MetricValue,
    PropertyQuota,
    QuotaStatus,
    Row,
    RunReportRequest,
    RunReportResponse,
)
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from pydantic import PrivateAttr
from requests.adapters import BaseAdapter, HTTPAdapter

from orchestration.resources.ga4 import DemoGA4Resource, GA4FetchError, GA4Resource, LiveGA4Resource
from rl.world.world import DemoWorld
from tests.conftest import scaled

PROPERTY_ID = "123456789"
DIMS, METRICS = ["date", "sessionCampaignName"], ["sessions"]
START, END = dt.date(2024, 3, 1), dt.date(2024, 3, 3)
# What the Data API answers, in Google's JSON error format, for the statuses the tests use.
ERRORS = {
    400: ("INVALID_ARGUMENT", "Field sessionz is not a valid metric."),
    403: ("PERMISSION_DENIED", "User does not have sufficient permissions for this property."),
    429: ("RESOURCE_EXHAUSTED", "Exhausted property tokens per hour. Quota will refresh in one hour."),
    500: ("INTERNAL", "Internal error encountered."),
    503: ("UNAVAILABLE", "The service is currently unavailable."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}


class FakeDataApi(BaseAdapter):
    """analyticsdata.googleapis.com, below the SDK: answers each runReport POST from a fixed table of `rows` rows.

    `failures` maps a call number (0-based) to the HTTP error status to answer instead; `claimed_extra` makes the
    API promise more rows than it has; `growth_per_call` makes the report grow while it is being read."""

    def __init__(self, rows: int, failures: dict[int, int] | None = None, claimed_extra: int = 0, growth_per_call=0):
        super().__init__()
        self.table = [
            ((START + dt.timedelta(days=i % 3)).strftime("%Y%m%d"), f"Campaign {i:05d}", str(i)) for i in range(rows)
        ]
        self.failures = failures or {}
        self.claimed_extra, self.growth_per_call = claimed_extra, growth_per_call
        self.urls: list[str] = []
        self.sent: list[RunReportRequest] = []

    def send(self, request, **kwargs):
        call = len(self.sent)
        self.urls.append(request.url)
        self.sent.append(RunReportRequest.from_json(request.body))  # exactly what the SDK put on the wire
        if call in self.failures:
            status = self.failures[call]
            code, message = ERRORS[status]
            body = {"error": {"code": status, "message": message, "status": code}}
            return self._reply(request, status, json.dumps(body))
        return self._reply(request, 200, RunReportResponse.to_json(self._answer(self.sent[-1], call)))

    def _answer(self, sent: RunReportRequest, call: int) -> RunReportResponse:
        rows = self.table[sent.offset : sent.offset + sent.limit]
        return RunReportResponse(
            dimension_headers=[DimensionHeader(name=d.name) for d in sent.dimensions],
            metric_headers=[MetricHeader(name=m.name, type_=MetricType.TYPE_INTEGER) for m in sent.metrics],
            rows=[
                Row(dimension_values=[DimensionValue(value=v) for v in r[:2]], metric_values=[MetricValue(value=r[2])])
                for r in rows
            ],
            row_count=len(self.table) + self.claimed_extra + self.growth_per_call * call,
            property_quota=PropertyQuota(
                tokens_per_day=QuotaStatus(consumed=10 * (call + 1), remaining=200_000 - 10 * (call + 1)),
                tokens_per_hour=QuotaStatus(consumed=10, remaining=39_990),
                concurrent_requests=QuotaStatus(consumed=0, remaining=10),
                server_errors_per_project_per_hour=QuotaStatus(consumed=0, remaining=10),
                potentially_thresholded_requests_per_hour=QuotaStatus(consumed=0, remaining=120),
                tokens_per_project_per_hour=QuotaStatus(consumed=10, remaining=13_990),
            )
            if sent.return_property_quota
            else None,
            kind="analyticsData#runReport",
        )

    @staticmethod
    def _reply(request, status: int, body: str):
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(body.encode()),
            headers={"Content-Type": "application/json; charset=UTF-8"},
            status=status,
            preload_content=False,
        )
        return HTTPAdapter().build_response(request, raw)

    def close(self) -> None:
        pass


def live(api: FakeDataApi, **config) -> tuple[LiveGA4Resource, list[float]]:
    """A live resource whose SDK client talks to `api`, and the list its backoff waits are recorded in."""
    client = BetaAnalyticsDataClient(credentials=AnonymousCredentials(), transport="rest")
    client.transport._session.mount("https://", api)
    resource = LiveGA4Resource(property_id=PROPERTY_ID, transport="rest", **config)
    resource._client_instance = client
    sleeps: list[float] = []
    resource._sleep = sleeps.append
    resource._rng = random.Random(7)
    return resource, sleeps


# -- the live resource, through the SDK ------------------------------------------------------------------------
def test_live_pages_with_offset_and_limit_until_row_count_is_covered(caplog) -> None:
    api = FakeDataApi(rows=2345)
    resource, sleeps = live(api, page_size=1000)
    with caplog.at_level(logging.INFO, logger="test.ga4"):
        report = resource.fetch_report(DIMS, METRICS, START, END, log=logging.getLogger("test.ga4"))
    assert [(s.offset, s.limit) for s in api.sent] == [(0, 1000), (1000, 1000), (2000, 1000)]
    for sent, url in zip(api.sent, api.urls, strict=True):
        assert url.startswith(f"https://analyticsdata.googleapis.com/v1beta/properties/{PROPERTY_ID}:runReport")
        assert [d.name for d in sent.dimensions] == DIMS and [m.name for m in sent.metrics] == METRICS
        assert list(sent.date_ranges) == [DateRange(start_date="2024-03-01", end_date="2024-03-03")]
        assert sent.return_property_quota and not sent.keep_empty_rows
    assert report.row_count == 2345 and report.attempts == 3 and sleeps == []
    assert [len(p.rows) for p in report.pages] == [1000, 1000, 345]
    assert report.request.limit == 0 and report.request.offset == 0  # the request is kept without paging
    frame = report.frame()
    assert frame.columns == ["date", "sessionCampaignName", "sessions"]
    assert frame["sessions"].to_list() == list(range(2345))  # every row, in order
    assert frame["date"].min() == START and frame["date"].max() == END
    assert report.quota == {
        "tokens_per_day": {"consumed": 30, "remaining": 199_970},
        "tokens_per_hour": {"consumed": 10, "remaining": 39_990},
        "concurrent_requests": {"consumed": 0, "remaining": 10},
        "server_errors_per_project_per_hour": {"consumed": 0, "remaining": 10},
        "potentially_thresholded_requests_per_hour": {"consumed": 0, "remaining": 120},
        "tokens_per_project_per_hour": {"consumed": 10, "remaining": 13_990},
    }
    lines = report.to_json_lines().splitlines()
    assert len(lines) == 3 and all(json.loads(line)["kind"] == "analyticsData#runReport" for line in lines)
    assert [RunReportResponse.from_json(line) for line in lines] == report.pages
    assert "page 3, 2345/2345 rows (3 API calls)" in caplog.text


def test_an_empty_report_is_one_call() -> None:
    api = FakeDataApi(rows=0)
    resource, _ = live(api)
    report = resource.fetch_report(DIMS, METRICS, START, END)
    assert len(api.sent) == 1 and report.row_count == 0 and report.frame().height == 0


def test_the_sdk_maps_http_429_to_too_many_requests_not_resource_exhausted() -> None:
    """Why the retry list names the parent classes: over REST the SDK maps by HTTP status alone."""
    resource, _ = live(FakeDataApi(rows=1, failures={0: 429}))
    with pytest.raises(gexc.TooManyRequests) as err:
        resource._run_report(RunReportRequest(property=resource.property_name()))
    assert not isinstance(err.value, gexc.ResourceExhausted)


def test_429_then_503_then_success_is_retried_with_growing_waits(caplog) -> None:
    api = FakeDataApi(rows=10, failures={0: 429, 1: 503})
    resource, sleeps = live(api)
    with caplog.at_level(logging.WARNING, logger="test.ga4"):
        report = resource.fetch_report(DIMS, METRICS, START, END, log=logging.getLogger("test.ga4"))
    assert report.attempts == 3 and len(api.sent) == 3 and report.frame().height == 10
    assert len(sleeps) == 2 and 1.0 <= sleeps[0] <= 1.1 and 2.0 <= sleeps[1] <= 2.2
    assert "TooManyRequests on attempt 1/6" in caplog.text and "ServiceUnavailable on attempt 2/6" in caplog.text


def test_retries_happen_per_page_and_the_retried_page_keeps_its_offset() -> None:
    api = FakeDataApi(rows=2345, failures={1: 500, 2: 504})
    resource, sleeps = live(api, page_size=1000)
    report = resource.fetch_report(DIMS, METRICS, START, END)
    assert [s.offset for s in api.sent] == [0, 1000, 1000, 1000, 2000]
    assert report.attempts == 5 and report.frame()["sessions"].to_list() == list(range(2345))
    assert len(sleeps) == 2 and sleeps[0] < sleeps[1]


class ScriptedGA4(GA4Resource):
    """A resource whose one API call raises the given errors (as the gRPC transport would) and then answers."""

    _errors: list[Exception] = PrivateAttr(default_factory=list)
    _calls: list[RunReportRequest] = PrivateAttr(default_factory=list)

    def property_name(self) -> str:
        return f"properties/{PROPERTY_ID}"

    def _run_report(self, request: RunReportRequest) -> RunReportResponse:
        self._calls.append(request)
        if len(self._calls) <= len(self._errors):
            raise self._errors[len(self._calls) - 1]
        return RunReportResponse(row_count=0)


def test_the_grpc_errors_google_asks_to_retry_are_retried() -> None:
    resource = ScriptedGA4(max_attempts=5)
    errors = [gexc.ResourceExhausted("quota"), gexc.DeadlineExceeded("slow"), gexc.InternalServerError("oops")]
    errors.append(gexc.ServiceUnavailable("down"))
    resource._errors, resource._sleep = errors, lambda _: None
    assert resource.fetch_report(DIMS, METRICS, START, END).attempts == 5


@pytest.mark.parametrize(("status", "error"), [(400, gexc.BadRequest), (403, gexc.Forbidden)])
def test_a_permanent_error_is_not_retried(status: int, error: type[Exception]) -> None:
    api = FakeDataApi(rows=10, failures={0: status})
    resource, sleeps = live(api)
    with pytest.raises(error, match=ERRORS[status][1]):
        resource.fetch_report(DIMS, METRICS, START, END)
    assert len(api.sent) == 1 and sleeps == []


def test_running_out_of_attempts_names_property_range_attempts_and_last_error() -> None:
    api = FakeDataApi(rows=10, failures={k: 503 for k in range(10)})
    resource, sleeps = live(api, max_attempts=4, initial_backoff_s=1.0, max_backoff_s=3.0)
    with pytest.raises(GA4FetchError) as err:
        resource.fetch_report(DIMS, METRICS, START, END)
    message = str(err.value)
    assert f"properties/{PROPERTY_ID} 2024-03-01..2024-03-03" in message
    assert "failed after 4 attempts" in message and "ServiceUnavailable" in message and "unavailable" in message
    assert isinstance(err.value.__cause__, gexc.ServiceUnavailable)
    assert len(api.sent) == 4
    assert len(sleeps) == 3 and sleeps[0] < sleeps[1] < sleeps[2] == 3.0  # doubling, capped at max_backoff_s


def test_an_api_that_delivers_fewer_rows_than_promised_stops_with_an_error() -> None:
    api = FakeDataApi(rows=2345, claimed_extra=5)
    resource, _ = live(api, page_size=1000)
    with pytest.raises(GA4FetchError, match=r"offset 2000 .* has 345 rows, but row_count 2350 promises 350"):
        resource.fetch_report(DIMS, METRICS, START, END)
    assert len(api.sent) == 3


def test_a_report_that_changes_while_being_read_stops_with_an_error() -> None:
    api = FakeDataApi(rows=2345, growth_per_call=1)
    resource, _ = live(api, page_size=1000)
    with pytest.raises(GA4FetchError, match="row_count changed from 2345 to 2346 at offset 1000"):
        resource.fetch_report(DIMS, METRICS, START, END)


def test_live_configuration_is_checked_and_builds_the_sdk_client_from_a_key_file(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    key_file = tmp_path / "service-account.json"
    key_file.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "gaelp-test",
                "private_key_id": "abc",
                "private_key": pem,
                "client_email": "gaelp@gaelp-test.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )
    resource = LiveGA4Resource(property_id=PROPERTY_ID, credentials_path=str(key_file), transport="rest")
    client = resource._client()
    assert isinstance(client, BetaAnalyticsDataClient) and resource._client() is client  # built once
    credentials = client.transport._credentials
    assert credentials.service_account_email == "gaelp@gaelp-test.iam.gserviceaccount.com"
    assert credentials.scopes == ["https://www.googleapis.com/auth/analytics.readonly"]
    assert "PRIVATE KEY" not in repr(resource)  # the resource holds the path, never the key
    assert LiveGA4Resource(property_id=f"properties/{PROPERTY_ID}").property_name() == f"properties/{PROPERTY_ID}"
    with pytest.raises(ValueError, match="numeric property ID"):
        LiveGA4Resource(property_id="G-ABC123").property_name()
    with pytest.raises(ValueError, match="'grpc' or 'rest'"):
        LiveGA4Resource(property_id=PROPERTY_ID, transport="http")._client()
    with pytest.raises(ValueError, match="less than or equal to 250000"):
        LiveGA4Resource(property_id=PROPERTY_ID, page_size=250_001)


def test_the_base_is_abstract() -> None:
    with pytest.raises(TypeError, match="abstract"):
        GA4Resource()

    class Incomplete(GA4Resource):
        def property_name(self) -> str:
            return "properties/1"

    with pytest.raises(TypeError, match="_run_report"):
        Incomplete()


# -- the demo resource, against a small demo world ------------------------------------------------------------
@pytest.fixture(scope="module")
def world_file(tmp_path_factory, reference_params) -> Path:
    path = tmp_path_factory.mktemp("world") / "small.yaml"
    path.write_text(scaled(reference_params, 0.1).to_yaml())
    return path


def test_demo_fetch_advances_the_world_and_pages_like_one_big_page(tmp_path, world_file, reference_params) -> None:
    start = reference_params.history_start + dt.timedelta(days=2)
    end = start + dt.timedelta(days=2)
    world = {"world_dir": str(tmp_path / "world"), "world_file": str(world_file), "seed": 5}
    dims, metrics = ["dateHour", "sessionCampaignName", "deviceCategory"], ["sessions", "keyEvents", "totalRevenue"]
    paged = DemoGA4Resource(page_size=200, **world).fetch_report(dims, metrics, start, end)
    assert DemoWorld.open(world["world_dir"], world_file, 5).today == end + dt.timedelta(days=1)
    assert paged.row_count > 400 and len(paged.pages) == math.ceil(paged.row_count / 200) >= 3
    assert all(len(p.rows) == 200 for p in paged.pages[:-1]) and paged.attempts == len(paged.pages)
    assert paged.request.property == "properties/123456789" and paged.quota is not None
    whole = DemoGA4Resource(page_size=250_000, **world).fetch_report(dims, metrics, start, end)
    assert len(whole.pages) == 1
    frame = paged.frame()
    assert frame.equals(whole.frame())
    assert frame["dateHour"].dt.date().min() == start and frame["dateHour"].dt.date().max() == end
    assert frame["sessions"].sum() > 0


def test_an_asset_asks_for_the_abstract_resource_and_gets_the_demo(tmp_path, world_file, reference_params) -> None:
    day = reference_params.history_start

    @dg.asset
    def sessions(ga4: GA4Resource) -> dg.MaterializeResult:
        report = ga4.fetch_report(["date"], ["sessions"], day, day)
        return dg.MaterializeResult(metadata={"sessions": int(report.frame()["sessions"].sum())})

    resource = DemoGA4Resource(world_dir=str(tmp_path / "world"), world_file=str(world_file))
    result = dg.materialize([sessions], resources={"ga4": resource})
    assert result.success
    assert result.asset_materializations_for_node("sessions")[0].metadata["sessions"].value > 0
