"""Ad-platform reporting through the real Google Ads SDK (network replaced at the gRPC channel) and the demo market.

The real resource is tested with a real `GoogleAdsClient`: only the gRPC channel under the SDK's interceptors is
fake. It records the serialized request and metadata and answers with serialized SDK response messages (or a
gRPC error carrying a `GoogleAdsFailure`, as the API does), so the SDK's own request building, header, error and
deserialization code all run.
"""

from __future__ import annotations

import datetime as dt
import logging

import grpc
import polars as pl
import pytest
from google.ads.googleads.client import GoogleAdsClient
from google.ads.googleads.v26.common.types.criteria import DeviceInfo
from google.ads.googleads.v26.common.types.metrics import Metrics
from google.ads.googleads.v26.common.types.segments import Segments
from google.ads.googleads.v26.enums import ConversionLagBucketEnum, CriterionTypeEnum, DeviceEnum
from google.ads.googleads.v26.errors.types.errors import (
    ErrorCode,
    ErrorLocation,
    GoogleAdsError,
    GoogleAdsFailure,
)
from google.ads.googleads.v26.errors.types.query_error import QueryErrorEnum
from google.ads.googleads.v26.errors.types.quota_error import QuotaErrorEnum
from google.ads.googleads.v26.resources.types.campaign import Campaign
from google.ads.googleads.v26.resources.types.campaign_criterion import CampaignCriterion
from google.ads.googleads.v26.services.services.google_ads_service.transports.grpc import (
    GoogleAdsServiceGrpcTransport,
)
from google.ads.googleads.v26.services.types.google_ads_service import (
    GoogleAdsRow,
    SearchGoogleAdsStreamResponse,
)
from google.protobuf.field_mask_pb2 import FieldMask
from polars.testing import assert_frame_equal

from orchestration.resources.ads import (
    AdsReportingError,
    AdsReportingResource,
    DemoAdsReportingResource,
    GoogleAdsReportingResource,
)
from orchestration.resources.ads_queries import (
    LAG_FIELDS,
    MODIFIER_FIELDS,
    PERFORMANCE_FIELDS,
    conversion_lag_query,
    current_modifiers_query,
    impression_share_query,
    performance_query,
)
from rl.sources.google_ads import AdsReportFormatError, schema_for
from rl.world.ads_api import parse_gaql
from rl.world.world import PLATFORM_CUSTOMER_IDS, DemoWorld
from tests.conftest import scaled
from tests.orchestration.resources.fake_google_ads import (
    DEV_TOKEN,
    END,
    FAILURE_KEY,
    SEARCH_STREAM,
    START,
    FakeChannel,
    FakeRpcError,
    sdk_client,
)


@pytest.fixture
def google(monkeypatch):
    """(resource, channel): the real resource with a real SDK client whose gRPC channel is `channel`."""
    channel = FakeChannel(answer=lambda request: ([], None))
    monkeypatch.setattr(GoogleAdsServiceGrpcTransport, "create_channel", classmethod(lambda cls, *a, **k: channel))
    resource = GoogleAdsReportingResource(
        developer_token="unused",
        client_id="unused",
        client_secret="client-secret-DO-NOT-LOG",
        refresh_token="refresh-token-DO-NOT-LOG",
        customer_id="123-456-7890",
    ).with_client(sdk_client())
    return resource, channel


