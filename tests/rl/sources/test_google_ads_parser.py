"""Google Ads report rows become one typed table; rows that cannot be attributed are refused, naming the field."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from google.ads.googleads.v26.common.types.metrics import Metrics
from google.ads.googleads.v26.common.types.segments import Segments
from google.ads.googleads.v26.enums import ConversionLagBucketEnum, DeviceEnum
from google.ads.googleads.v26.resources.types.campaign import Campaign
from google.ads.googleads.v26.services.types.google_ads_service import GoogleAdsRow, SearchGoogleAdsStreamResponse
from polars.testing import assert_frame_equal

from rl.sources.google_ads import COLUMNS, AdsReportFormatError, rows_to_frame, schema_for

Lag = ConversionLagBucketEnum.ConversionLagBucket
Device = DeviceEnum.Device
HOURLY = [
    "campaign.id",
    "campaign.name",
    "segments.date",
    "segments.hour",
    "segments.device",
    "metrics.impressions",
    "metrics.clicks",
    "metrics.cost_micros",
    "metrics.conversions",
    "metrics.ctr",
    "metrics.average_cpc",
    "metrics.search_impression_share",
]


def row(cid=7, date="2025-03-01", hour=9, device=Device.MOBILE, share=0.42, **metrics) -> GoogleAdsRow:
    return GoogleAdsRow(
        campaign=Campaign(resource_name=f"customers/1234567890/campaigns/{cid}", id=cid, name=f"Search | {cid}"),
        segments=Segments(date=date, hour=hour, device=device),
        metrics=Metrics(
            impressions=metrics.get("impressions", 100),
            clicks=metrics.get("clicks", 5),
            cost_micros=metrics.get("cost_micros", 2_500_000),
            conversions=metrics.get("conversions", 1.0),
            ctr=0.05,
            average_cpc=500_000.0,
            **({} if share is None else {"search_impression_share": share}),
        ),
    )


def test_rows_become_typed_columns_named_without_their_resource():
    rows = [row(), row(cid=8, hour=23, device=Device.DESKTOP, share=None, clicks=0, conversions=0.0)]
    frame = rows_to_frame(rows, HOURLY)
    expected = pl.DataFrame(
        {
            "campaign_id": [7, 8],
            "campaign_name": ["Search | 7", "Search | 8"],
            "date": [dt.date(2025, 3, 1)] * 2,
            "hour": [9, 23],
            "device": ["mobile", "desktop"],
            "impressions": [100, 100],
            "clicks": [5, 0],
            "cost_micros": [2_500_000] * 2,
            "conversions": [1.0, 0.0],
            "ctr": [0.05, 0.05],
            "average_cpc": [500_000.0] * 2,
            "search_impression_share": [0.42, None],  # not reported (e.g. a social campaign): null, not zero
        },
        schema=schema_for(HOURLY),
    )
    assert_frame_equal(frame, expected)
    assert frame.schema["hour"] == pl.Int8 and frame.schema["date"] == pl.Date


def test_raw_protobuf_rows_give_the_same_table_and_empty_reports_keep_the_schema():
    batch = SearchGoogleAdsStreamResponse(results=[row(), row(cid=9)])
    raw = SearchGoogleAdsStreamResponse.pb(batch).results
    assert_frame_equal(rows_to_frame(raw, HOURLY), rows_to_frame(batch.results, HOURLY))
    empty = rows_to_frame([], HOURLY)
    assert empty.height == 0 and empty.schema == pl.Schema(schema_for(HOURLY))


def test_conversion_lag_buckets_keep_their_enum_names():
    fields = ["campaign.id", "segments.date", "segments.conversion_lag_bucket", "metrics.conversions"]
    rows = [
        GoogleAdsRow(
            campaign=Campaign(id=3),
            segments=Segments(date="2025-03-02", conversion_lag_bucket=bucket),
            metrics=Metrics(conversions=2.0, conversions_value=150.0),
        )
        for bucket in (Lag.LESS_THAN_ONE_DAY, Lag.FOURTEEN_TO_TWENTY_ONE_DAYS)
    ]
    frame = rows_to_frame(rows, fields)
    assert frame.columns == ["campaign_id", "date", "conversion_lag_bucket", "conversions"]
    assert frame["conversion_lag_bucket"].to_list() == ["LESS_THAN_ONE_DAY", "FOURTEEN_TO_TWENTY_ONE_DAYS"]


def test_every_known_field_exists_in_the_v26_row():
    frame = rows_to_frame([row()], list(COLUMNS))
    assert frame.columns == [c.name for c in COLUMNS.values()]


@pytest.mark.parametrize(
    ("fields", "rows", "field", "problem"),
    [
        (["campaign.id", "metrics.video_views"], [row()], "metrics.video_views", "no typed column"),
        (["campaign.id", "metrics.clicks"], [GoogleAdsRow(metrics=Metrics(clicks=3))], "campaign.id", "row 0"),
        (["campaign.id", "segments.date"], [row(), GoogleAdsRow(campaign=Campaign(id=4))], "segments.date", "row 1"),
        (["campaign.id", "segments.date"], [row(date="01/03/2025")], "segments.date", "YYYY-MM-DD"),
        ([], [row()], "<fields>", "no field"),
        (["campaign.id"], [{"campaign": {"id": 1}}], "<row>", "GoogleAdsRow"),
    ],
)
def test_bad_inputs_name_the_field(fields, rows, field, problem):
    with pytest.raises(AdsReportFormatError, match=problem) as info:
        rows_to_frame(rows, fields)
    assert info.value.field == field
    assert str(info.value).startswith(field)


def test_an_enum_value_outside_v26_is_refused():
    raw = GoogleAdsRow.pb(row())
    raw.segments.device = 99  # proto3 enums are open: a newer server could send a value this version does not know
    with pytest.raises(AdsReportFormatError, match="segments.device"):
        rows_to_frame([raw], ["campaign.id", "segments.device"])
