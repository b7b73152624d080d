"""The demo GA4 property answers runReport requests the way the live Data API does."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from google.analytics.data_v1beta.types import (
    DateRange,
    Dimension,
    Filter,
    FilterExpression,
    FilterExpressionList,
    Metric,
    MetricAggregation,
    MetricType,
    NumericValue,
    OrderBy,
    RunReportRequest,
    RunReportResponse,
)
from google.api_core.exceptions import InvalidArgument, PermissionDenied

from rl.world.facts import REPORT_SCHEMAS
from rl.world.ga4_api import answer_run_report, run_report_to_frame

D = dt.date
TODAY = D(2024, 3, 10)  # a Sunday
PROPERTY = "123456"
KEYS = ["date", "hour", "channel_group", "source_medium", "campaign_name", "campaign_id", "device"]
BRAND = ("Paid Search", "google / cpc", "Search | Brand", 11)
SOCIAL = ("Paid Social", "meta / paid_social", "Social | Prospecting", 22)
DIRECT = ("Direct", "(direct) / (none)", "(direct)", None)


def _frame(rows: list[tuple], value_columns: dict[str, pl.DataType]) -> pl.DataFrame:
    """A world table from (date, hour, (channel, source/medium, campaign, id), device, *values) tuples."""
    records = [(d, h, *src, dev, *vals) for d, h, src, dev, *vals in rows]
    keys = {k: v for k, v in REPORT_SCHEMAS["sessions"].items() if k in KEYS}
    schema = {**keys, **value_columns}
    return pl.DataFrame(records, schema=schema, orient="row")


def world() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Four days of sessions and key events, plus rows dated today and tomorrow that must stay invisible."""
    sessions = _frame(
        [
            (D(2024, 3, 7), 0, BRAND, "mobile", 10, 9, 4),
            (D(2024, 3, 7), 13, BRAND, "desktop", 6, 6, 2),
            (D(2024, 3, 7), 9, SOCIAL, "mobile", 20, 18, 15),
            (D(2024, 3, 8), 9, DIRECT, "desktop", 5, 5, 1),
            (D(2024, 3, 8), 21, SOCIAL, "tablet", 3, 3, 3),
            (D(2024, 3, 9), 23, BRAND, "mobile", 8, 7, 2),
            (D(2024, 3, 10), 1, BRAND, "mobile", 100, 100, 100),  # today: not happened yet
            (D(2024, 3, 11), 1, BRAND, "mobile", 100, 100, 100),
        ],
        {"sessions": pl.Int64, "total_users": pl.Int64, "new_users": pl.Int64},
    )
    key_events = _frame(
        [
            (D(2024, 3, 7), 14, BRAND, "desktop", 1, 50.0),
            (D(2024, 3, 8), 10, BRAND, "mobile", 2, 80.25),  # clicked on the 7th, converted on the 8th
            (D(2024, 3, 9), 8, SOCIAL, "mobile", 1, 19.999),
            (D(2024, 3, 10), 2, BRAND, "mobile", 7, 700.0),  # today
        ],
        {"key_events": pl.Int64, "revenue": pl.Float64},
    )
    return sessions, key_events


def request(
    dims: list[str], metrics: list[str], start: str = "2024-03-01", end: str = "today", **kw
) -> RunReportRequest:
    return RunReportRequest(
        property=f"properties/{PROPERTY}",
        dimensions=[Dimension(name=d) for d in dims],
        metrics=[Metric(name=m) for m in metrics],
        date_ranges=[DateRange(start_date=start, end_date=end)],
        **kw,
    )


def run(req: RunReportRequest) -> RunReportResponse:
    sessions, key_events = world()
    return answer_run_report(req, sessions, key_events, TODAY, PROPERTY)


def frame(req: RunReportRequest) -> pl.DataFrame:
    """Answer, then read back through the wire format like the ingestion layer will."""
    wire = RunReportResponse.serialize(run(req))
    return run_report_to_frame(RunReportResponse.deserialize(wire))