@pytest.fixture
def sdk_log():
    """What the Google Ads SDK logs, at INFO (full request and fault). Read from its own logger: google-api-core
    stops "google" loggers from propagating to the root logger, so pytest's caplog would not see them."""
    logger, lines = logging.getLogger("google.ads.googleads.client"), []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    handler, level = Collect(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(level)


Device = DeviceEnum.Device


def performance_batches(request_id: str) -> list[SearchGoogleAdsStreamResponse]:
    mask = FieldMask(paths=PERFORMANCE_FIELDS)

    def row(cid, date, hour, impressions, clicks, cost, conv, share, device=Device.MOBILE):
        metrics = Metrics(
            impressions=impressions, clicks=clicks, cost_micros=cost, conversions=conv, conversions_value=conv * 80
        )
        if share is not None:
            metrics.search_impression_share = share
        return GoogleAdsRow(
            campaign=Campaign(resource_name=f"customers/1234567890/campaigns/{cid}", id=cid, name=f"Search | {cid}"),
            segments=Segments(date=date, hour=hour, device=device),
            metrics=metrics,
        )

    return [
        SearchGoogleAdsStreamResponse(
            results=[
                row(101, "2025-03-01", 0, 40, 3, 4_500_000, 1.0, 0.61),
                row(101, "2025-03-01", 1, 9, 0, 0, 0.0, None, Device.DESKTOP),
            ],
            field_mask=mask,
            request_id=request_id,
        ),
        SearchGoogleAdsStreamResponse(
            results=[row(102, "2025-03-02", 23, 120, 7, 9_100_000, 0.5, 0.0999)], field_mask=mask, request_id=request_id
        ),
    ]


# -- the real resource, offline ------------------------------------------------------------------------------------
def test_google_resource_sends_the_gaql_and_parses_the_stream(google):
    resource, channel = google
    channel.answer = lambda request: (performance_batches("req-7"), None)
    report = resource.performance("google_ads", START, END)

    (sent,) = channel.requests
    assert sent.method == SEARCH_STREAM
    assert sent.customer_id == "1234567890"  # dashes removed
    assert sent.query == performance_query(START, END)
    assert sent.metadata["developer-token"] == DEV_TOKEN and sent.metadata["login-customer-id"] == "9998887777"
    assert parse_gaql(sent.query).fields == PERFORMANCE_FIELDS  # the demo understands the same query

    assert report.request_ids == ["req-7"] and report.row_count == 3 and len(list(report.rows)) == 3
    expected = pl.DataFrame(
        {
            "campaign_id": [101, 101, 102],
            "campaign_name": ["Search | 101", "Search | 101", "Search | 102"],
            "date": [dt.date(2025, 3, 1), dt.date(2025, 3, 1), dt.date(2025, 3, 2)],
            "hour": [0, 1, 23],
            "device": ["mobile", "desktop", "mobile"],
            "impressions": [40, 9, 120],
            "clicks": [3, 0, 7],
            "cost_micros": [4_500_000, 0, 9_100_000],
            "conversions": [1.0, 0.0, 0.5],
            "conversions_value": [80.0, 0.0, 40.0],
            "search_impression_share": [0.61, None, 0.0999],
        },
        schema=schema_for(PERFORMANCE_FIELDS),
    )
    assert_frame_equal(report.frame(), expected)
    lines = report.to_json_lines().splitlines()
    assert len(lines) == 2
    assert SearchGoogleAdsStreamResponse.from_json(lines[1]) == performance_batches("req-7")[1]


def test_a_field_the_query_did_not_select_is_refused(google):
    resource, channel = google
    channel.answer = lambda request: (performance_batches("req-3"), None)
    report = resource.fetch("google_ads", performance_query(START, END), [*PERFORMANCE_FIELDS, "metrics.ctr"], END)
    with pytest.raises(AdsReportFormatError, match="metrics.ctr: not selected by the query"):
        report.frame()


def test_google_resource_conversion_lag_query(google):
    resource, channel = google
    bucket = ConversionLagBucketEnum.ConversionLagBucket.THREE_TO_FOUR_DAYS
    rows = [
        GoogleAdsRow(
            campaign=Campaign(id=101),
            segments=Segments(date="2025-03-01", conversion_lag_bucket=bucket),
            metrics=Metrics(conversions=2.0, conversions_value=170.0),
        )
    ]
    channel.answer = lambda request: ([SearchGoogleAdsStreamResponse(results=rows, request_id="req-8")], None)
    frame = resource.conversion_lag("google_ads", START, END).frame()
    assert channel.requests[0].query == conversion_lag_query(START, END)
    parse_gaql(channel.requests[0].query)
    assert frame.columns == ["campaign_id", "date", "conversion_lag_bucket", "conversions", "conversions_value"]
    assert frame.row(0) == (101, dt.date(2025, 3, 1), "THREE_TO_FOUR_DAYS", 2.0, 170.0)


def test_google_resource_reads_the_current_modifiers_for_one_day(google):
    resource, channel = google
    rows = [
        GoogleAdsRow(
            campaign=Campaign(id=101),
            campaign_criterion=CampaignCriterion(
                criterion_id=30001,
                type_=CriterionTypeEnum.CriterionType.DEVICE,
                device=DeviceInfo(type_=Device.MOBILE),
                bid_modifier=1.25,
            ),
        )
    ]
    channel.answer = lambda request: ([SearchGoogleAdsStreamResponse(results=rows, request_id="req-9")], None)
    frame = resource.modifiers("google_ads", END, END).frame()
    # the real API reports criteria only as they are now: no segments.date; the rows are stamped with the day
    assert channel.requests[0].query == current_modifiers_query() and "segments.date" not in channel.requests[0].query
    parse_gaql(channel.requests[0].query)
    assert frame.row(0, named=True) == {
        "campaign_id": 101,
        "criterion_id": 30001,
        "criterion_type": "DEVICE",
        "criterion_device": "mobile",
        "day_of_week": None,
        "start_hour": None,
        "end_hour": None,
        "start_minute": None,
        "end_minute": None,
        "bid_modifier": 1.25,
        "date": END,
    }
    # a backfill can only record the last day: the criteria have no history in this report
    assert resource.modifiers("google_ads", START, END).frame()["date"].to_list() == [END]


def test_google_ads_failure_becomes_a_reporting_error_without_secrets(google, sdk_log):
    resource, channel = google
    failure = GoogleAdsFailure(
        errors=[
            GoogleAdsError(
                error_code=ErrorCode(query_error=QueryErrorEnum.QueryError.PROHIBITED_METRIC_IN_SELECT_OR_WHERE_CLAUSE),
                message="metrics.search_impression_share cannot be selected with segments.hour",
                location=ErrorLocation(field_path_elements=[ErrorLocation.FieldPathElement(field_name="query")]),
            ),
            GoogleAdsError(
                error_code=ErrorCode(query_error=QueryErrorEnum.QueryError.BAD_VALUE), message="second problem"
            ),
        ]
    )
    trailing = ((FAILURE_KEY, GoogleAdsFailure.serialize(failure)), ("request-id", "REQ-42"))
    error = FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "Request contains an invalid argument.", trailing)
    channel.answer = lambda request: ([], error)
    with pytest.raises(AdsReportingError) as info:
        resource.performance("google_ads", START, END)
    message = str(info.value)
    for part in (
        "1234567890",
        "REQ-42",
        "INVALID_ARGUMENT",
        "query_error.PROHIBITED_METRIC_IN_SELECT_OR_WHERE_CLAUSE",
        "cannot be selected with segments.hour (field: query)",
        "query_error.BAD_VALUE: second problem",
    ):
        assert part in message
    logged = "\n".join(sdk_log)
    assert "REQ-42" in logged and "developer-token" in logged  # the SDK logged the failed request, headers too
    for secret in (DEV_TOKEN, "client-secret-DO-NOT-LOG", "refresh-token-DO-NOT-LOG"):
        assert secret not in message and secret not in logged and secret not in repr(resource)


