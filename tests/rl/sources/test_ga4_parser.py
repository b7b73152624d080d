"""GA4 report pages become one typed table, and anything malformed is a ReportFormatError that says what and where."""

from __future__ import annotations

import datetime as dt
import re

import polars as pl
import pytest
from google.analytics.data_v1beta.types import (
    DimensionHeader,
    DimensionValue,
    MetricHeader,
    MetricType,
    MetricValue,
    Row,
    RunReportResponse,
)

import rl.world.ga4_api
from rl.sources.ga4 import ReportFormatError, pages_to_frame, run_report_to_frame

INT, FLOAT, CURRENCY, SECONDS = (
    MetricType.TYPE_INTEGER,
    MetricType.TYPE_FLOAT,
    MetricType.TYPE_CURRENCY,
    MetricType.TYPE_SECONDS,
)
DIMS = ["date", "deviceCategory"]
METRICS = [("sessions", INT), ("keyEvents", FLOAT)]


def page(
    rows: list[tuple[list[str], list[str]]],
    dims: list[str] = DIMS,
    metrics: list[tuple[str, MetricType]] = METRICS,
    row_count: int | None = None,
) -> RunReportResponse:
    """A response page as the API would send it: every value text, headers naming and typing the columns."""
    return RunReportResponse(
        dimension_headers=[DimensionHeader(name=d) for d in dims],
        metric_headers=[MetricHeader(name=m, type_=t) for m, t in metrics],
        rows=[
            Row(
                dimension_values=[DimensionValue(value=v) for v in dv],
                metric_values=[MetricValue(value=v) for v in mv],
            )
            for dv, mv in rows
        ],
        row_count=len(rows) if row_count is None else row_count,
    )


GOOD = [
    (["20240301", "mobile"], ["12", "1"]),
    (["20240301", "desktop"], ["7", "0.5"]),
    (["20240302", "mobile"], ["3", "0"]),
]


def test_a_good_report_has_typed_columns_in_header_order() -> None:
    report = page(
        [(["2024030123", "Search | Brand"], ["5", "2", "80.25", "31.5"])],
        dims=["dateHour", "sessionCampaignName"],
        metrics=[("sessions", INT), ("keyEvents", FLOAT), ("totalRevenue", CURRENCY), ("duration", SECONDS)],
    )
    out = pages_to_frame(
        [report], ["dateHour", "sessionCampaignName"], ["sessions", "keyEvents", "totalRevenue"] + ["duration"]
    )
    assert out.schema == pl.Schema(
        {
            "dateHour": pl.Datetime("us"),
            "sessionCampaignName": pl.Utf8,
            "sessions": pl.Int64,
            "keyEvents": pl.Float64,
            "totalRevenue": pl.Float64,
            "duration": pl.Float64,
        }
    )
    assert out.rows() == [(dt.datetime(2024, 3, 1, 23), "Search | Brand", 5, 2.0, 80.25, 31.5)]


def test_pages_concatenate_in_order() -> None:
    pages = [page(GOOD[:2], row_count=3), page(GOOD[2:], row_count=3)]
    out = pages_to_frame(pages, DIMS, ["sessions", "keyEvents"])
    assert out.schema == pl.Schema(
        {"date": pl.Date, "deviceCategory": pl.Utf8, "sessions": pl.Int64, "keyEvents": pl.Float64}
    )
    assert out.rows() == [
        (dt.date(2024, 3, 1), "mobile", 12, 1.0),
        (dt.date(2024, 3, 1), "desktop", 7, 0.5),
        (dt.date(2024, 3, 2), "mobile", 3, 0.0),
    ]


def test_an_empty_report_still_has_the_typed_columns() -> None:
    out = pages_to_frame([page([])], DIMS, ["sessions", "keyEvents"])
    assert out.height == 0
    assert out.schema == pl.Schema(
        {"date": pl.Date, "deviceCategory": pl.Utf8, "sessions": pl.Int64, "keyEvents": pl.Float64}
    )


def test_run_report_to_frame_is_the_one_page_case_and_still_importable_from_the_demo_responder() -> None:
    assert rl.world.ga4_api.run_report_to_frame is run_report_to_frame
    assert run_report_to_frame(page(GOOD)).equals(pages_to_frame([page(GOOD)]))


def test_missing_header() -> None:
    with pytest.raises(
        ReportFormatError,
        match=r"dimension headers: expected \['date', 'deviceCategory'\], got \['date'\] "
        r"\(missing \['deviceCategory'\]\)",
    ):
        pages_to_frame([page([(["20240301"], ["1", "1"])], dims=["date"])], DIMS, ["sessions", "keyEvents"])
    with pytest.raises(ReportFormatError, match=r"metric headers: .*missing \['keyEvents'\]"):
        pages_to_frame(
            [page([(["20240301", "x"], ["1"])], metrics=[("sessions", INT)])], DIMS, ["sessions", "keyEvents"]
        )


