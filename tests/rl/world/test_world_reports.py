"""The demo world seen the only way the pipeline may see it: GA4 and Google Ads reports, as of its clock."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from google.analytics.data_v1beta.types import DateRange, Dimension, Metric, RunReportRequest, RunReportResponse

from rl.world.ga4_api import run_report_to_frame
from rl.world.world import GA4_PROPERTY_ID, PLATFORM_CUSTOMER_IDS, DemoWorld, WorldError
from tests.conftest import scaled

ADS_QUERY = (
    "SELECT campaign.id, segments.date, metrics.clicks, metrics.cost_micros, metrics.conversions "
    "FROM campaign WHERE segments.date BETWEEN '{start}' AND '{end}'"
)


@pytest.fixture(scope="module")
def world(tmp_path_factory, reference_params) -> DemoWorld:
    path = tmp_path_factory.mktemp("worlds") / "small.yaml"
    path.write_text(scaled(reference_params, 0.2).to_yaml())
    w = DemoWorld.open(tmp_path_factory.mktemp("state"), path, seed=21)
    w.advance(28)
    return w


def _ga4(world: DemoWorld, dims: list[str], metrics: list[str], start: str, end: str, **kw) -> RunReportResponse:
    return world.run_report(
        RunReportRequest(
            property=f"properties/{GA4_PROPERTY_ID}",
            dimensions=[Dimension(name=d) for d in dims],
            metrics=[Metric(name=m) for m in metrics],
            date_ranges=[DateRange(start_date=start, end_date=end)],
            **kw,
        )
    )


def test_ga4_answer_round_trips_through_the_response_type_and_pages(world):
    dims, metrics = ["dateHour", "sessionCampaignName", "deviceCategory"], ["sessions", "keyEvents", "totalRevenue"]
    full = _ga4(world, dims, metrics, "28daysAgo", "yesterday")
    wire = RunReportResponse.deserialize(RunReportResponse.serialize(full))
    frame = run_report_to_frame(wire)
    assert full.row_count == frame.height > 1000
    pages, offset = [], 0
    while offset < full.row_count:
        page = _ga4(world, dims, metrics, "28daysAgo", "yesterday", limit=700, offset=offset)
        assert page.row_count == full.row_count
        pages.append(run_report_to_frame(page))
        offset += 700
    assert pl.concat(pages).equals(frame)
    # The report agrees with what happened: paid sessions equal the world's recorded sessions.
    facts = world.frames()["sessions"]
    assert frame["sessions"].sum() == facts["sessions"].sum()


def test_no_conversion_is_reported_before_it_happens(world):
    conv = world.frames()["conversions"]
    happened = conv.filter(pl.col("conv_date") < world.today)
    assert happened.height < conv.height  # some conversions of recent clicks are still in the future
    # GA4: key events by conversion date, nothing dated today or later.
    ga4 = run_report_to_frame(_ga4(world, ["date", "sessionDefaultChannelGroup"], ["keyEvents"], "2020-01-01", "today"))
    paid = ga4.filter(pl.col("sessionDefaultChannelGroup").str.starts_with("Paid"))
    assert paid["date"].max() < world.today
    assert paid["keyEvents"].sum() == happened.height
    # Ad platforms: by click date, only conversions that have happened count; recent days are immature.
    start, end = world.params.history_start, world.today - dt.timedelta(days=1)
    reported = 0.0
    for customer_id in PLATFORM_CUSTOMER_IDS.values():
        for batch in world.search_stream(customer_id, ADS_QUERY.format(start=start, end=end)):
            reported += sum(r.metrics.conversions for r in batch.results)
    assert reported == happened.height


def test_conversions_mature_as_the_clock_moves(tmp_path, reference_params):
    path = tmp_path / "w.yaml"
    path.write_text(scaled(reference_params, 0.3).to_yaml())
    w = DemoWorld.open(tmp_path / "s", path, seed=2)
    w.advance(10)
    day = w.params.history_start + dt.timedelta(days=8)
    query = ADS_QUERY.format(start=day, end=day)

    def conversions() -> float:
        return sum(
            r.metrics.conversions
            for cid in PLATFORM_CUSTOMER_IDS.values()
            for b in w.search_stream(cid, query)
            for r in b.results
        )

    early = conversions()
    w.advance(25)
    late = conversions()
    eventual = w.frames()["conversions"].filter(pl.col("click_date") == day).height
    assert early < late == eventual


def test_unknown_ad_account_is_refused(world):
    with pytest.raises(WorldError, match="unknown customer id"):
        world.search_stream("999", ADS_QUERY.format(start="2024-12-01", end="2024-12-02"))