def test_a_failure_after_the_first_batch_is_not_lost(google):
    resource, channel = google
    failure = GoogleAdsFailure(
        errors=[GoogleAdsError(error_code=ErrorCode(quota_error=QuotaErrorEnum.QuotaError.RESOURCE_EXHAUSTED))]
    )
    trailing = ((FAILURE_KEY, GoogleAdsFailure.serialize(failure)), ("request-id", "REQ-9"))
    error = FakeRpcError(grpc.StatusCode.PERMISSION_DENIED, "quota", trailing)
    channel.answer = lambda request: (performance_batches("req-9"), error)  # two good batches, then the error
    with pytest.raises(AdsReportingError, match="1234567890 .request id REQ-9.*quota_error.RESOURCE_EXHAUSTED"):
        resource.performance("google_ads", START, END)


def test_a_grpc_error_without_ads_details_becomes_a_reporting_error(google):
    resource, channel = google
    channel.answer = lambda request: ([], FakeRpcError(grpc.StatusCode.PERMISSION_DENIED, "caller lacks access"))
    with pytest.raises(AdsReportingError, match="1234567890.*caller lacks access"):
        resource.conversion_lag("google_ads", START, END)


def test_unknown_platform_lists_the_accounts(google):
    resource, channel = google
    with pytest.raises(ValueError, match=r"'meta'.*google_ads: 1234567890"):
        resource.performance("meta", START, END)
    assert channel.requests == []


def test_the_client_is_built_from_oauth_user_credentials_without_a_token_request():
    from google.oauth2.credentials import Credentials

    resource = GoogleAdsReportingResource(
        developer_token="dev",
        client_id="client.apps.googleusercontent.com",
        client_secret="secret",
        refresh_token="refresh",
        login_customer_id="999-888-7777",
        customer_id="1234567890",
    )
    client = resource._client()
    assert isinstance(client, GoogleAdsClient) and client is resource._client()
    assert client.version == "v26" and client.use_proto_plus and client.login_customer_id == "9998887777"
    creds = client.credentials
    assert isinstance(creds, Credentials) and creds.token is None and creds.refresh_token == "refresh"
    assert creds.token_uri == "https://oauth2.googleapis.com/token"