def test_round_trip_through_the_wire_format_gives_typed_numbers() -> None:
    out = frame(request(["date", "sessionCampaignName"], ["sessions", "newUsers", "keyEvents", "totalRevenue"]))
    assert out.schema == pl.Schema(
        {
            "date": pl.Date,
            "sessionCampaignName": pl.Utf8,
            "sessions": pl.Int64,
            "newUsers": pl.Int64,
            "keyEvents": pl.Float64,
            "totalRevenue": pl.Float64,
        }
    )
    brand = out.filter(pl.col("sessionCampaignName") == "Search | Brand").sort("date")
    assert brand.rows() == [
        (D(2024, 3, 7), "Search | Brand", 16, 6, 1.0, 50.0),
        (D(2024, 3, 8), "Search | Brand", 0, 0, 2.0, 80.25),
        (D(2024, 3, 9), "Search | Brand", 8, 2, 0.0, 0.0),
    ]


def test_headers_types_metadata_and_string_values() -> None:
    resp = run(request(["date"], ["sessions", "totalUsers", "keyEvents", "totalRevenue"]))
    assert [h.name for h in resp.dimension_headers] == ["date"]
    assert [h.type_ for h in resp.metric_headers] == [
        MetricType.TYPE_INTEGER,
        MetricType.TYPE_INTEGER,
        MetricType.TYPE_FLOAT,
        MetricType.TYPE_CURRENCY,
    ]
    assert resp.kind == "analyticsData#runReport"
    assert resp.metadata.currency_code == "USD"
    assert "property_quota" not in resp
    rows = {r.dimension_values[0].value: [m.value for m in r.metric_values] for r in resp.rows}
    assert rows == {
        "20240307": ["36", "33", "1", "50"],
        "20240308": ["8", "8", "2", "80.25"],
        "20240309": ["8", "7", "1", "20"],
    }


def test_time_dimensions_are_formatted_like_the_api() -> None:
    resp = run(request(["dateHour", "hour", "dayOfWeek"], ["sessions"], start="2024-03-09", end="2024-03-09"))
    assert [[v.value for v in r.dimension_values] for r in resp.rows] == [["2024030923", "23", "6"]]
    resp = run(request(["hour"], ["sessions"], start="2024-03-07", end="2024-03-07"))
    assert [r.dimension_values[0].value for r in resp.rows] == ["00", "09", "13"]
    out = frame(request(["dateHour"], ["sessions"], start="2024-03-07", end="2024-03-07"))
    assert out["dateHour"].dtype == pl.Datetime("us")
    assert out["dateHour"].to_list()[0] == dt.datetime(2024, 3, 7, 0)


def test_source_medium_and_campaign_id_dimensions() -> None:
    out = frame(
        request(["sessionSource", "sessionMedium", "sessionCampaignId", "sessionDefaultChannelGroup"], ["sessions"])
    )
    assert out.sort("sessionSource").rows() == [
        ("(direct)", "(none)", "(not set)", "Direct", 5),
        ("google", "cpc", "11", "Paid Search", 24),
        ("meta", "paid_social", "22", "Paid Social", 23),
    ]


def test_sums_match_hand_computed_totals_and_metric_aggregations() -> None:
    resp = run(
        request(
            ["deviceCategory"],
            ["sessions", "totalUsers", "newUsers", "keyEvents", "totalRevenue"],
            metric_aggregations=[MetricAggregation.TOTAL, MetricAggregation.MAXIMUM],
        )
    )
    out = run_report_to_frame(resp)
    assert out.sort("deviceCategory").rows() == [
        ("desktop", 11, 11, 3, 1.0, 50.0),
        ("mobile", 38, 34, 21, 3.0, 100.25),  # 80.25 + 19.999, rounded to the cent
        ("tablet", 3, 3, 3, 0.0, 0.0),
    ]
    assert [v.value for v in resp.totals[0].dimension_values] == ["RESERVED_TOTAL"]
    assert [v.value for v in resp.totals[0].metric_values] == ["52", "48", "27", "4", "150.25"]
    assert [v.value for v in resp.maximums[0].metric_values][0] == "38"


def test_no_dimensions_gives_one_total_row() -> None:
    out = frame(request([], ["sessions", "keyEvents"]))
    assert out.rows() == [(52, 4.0)]


def test_key_events_by_conversion_date_sessions_by_session_date() -> None:
    out = frame(request(["date", "sessionCampaignId"], ["sessions", "keyEvents"], start="2024-03-08", end="2024-03-08"))
    # brand had no sessions on the 8th, yet its conversions from the 7th's clicks land there
    assert out.sort("sessionCampaignId").rows() == [
        (D(2024, 3, 8), "(not set)", 5, 0.0),
        (D(2024, 3, 8), "11", 0, 2.0),
        (D(2024, 3, 8), "22", 3, 0.0),
    ]