def test_renamed_header() -> None:
    renamed = page(GOOD, dims=["date", "device"])
    with pytest.raises(ReportFormatError, match=r"missing \['deviceCategory'\]; unexpected \['device'\]"):
        pages_to_frame([renamed], DIMS, ["sessions", "keyEvents"])
    with pytest.raises(ReportFormatError, match="same names in a different order"):
        pages_to_frame([page(GOOD)], DIMS, ["keyEvents", "sessions"])


def test_duplicate_header() -> None:
    with pytest.raises(ReportFormatError, match="header 'sessions' appears more than once"):
        pages_to_frame([page([(["20240301", "x"], ["1", "2"])], metrics=[("sessions", INT), ("sessions", INT)])])


def test_pages_whose_headers_differ() -> None:
    retyped = page(GOOD[2:], metrics=[("sessions", INT), ("keyEvents", INT)], row_count=3)
    with pytest.raises(
        ReportFormatError, match=r"page 1 has headers .*keyEvents:TYPE_INTEGER.*but page 0 has .*keyEvents:TYPE_FLOAT"
    ):
        pages_to_frame([page(GOOD[:2], row_count=3), retyped])
    renamed = page(GOOD[2:], dims=["date", "deviceModel"], row_count=3)
    with pytest.raises(ReportFormatError, match=r"page 1 has headers dimensions \['date', 'deviceModel'\]"):
        pages_to_frame([page(GOOD[:2], row_count=3), renamed])
    with pytest.raises(ReportFormatError, match="got none"):
        pages_to_frame([])


def test_a_metric_value_that_is_not_its_declared_type() -> None:
    bad = [GOOD[2], (["20240303", "tablet"], ["12x", "1"]), (["20240304", "tablet"], ["", "1"])]
    with pytest.raises(ReportFormatError) as err:
        pages_to_frame([page(GOOD[:2], row_count=5), page(bad, row_count=5)])
    message = str(err.value)
    assert "metric 'sessions' (declared TYPE_INTEGER)" in message
    assert "page 1, row 1 (0-based; row 3 of the report)" in message
    assert "value '12x' is not an integer" in message
    assert "(1 more bad values in this column)" in message
    with pytest.raises(
        ReportFormatError,
        match=r"metric 'sessions' \(declared TYPE_INTEGER\) at page 0, row 0 .*'1\.5' is not an integer",
    ):
        pages_to_frame([page([(["20240301", "x"], ["1.5", "1"])])])
    with pytest.raises(
        ReportFormatError,
        match=r"metric 'keyEvents' \(declared TYPE_FLOAT\) at page 0, row 1 .*'NaN' is not a finite number",
    ):
        pages_to_frame([page([(["20240301", "x"], ["1", "1"]), (["20240301", "y"], ["1", "NaN"])])])


def test_a_row_with_the_wrong_number_of_values() -> None:
    short = [GOOD[0], (["20240301", "desktop"], ["7"])]
    with pytest.raises(
        ReportFormatError,
        match=r"page 1, row 1 \(0-based\): 1 metric values \['7'\] for 2 metric headers \['sessions', 'keyEvents'\]",
    ):
        pages_to_frame([page(GOOD, row_count=5), page(short, row_count=5)])
    long = [(["20240301", "desktop", "extra"], ["7", "1"])]
    with pytest.raises(ReportFormatError, match=r"page 0, row 0 \(0-based\): 3 dimension values"):
        pages_to_frame([page(long)])


@pytest.mark.parametrize("value", ["2024-03-01", "2024031", "20241301", "(other)", ""])
def test_a_date_that_does_not_parse(value: str) -> None:
    rows = [GOOD[0], ([value, "mobile"], ["1", "1"])]
    with pytest.raises(
        ReportFormatError,
        match=rf"dimension 'date' at page 0, row 1 .*value '{re.escape(value)}' is not a date in the form YYYYMMDD",
    ):
        pages_to_frame([page(rows)])


@pytest.mark.parametrize("value", ["2024030124", "202403011", "20240301 9"])
def test_a_date_hour_that_does_not_parse(value: str) -> None:
    with pytest.raises(
        ReportFormatError,
        match=rf"dimension 'dateHour' .*value '{re.escape(value)}' is not an hour in the form YYYYMMDDHH",
    ):
        pages_to_frame([page([([value], ["1"])], dims=["dateHour"], metrics=[("sessions", INT)])])


def test_report_format_error_is_a_value_error() -> None:
    assert issubclass(ReportFormatError, ValueError)