def test_the_base_resource_is_abstract():
    with pytest.raises(TypeError, match="abstract"):
        AdsReportingResource()

    class Incomplete(AdsReportingResource):
        def accounts(self) -> dict[str, str]:
            return {}

    with pytest.raises(TypeError, match="_search_stream"):
        Incomplete()


# -- the demo resource -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo(tmp_path_factory, reference_params) -> DemoAdsReportingResource:
    world_file = tmp_path_factory.mktemp("world") / "small.yaml"
    world_file.write_text(scaled(reference_params, 0.1).to_yaml())
    return DemoAdsReportingResource(world_dir=str(tmp_path_factory.mktemp("state")), world_file=str(world_file), seed=5)


def test_demo_reports_match_the_world_for_every_platform(demo):
    world = demo.world()
    start = world.params.history_start + dt.timedelta(days=2)
    end = start + dt.timedelta(days=9)
    buckets: set[str] = set()
    total_conversions = 0
    for platform, customer_id in PLATFORM_CUSTOMER_IDS.items():
        perf = demo.performance(platform, start, end)
        assert perf.customer_id == customer_id and perf.request_ids and perf.row_count > 0
        frame = perf.frame()
        assert frame.schema == pl.Schema(schema_for(PERFORMANCE_FIELDS))
        assert frame["date"].min() >= start and frame["date"].max() == end
        assert frame["hour"].is_between(0, 23).all()
        facts = world.frames()["ads"].filter((pl.col("platform") == platform) & pl.col("date").is_between(start, end))
        assert frame["clicks"].sum() == facts["clicks"].sum()
        assert frame["cost_micros"].sum() == facts["cost_micros"].sum()
        shares = frame["search_impression_share"]
        assert shares.null_count() == (0 if platform in ("google_ads", "microsoft_ads") else frame.height)

        lag = demo.conversion_lag(platform, start, end).frame()
        assert lag.schema == pl.Schema(schema_for(LAG_FIELDS))
        conversions = world.frames()["conversions"].filter(
            (pl.col("platform") == platform)
            & pl.col("click_date").is_between(start, end)
            & (pl.col("conv_date") <= end)
        )
        assert lag["conversions"].sum() == conversions.height  # matured conversions only, by click date
        total_conversions += conversions.height
        assert lag["conversion_lag_bucket"].null_count() == 0
        buckets |= set(lag["conversion_lag_bucket"])
    assert (
        total_conversions > 0
        and len(buckets) >= 3
        and buckets <= set(ConversionLagBucketEnum.ConversionLagBucket.__members__)
    )
    assert world.today == end + dt.timedelta(days=1)  # the world simulated through `end`, not further
    by_device = demo.performance("google_ads", start, end).frame().group_by("device").agg(pl.col("clicks").sum())
    facts = world.frames()["ads"].filter((pl.col("platform") == "google_ads") & pl.col("date").is_between(start, end))
    expected = facts.group_by("device").agg(pl.col("clicks").sum())
    assert dict(by_device.iter_rows()) == dict(expected.iter_rows())
    modifiers = demo.modifiers("google_ads", start, end).frame()
    assert modifiers.schema == pl.Schema(schema_for(MODIFIER_FIELDS))
    per_day = modifiers.group_by("date", "campaign_id").len()
    # 4 Google campaigns, 10 days: three DEVICE criteria each, no ad schedule (never adjusted by hour)
    assert per_day.height == 10 * 4 and set(per_day["len"]) == {3}
    assert demo.modifiers("meta", start, end).row_count == 0  # social platforms have no bid modifiers
    daily = demo.impression_share("google_ads", start, end).frame()
    assert daily.group_by("campaign_id", "date").len()["len"].max() == 1
    parse_gaql(impression_share_query(start, end))


def test_demo_asks_the_world_to_simulate_through_the_last_report_day(demo, tmp_path):
    reopened = DemoWorld.open(demo.world_dir, demo.world_file, demo.seed)
    end = reopened.today + dt.timedelta(days=2)
    demo.performance("meta", end - dt.timedelta(days=1), end)
    assert DemoWorld.open(demo.world_dir, demo.world_file, demo.seed).today == end + dt.timedelta(days=1)


def test_demo_refusals_are_reporting_errors(demo):
    with pytest.raises(AdsReportingError, match="EXPECTED_FILTERS_ON_DATE_RANGE"):
        demo.fetch("tiktok", "SELECT campaign.id, segments.date FROM campaign", ["campaign.id"], START)
    with pytest.raises(ValueError, match="no 'bing' ad account.*google_ads: 1234567890"):
        demo.performance("bing", START, END)