def test_only_session_metrics_never_show_conversion_only_rows() -> None:
    out = frame(request(["date"], ["sessions"], start="2024-03-08", end="2024-03-08"))
    assert out.rows() == [(D(2024, 3, 8), 8)]
    out = frame(request(["date"], ["keyEvents"], start="2024-03-07", end="2024-03-09"))
    assert out.rows() == [(D(2024, 3, 7), 1.0), (D(2024, 3, 8), 2.0), (D(2024, 3, 9), 1.0)]


def test_today_and_later_do_not_exist_yet() -> None:
    out = frame(request(["date"], ["sessions", "keyEvents"], start="today", end="today"))
    assert out.height == 0
    out = frame(request(["date"], ["sessions", "keyEvents"], start="2024-03-09", end="2024-03-31"))
    assert out.rows() == [(D(2024, 3, 9), 8, 1.0)]


def test_relative_dates() -> None:
    assert frame(request(["date"], ["sessions"], start="yesterday", end="yesterday"))["date"].to_list() == [
        D(2024, 3, 9)
    ]
    assert frame(request(["date"], ["sessions"], start="2daysAgo", end="yesterday"))["date"].to_list() == [
        D(2024, 3, 8),
        D(2024, 3, 9),
    ]
    assert frame(request(["date"], ["sessions"], start="3daysAgo", end="3daysAgo"))["sessions"].to_list() == [36]


@pytest.mark.parametrize(
    ("start", "end", "named"),
    [
        ("2024-03-09", "2024-03-01", "2024-03-01"),
        ("2024/03/01", "today", "2024/03/01"),
        ("2024-02-30", "today", "2024-02-30"),
        ("2024-03-01", "tomorrow", "tomorrow"),
    ],
)
def test_invalid_dates_are_rejected_naming_them(start: str, end: str, named: str) -> None:
    with pytest.raises(InvalidArgument, match=named):
        run(request(["date"], ["sessions"], start=start, end=end))


def test_more_than_one_date_range_is_rejected() -> None:
    req = request(["date"], ["sessions"])
    req.date_ranges.append(DateRange(start_date="7daysAgo", end_date="yesterday"))
    with pytest.raises(InvalidArgument, match="dateRanges"):
        run(req)


@pytest.mark.parametrize(
    ("dims", "metrics", "bad", "kind"),
    [
        (["date", "fooBar"], ["sessions"], "fooBar", "dimension"),
        (["date"], ["sessions", "conversions"], "conversions", "metric"),
        (["sessions"], ["sessions"], "sessions", "dimension"),
    ],
)
def test_unknown_fields_fail_like_the_api(dims: list[str], metrics: list[str], bad: str, kind: str) -> None:
    with pytest.raises(InvalidArgument, match=f"Field {bad} is not a valid {kind}") as err:
        run(request(dims, metrics))
    assert "api-schema" in str(err.value)


def test_wrong_or_malformed_property() -> None:
    req = request(["date"], ["sessions"])
    req.property = "properties/999"
    with pytest.raises(PermissionDenied):
        run(req)
    req.property = "123456"
    with pytest.raises(InvalidArgument, match="property"):
        run(req)


def _string(field: str, value: str, match: str = "EXACT", case: bool = False) -> FilterExpression:
    sf = Filter.StringFilter(value=value, match_type=match, case_sensitive=case)
    return FilterExpression(filter=Filter(field_name=field, string_filter=sf))


def test_exact_string_filter_on_an_unrequested_dimension() -> None:
    out = frame(
        request(
            ["date"], ["sessions", "keyEvents"], dimension_filter=_string("sessionDefaultChannelGroup", "Paid Search")
        )
    )
    assert out.rows() == [(D(2024, 3, 7), 16, 1.0), (D(2024, 3, 8), 0, 2.0), (D(2024, 3, 9), 8, 0.0)]


def test_contains_begins_with_and_case_sensitivity() -> None:
    dims, metrics = ["sessionCampaignName"], ["sessions"]
    out = frame(request(dims, metrics, dimension_filter=_string("sessionCampaignName", "BRAND", "CONTAINS")))
    assert out.rows() == [("Search | Brand", 24)]
    out = frame(request(dims, metrics, dimension_filter=_string("sessionCampaignName", "BRAND", "CONTAINS", True)))
    assert out.height == 0
    out = frame(request(dims, metrics, dimension_filter=_string("sessionSourceMedium", "meta", "BEGINS_WITH")))
    assert out.rows() == [("Social | Prospecting", 23)]


