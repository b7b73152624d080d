"""The demo ad platforms answer GAQL campaign reports with real Google Ads SDK rows."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from google.ads.googleads.v26.enums import (
    AdvertisingChannelTypeEnum,
    CampaignStatusEnum,
    ConversionLagBucketEnum,
    DeviceEnum,
)
from google.ads.googleads.v26.services.types.google_ads_service import GoogleAdsRow, SearchGoogleAdsStreamResponse

from rl.world.ads_api import GaqlError, answer_gaql, answer_search_stream, parse_gaql
from rl.world.facts import REPORT_SCHEMAS

D = dt.date
TODAY = D(2024, 3, 10)
GOOGLE = {1: "Search | Brand", 2: "Search | Generic"}
META = {7: "Social | Prospecting"}
Lag = ConversionLagBucketEnum.ConversionLagBucket


def ads_frame(rows: list[tuple]) -> pl.DataFrame:
    """Delivery log rows: (date, hour, device, platform, campaign_id, impressions, clicks, cost_micros, eligible)."""
    names = {1: "Search | Brand", 2: "Search | Generic", 3: "Search | Hidden", 7: "Social | Prospecting"}
    records = [(d, h, dev, plat, cid, names[cid], *vals) for d, h, dev, plat, cid, *vals in rows]
    return pl.DataFrame(records, schema=REPORT_SCHEMAS["ads"], orient="row")


def conversions_frame(rows: list[tuple]) -> pl.DataFrame:
    """Conversion log rows: (click_date, click_hour, device, platform, campaign_id, conv_date, value)."""
    records = [(cd, h, dev, plat, cid, conv, (conv - cd).days, v) for cd, h, dev, plat, cid, conv, v in rows]
    return pl.DataFrame(records, schema=REPORT_SCHEMAS["ad_conversions"], orient="row")


def world() -> tuple[pl.DataFrame, pl.DataFrame]:
    ads = ads_frame(
        [
            (D(2024, 3, 1), 9, "mobile", "google_ads", 1, 100, 10, 5_000_000, 200),
            (D(2024, 3, 1), 10, "desktop", "google_ads", 1, 60, 2, 1_000_000, 100),
            (D(2024, 3, 2), 9, "mobile", "google_ads", 1, 40, 4, 2_000_000, 100),
            (D(2024, 3, 2), 9, "mobile", "google_ads", 2, 30, 0, 0, 1000),
            (D(2024, 3, 5), 14, "tablet", "google_ads", 2, 0, 0, 0, 50),  # eligible but never shown: no activity
            (D(2024, 3, 9), 9, "mobile", "google_ads", 1, 10, 1, 300_000, 10),
            (D(2024, 3, 10), 9, "mobile", "google_ads", 1, 999, 99, 9_000_000, 999),  # today: not happened
            (D(2024, 3, 2), 9, "mobile", "google_ads", 3, 50, 5, 500_000, 50),  # campaign not visible
            (D(2024, 3, 2), 20, "mobile", "meta", 7, 1000, 20, 8_000_000, 0),
        ]
    )
    conversions = conversions_frame(
        [
            (D(2024, 3, 1), 9, "mobile", "google_ads", 1, D(2024, 3, 1), 40.0),  # lag 0
            (D(2024, 3, 1), 9, "mobile", "google_ads", 1, D(2024, 3, 4), 60.0),  # lag 3
            (D(2024, 3, 1), 10, "desktop", "google_ads", 1, D(2024, 3, 17), 99.0),  # lag 16, not yet happened
            (D(2024, 3, 2), 9, "mobile", "google_ads", 1, D(2024, 3, 9), 25.0),  # lag 7
            (D(2024, 3, 3), 11, "mobile", "google_ads", 2, D(2024, 3, 3), 10.0),  # conversion on a no-delivery day
            (D(2024, 3, 2), 20, "mobile", "meta", 7, D(2024, 3, 2), 30.0),
        ]
    )
    return ads, conversions


def gaql(query: str, platform: str = "google_ads", today: dt.date = TODAY) -> list[GoogleAdsRow]:
    ads, conversions = world()
    return answer_gaql(query, ads, conversions, today, platform, META if platform == "meta" else GOOGLE)


MARCH = "segments.date BETWEEN '2024-03-01' AND '2024-03-31'"


def test_rows_are_sdk_rows_with_only_the_selected_fields() -> None:
    rows = gaql(f"SELECT campaign.id, metrics.cost_micros FROM campaign WHERE {MARCH}")
    assert all(isinstance(r, GoogleAdsRow) for r in rows)
    assert [(r.campaign.id, r.metrics.cost_micros) for r in rows] == [(1, 8_300_000), (2, 0)]
    first = rows[0]
    assert first.campaign.resource_name == "customers/1234567890/campaigns/1"
    assert "impressions" not in first.metrics and "name" not in first.campaign and "date" not in first.segments


def test_metrics_are_summed_over_unselected_segments() -> None:
    rows = gaql(
        f"SELECT campaign.name, segments.date, metrics.impressions, metrics.clicks, metrics.conversions, "
        f"metrics.conversions_value FROM campaign WHERE {MARCH} AND campaign.id = 1"
    )
    got = [
        (
            r.campaign.name,
            r.segments.date,
            r.metrics.impressions,
            r.metrics.clicks,
            r.metrics.conversions,
            r.metrics.conversions_value,
        )
        for r in rows
    ]
    assert got == [
        ("Search | Brand", "2024-03-01", 160, 12, 2.0, 100.0),  # the lag-16 conversion has not happened yet
        ("Search | Brand", "2024-03-02", 40, 4, 1.0, 25.0),
        ("Search | Brand", "2024-03-09", 10, 1, 0.0, 0.0),
    ]
    assert isinstance(rows[0].metrics.conversions, float)


def test_hour_and_device_segments_and_enums() -> None:
    rows = gaql(
        "SELECT campaign.id, campaign.status, campaign.advertising_channel_type, segments.hour, "
        "segments.device, metrics.clicks FROM campaign WHERE segments.date = '2024-03-01'"
    )
    assert [(r.segments.hour, r.segments.device, r.metrics.clicks) for r in rows] == [
        (9, DeviceEnum.Device.MOBILE, 10),
        (10, DeviceEnum.Device.DESKTOP, 2),
    ]
    assert rows[0].campaign.status == CampaignStatusEnum.CampaignStatus.ENABLED
    assert rows[0].campaign.advertising_channel_type == AdvertisingChannelTypeEnum.AdvertisingChannelType.SEARCH


def test_between_is_inclusive_and_other_date_forms() -> None:
    def dates(where: str) -> list[str]:
        return [
            r.segments.date
            for r in gaql(f"SELECT segments.date, metrics.impressions FROM campaign WHERE campaign.id = 1 AND {where}")
        ]

    assert dates("segments.date BETWEEN '2024-03-02' AND '2024-03-09'") == ["2024-03-02", "2024-03-09"]
    assert dates("segments.date >= '2024-03-02' AND segments.date < '2024-03-09'") == ["2024-03-02"]
    assert dates("segments.date DURING LAST_7_DAYS") == ["2024-03-09"]  # 3-3..3-9
    assert dates("segments.date DURING YESTERDAY") == ["2024-03-09"]
    assert dates("segments.date DURING LAST_30_DAYS") == ["2024-03-01", "2024-03-02", "2024-03-09"]
    assert dates("segments.date DURING TODAY") == []  # today has not happened yet


def test_campaign_filters_and_visibility() -> None:
    base = f"SELECT campaign.id, metrics.impressions FROM campaign WHERE {MARCH}"
    assert [r.campaign.id for r in gaql(base)] == [1, 2]  # campaign 3 is not visible, meta not this platform
    assert [r.campaign.id for r in gaql(base + " AND campaign.id = 2")] == [2]
    assert [r.campaign.id for r in gaql(base + " AND campaign.id IN (2, 3, 7)")] == [2]
    assert [r.campaign.id for r in gaql(base + " AND campaign.id NOT IN (2)")] == [1]
    assert [r.metrics.impressions for r in gaql(base + " AND metrics.impressions > 100")] == [210]


def test_conversions_mature_over_time() -> None:
    query = (
        "SELECT metrics.conversions, metrics.conversions_value FROM campaign "
        "WHERE segments.date = '2024-03-01' AND campaign.id = 1"
    )
    early = gaql(query, today=D(2024, 3, 4))  # the lag-3 conversion happens on the 4th: not counted yet
    assert [(r.metrics.conversions, r.metrics.conversions_value) for r in early] == [(1.0, 40.0)]
    assert [r.metrics.conversions for r in gaql(query)] == [2.0]
    later = gaql(query, today=D(2024, 3, 18))
    assert [(r.metrics.conversions, r.metrics.conversions_value) for r in later] == [(3.0, 199.0)]


def test_conversion_lag_buckets() -> None:
    rows = gaql(
        f"SELECT campaign.id, segments.conversion_lag_bucket, metrics.conversions FROM campaign WHERE {MARCH}",
        today=D(2024, 3, 31),
    )
    got = {(r.campaign.id, r.segments.conversion_lag_bucket): r.metrics.conversions for r in rows}
    assert got == {
        (1, Lag.LESS_THAN_ONE_DAY): 1.0,
        (1, Lag.THREE_TO_FOUR_DAYS): 1.0,
        (1, Lag.SEVEN_TO_EIGHT_DAYS): 1.0,
        (1, Lag.FOURTEEN_TO_TWENTY_ONE_DAYS): 1.0,
        (2, Lag.LESS_THAN_ONE_DAY): 1.0,
    }


def test_lag_bucket_with_delivery_metrics_is_prohibited() -> None:
    with pytest.raises(GaqlError, match="PROHIBITED_SEGMENT_WITH_METRIC.*metrics.clicks") as err:
        gaql(f"SELECT segments.conversion_lag_bucket, metrics.clicks FROM campaign WHERE {MARCH}")
    assert err.value.code == "PROHIBITED_SEGMENT_WITH_METRIC_IN_SELECT_OR_WHERE_CLAUSE"
    with pytest.raises(GaqlError, match="metrics.impressions"):
        gaql(
            f"SELECT segments.conversion_lag_bucket, metrics.conversions FROM campaign "
            f"WHERE {MARCH} AND metrics.impressions > 0"
        )


def test_conversion_only_days_appear_and_inactive_days_do_not() -> None:
    rows = gaql(
        f"SELECT segments.date, metrics.impressions, metrics.conversions FROM campaign "
        f"WHERE {MARCH} AND campaign.id = 2"
    )
    assert [(r.segments.date, r.metrics.impressions, r.metrics.conversions) for r in rows] == [
        ("2024-03-02", 30, 0.0),
        ("2024-03-03", 0, 1.0),
    ]  # 03-05 had auctions but no impressions: omitted


def test_derived_metrics() -> None:
    rows = gaql(
        "SELECT campaign.id, metrics.ctr, metrics.average_cpc, metrics.search_impression_share "
        "FROM campaign WHERE segments.date = '2024-03-02'"
    )
    brand, generic = rows
    assert brand.metrics.ctr == pytest.approx(0.1)
    assert brand.metrics.average_cpc == pytest.approx(500_000)
    assert brand.metrics.search_impression_share == pytest.approx(0.4)
    assert generic.metrics.ctr == 0.0 and "average_cpc" not in generic.metrics  # no clicks: no CPC
    assert generic.metrics.search_impression_share == pytest.approx(0.0999)  # under 10% is reported as 0.0999
    social = gaql(
        "SELECT campaign.id, metrics.clicks, metrics.search_impression_share FROM campaign "
        "WHERE segments.date = '2024-03-02'",
        platform="meta",
    )
    assert [r.metrics.clicks for r in social] == [20]
    assert "search_impression_share" not in social[0].metrics
    assert social[0].campaign.resource_name.endswith("/campaigns/7")


def test_attribute_only_query_lists_every_campaign() -> None:
    rows = gaql("SELECT campaign.id, campaign.name FROM campaign ORDER BY campaign.id DESC")
    assert [(r.campaign.id, r.campaign.name) for r in rows] == [(2, "Search | Generic"), (1, "Search | Brand")]


def test_order_by_and_limit() -> None:
    rows = gaql(
        f"select campaign.id, segments.date, metrics.clicks from campaign where {MARCH} "
        "order by metrics.clicks desc, segments.date limit 2"
    )
    assert [(r.segments.date, r.metrics.clicks) for r in rows] == [("2024-03-01", 12), ("2024-03-02", 4)]


@pytest.mark.parametrize(
    ("query", "code", "token"),
    [
        ("SELECT campaign.idd FROM campaign", "UNRECOGNIZED_FIELD", "campaign.idd"),
        ("SELECT campaign.id, metrics.roas FROM campaign", "UNRECOGNIZED_FIELD", "metrics.roas"),
        ("SELECT campaign.id FROM ad_group_ad", "BAD_RESOURCE_TYPE_IN_FROM_CLAUSE", "ad_group_ad"),
        ("campaign.id FROM campaign", "EXPECTED_SELECT", "campaign.id"),
        ("SELECT campaign.id campaign", "EXPECTED_FROM", "campaign"),
        ("SELECT campaign.id FROM campaign WHERE campaign.id = 'x'", "BAD_VALUE", "'x'"),
        ("SELECT campaign.id FROM campaign WHERE campaign.id LIKE 1", "BAD_OPERATOR", "LIKE"),
        ("SELECT campaign.id FROM campaign WHERE segments.date = '2024-13-01'", "INVALID_DATE_FORMAT", "'2024-13-01'"),
        (
            "SELECT campaign.id FROM campaign WHERE segments.date DURING NEXT_YEAR",
            "INVALID_VALUE_WITH_DURING_OPERATOR",
            "NEXT_YEAR",
        ),
        ("SELECT campaign.id FROM campaign WHERE campaign.name = 'x", "STRING_NOT_TERMINATED", "'x"),
        ("SELECT campaign.id FROM campaign LIMIT 0", "LIMIT_VALUE_TOO_LOW", "0"),
        ("SELECT campaign.id FROM campaign WHERE campaign.id = 1 OR campaign.id = 2", "UNEXPECTED_INPUT", "OR"),
        ("SELECT campaign.id FROM campaign WHERE campaign.status = 'LIVE'", "BAD_ENUM_CONSTANT", "'LIVE'"),
        ("SELECT segments.date, metrics.clicks FROM campaign", "EXPECTED_FILTERS_ON_DATE_RANGE", "segments.date"),
        (
            "SELECT segments.date, metrics.clicks FROM campaign WHERE segments.date >= '2024-03-01'",
            "EXPECTED_FILTERS_ON_DATE_RANGE",
            "segments.date",
        ),
        (
            "SELECT metrics.clicks FROM campaign WHERE segments.date BETWEEN '2024-03-09' AND '2024-03-01'",
            "DATE_RANGE_TOO_NARROW",
            "segments.date",
        ),
        (
            "SELECT metrics.clicks FROM campaign WHERE segments.device = 'MOBILE'",
            "EXPECTED_REFERENCED_FIELD_IN_SELECT_CLAUSE",
            "segments.device",
        ),
    ],
)
def test_malformed_queries_name_the_offending_token(query: str, code: str, token: str) -> None:
    with pytest.raises(GaqlError) as err:
        gaql(query)
    assert err.value.code == code
    assert err.value.token == token and token in str(err.value)
    assert query[err.value.position :].startswith(token.lstrip("'")) or query[err.value.position :].startswith(token)
    assert isinstance(err.value, ValueError)


def test_parse_gaql_is_case_insensitive_for_keywords() -> None:
    q = parse_gaql(
        "select campaign.id, metrics.clicks from campaign where campaign.id in (1,2) "
        "order by metrics.clicks desc limit 5"
    )
    assert q.fields == ["campaign.id", "metrics.clicks"] and q.order_by == [("metrics.clicks", True)]
    assert q.limit == 5 and q.conditions[0].values == (1, 2)


def test_search_stream_batches_with_field_masks() -> None:
    query = f"SELECT campaign.id, segments.date, metrics.clicks FROM campaign WHERE {MARCH}"
    ads, conversions = world()
    batches = answer_search_stream(query, ads, conversions, TODAY, "google_ads", GOOGLE, batch_size=2)
    assert all(isinstance(b, SearchGoogleAdsStreamResponse) for b in batches)
    assert [len(b.results) for b in batches] == [2, 2, 1]
    assert all(list(b.field_mask.paths) == ["campaign.id", "segments.date", "metrics.clicks"] for b in batches)
    streamed = [(r.campaign.id, r.segments.date, r.metrics.clicks) for b in batches for r in b.results]
    assert streamed == [(r.campaign.id, r.segments.date, r.metrics.clicks) for r in gaql(query)]


def test_search_stream_default_batch_is_ten_thousand_rows() -> None:
    n_campaigns = 501
    ads = pl.DataFrame(
        {
            "date": [D(2024, 3, 1)] * (n_campaigns * 24),
            "hour": pl.Series(list(range(24)) * n_campaigns, dtype=pl.Int8),
            "device": "mobile",
            "platform": "google_ads",
            "campaign_id": pl.Series([c for c in range(n_campaigns) for _ in range(24)], dtype=pl.Int64),
            "campaign_name": "c",
            "impressions": 1,
            "clicks": 0,
            "cost_micros": 0,
            "eligible_impressions": 2,
        }
    )
    _, conversions = world()
    campaigns = {c: f"c{c}" for c in range(n_campaigns)}
    batches = answer_search_stream(
        "SELECT campaign.id, segments.hour, metrics.impressions FROM campaign WHERE segments.date = '2024-03-01'",
        ads,
        conversions,
        TODAY,
        "google_ads",
        campaigns,
    )
    assert [len(b.results) for b in batches] == [10_000, 2_024]
    serialized = SearchGoogleAdsStreamResponse.serialize(batches[1])
    again = SearchGoogleAdsStreamResponse.deserialize(serialized)
    assert again.results[-1].campaign.id == 500 and again.results[-1].segments.hour == 23


def test_unknown_platform_is_a_programming_error() -> None:
    ads, conversions = world()
    with pytest.raises(ValueError, match="snapchat"):
        answer_gaql("SELECT campaign.id FROM campaign", ads, conversions, TODAY, "snapchat", {})