def test_in_list_and_group_and_not() -> None:
    in_list = FilterExpression(
        filter=Filter(field_name="deviceCategory", in_list_filter=Filter.InListFilter(values=["mobile", "tablet"]))
    )
    out = frame(request(["deviceCategory"], ["sessions"], dimension_filter=in_list))
    assert out.sort("deviceCategory").rows() == [("mobile", 38), ("tablet", 3)]
    both = FilterExpression(and_group=FilterExpressionList(expressions=[in_list, _string("date", "20240307")]))
    assert frame(request(["deviceCategory"], ["sessions"], dimension_filter=both)).rows() == [("mobile", 30)]
    neither = FilterExpression(not_expression=in_list)
    assert frame(request(["deviceCategory"], ["sessions"], dimension_filter=neither)).rows() == [("desktop", 11)]


def test_unsupported_or_unknown_filters_are_rejected() -> None:
    numeric = FilterExpression(
        filter=Filter(
            field_name="hour",
            numeric_filter=Filter.NumericFilter(operation="GREATER_THAN", value=NumericValue(int64_value=3)),
        )
    )
    with pytest.raises(InvalidArgument, match="hour"):
        run(request(["date"], ["sessions"], dimension_filter=numeric))
    with pytest.raises(InvalidArgument, match="Field sessions is not a valid dimension"):
        run(request(["date"], ["sessions"], dimension_filter=_string("sessions", "3")))


def test_paging_concatenates_to_the_full_report() -> None:
    dims, metrics = ["date", "hour", "deviceCategory"], ["sessions", "keyEvents"]
    full = run(request(dims, metrics))
    assert full.row_count == len(full.rows) == 9
    pages = [run(request(dims, metrics, limit=4, offset=o)) for o in (0, 4, 8)]
    assert [len(p.rows) for p in pages] == [4, 4, 1]
    assert all(p.row_count == 9 for p in pages)
    assert pl.concat([run_report_to_frame(p) for p in pages]).equals(run_report_to_frame(full))
    assert run(request(dims, metrics, offset=20)).rows == []
    with pytest.raises(InvalidArgument):
        run(request(dims, metrics, limit=-1))


def test_default_order_is_by_dimensions_and_order_bys_apply() -> None:
    out = frame(request(["date", "deviceCategory"], ["sessions"]))
    assert out.select("date", "deviceCategory").rows() == sorted(out.select("date", "deviceCategory").rows())
    by_sessions = OrderBy(metric=OrderBy.MetricOrderBy(metric_name="sessions"), desc=True)
    out = frame(request(["sessionCampaignName"], ["sessions"], order_bys=[by_sessions]))
    assert out["sessions"].to_list() == [24, 23, 5]
    numeric = OrderBy(dimension=OrderBy.DimensionOrderBy(dimension_name="hour", order_type="NUMERIC"), desc=True)
    assert frame(request(["hour"], ["sessions"], order_bys=[numeric]))["hour"].to_list()[:2] == [23, 21]  # typed
    with pytest.raises(InvalidArgument, match="newUsers"):
        run(request(["date"], ["sessions"], order_bys=[OrderBy(metric=OrderBy.MetricOrderBy(metric_name="newUsers"))]))


def test_keep_empty_rows() -> None:
    dims = ["date", "sessionCampaignId"]
    assert frame(request(dims, ["keyEvents"], start="2024-03-07", end="2024-03-07")).height == 1
    assert frame(request(dims, ["keyEvents"], start="2024-03-07", end="2024-03-07", keep_empty_rows=True)).height == 2


def test_property_quota_grows_with_rows() -> None:
    small = run(request([], ["sessions"], return_property_quota=True)).property_quota
    big = run(request(["dateHour", "deviceCategory"], ["sessions"], return_property_quota=True)).property_quota
    assert 0 < small.tokens_per_day.consumed <= big.tokens_per_day.consumed
    assert small.tokens_per_day.consumed + small.tokens_per_day.remaining == 200_000


def test_empty_response_parses_to_an_empty_typed_frame() -> None:
    out = frame(request(["date", "deviceCategory"], ["sessions", "totalRevenue"], start="today", end="today"))
    assert out.height == 0
    assert out.schema == pl.Schema(
        {"date": pl.Date, "deviceCategory": pl.Utf8, "sessions": pl.Int64, "totalRevenue": pl.Float64}
    )
